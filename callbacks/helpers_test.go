package callbacks_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/callbacks"
	"github.com/gatebot/gatebot/internal/redistest"
	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/standardwebhooks"
)

// backends runs fn against miniredis and the real Redis (redistest).
func backends(t *testing.T, fn func(t *testing.T, rdb redis.UniversalClient, prefix string)) {
	redistest.Backends(t, "callbacks", fn)
}

func newSecret() (string, []byte) {
	key := make([]byte, 32)
	rand.Read(key)
	return "whsec_" + base64.StdEncoding.EncodeToString(key), key
}

// view is what the tests' Render shows of a gate.
type view struct {
	ID      string          `json:"id"`
	State   approvals.State `json:"state"`
	Version int64           `json:"version"`
}

func render(g *approvals.Gate) any { return view{ID: g.ID, State: g.State, Version: g.Version} }

// payload is a callback body as a receiver reads it.
type payload struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      view      `json:"data"`
}

// delivery is one request a receiver got.
type delivery struct {
	At      time.Time
	ID      string // webhook-id
	Path    string
	Body    []byte
	Payload payload
}

// receiver is an httptest callback receiver. It asserts that every request
// is a signed JSON POST and answers with respond (200 when nil).
type receiver struct {
	t       *testing.T
	srv     *httptest.Server
	key     []byte
	respond func(w http.ResponseWriter, r *http.Request, d delivery) // nil: 200

	mu sync.Mutex
	ds []delivery
}

func newReceiver(t *testing.T, key []byte, respond func(w http.ResponseWriter, r *http.Request, d delivery)) *receiver {
	rc := &receiver{t: t, key: key, respond: respond}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		rc.t.Errorf("receiver: read body: %v", err)
	}
	if r.Method != http.MethodPost {
		rc.t.Errorf("receiver: method %s, want POST", r.Method)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		rc.t.Errorf("receiver: Content-Type %q, want application/json", ct)
	}
	if err := standardwebhooks.VerifyRequest(rc.key, r.Header, body, time.Now()); err != nil {
		rc.t.Errorf("receiver: signature: %v", err)
	}
	d := delivery{At: time.Now(), ID: r.Header.Get(standardwebhooks.HeaderID), Path: r.URL.Path, Body: body}
	if err := json.Unmarshal(body, &d.Payload); err != nil {
		rc.t.Errorf("receiver: body %q: %v", body, err)
	}
	rc.mu.Lock()
	rc.ds = append(rc.ds, d)
	rc.mu.Unlock()
	if rc.respond != nil {
		rc.respond(w, r, d)
	}
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.ds...)
}

// waitFor polls the receiver until ok holds, failing the test after 4 s.
func (rc *receiver) waitFor(t *testing.T, what string, ok func(ds []delivery) bool) []delivery {
	t.Helper()
	deadline := time.Now().Add(4 * time.Second)
	for {
		ds := rc.deliveries()
		if ok(ds) {
			return ds
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; got %d deliveries", what, len(ds))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// env is a store under a unique prefix with a signing secret.
type env struct {
	rdb    redis.UniversalClient
	prefix string
	store  *approvals.Store
	secret string
	key    []byte
}

func newEnv(t *testing.T, rdb redis.UniversalClient, prefix string) *env {
	t.Helper()
	store, err := approvals.NewStore(rdb, approvals.Options{Prefix: prefix, TriggerVisibility: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sec, key := newSecret()
	return &env{rdb: rdb, prefix: prefix, store: store, secret: sec, key: key}
}

// deliverer builds a Deliverer on the env's store with short timings,
// allowing hosts.
func (e *env) deliverer(t *testing.T, hosts []string, mut func(o *callbacks.Options)) *callbacks.Deliverer {
	t.Helper()
	o := callbacks.Options{
		Outbox: e.store, Secret: e.secret, Hosts: hosts, Render: render,
		Schedule:  []time.Duration{20 * time.Millisecond, 20 * time.Millisecond},
		PollEvery: 5 * time.Millisecond, Timeout: time.Second,
	}
	if mut != nil {
		mut(&o)
	}
	d, err := callbacks.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// run runs d until the returned stop is called or the test ends.
func run(t *testing.T, d *callbacks.Deliverer) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// gate creates a pending gate calling back to url.
func (e *env) gate(t *testing.T, url string) *approvals.Gate {
	t.Helper()
	g, _, err := e.store.Create(context.Background(), &approvals.Gate{
		Pipeline: "deploy-api", Requester: approvals.Person{ID: "api:ci", Name: "ci"}, Origin: "api:ci",
		Policy: approvals.Policy{Required: 1, Timeout: time.Hour}, CallbackURL: url,
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// approve moves a pending gate to approved: one event.
func (e *env) approve(t *testing.T, id string) *approvals.Gate {
	t.Helper()
	g, outcome, err := e.store.Decide(context.Background(), id, approvals.Person{ID: "29:approver", Name: "Approver"}, true, "", "test")
	if err != nil || outcome != approvals.OutcomeApproved {
		t.Fatalf("approve %s: %v, %v", id, outcome, err)
	}
	return g
}

// reject moves a pending gate to rejected: one event.
func (e *env) reject(t *testing.T, id string) *approvals.Gate {
	t.Helper()
	g, _, err := e.store.Decide(context.Background(), id, approvals.Person{ID: "29:approver", Name: "Approver"}, false, "no", "test")
	if err != nil || g.State != approvals.StateRejected {
		t.Fatalf("reject %s: %v", id, err)
	}
	return g
}

// runToSuccess moves an approved gate through triggering and running to
// succeeded, returning the gate at each of the three versions.
func (e *env) runToSuccess(t *testing.T, id string) []*approvals.Gate {
	t.Helper()
	ctx := context.Background()
	triggering, call, err := e.store.BeginTrigger(ctx, id)
	if err != nil || !call || triggering.State != approvals.StateTriggering {
		t.Fatalf("begin trigger: %v, %v, %v", triggering, call, err)
	}
	run := pipelines.Run{ID: "run-" + id, Status: pipelines.StatusRunning}
	running, err := e.store.FinishTrigger(ctx, id, run, nil, "", time.Now().Add(time.Hour))
	if err != nil || running.State != approvals.StateRunning {
		t.Fatalf("finish trigger: %v, %v", running, err)
	}
	run.Status = pipelines.StatusSucceeded
	succeeded, err := e.store.RecordRun(ctx, id, run, time.Now().Add(time.Hour))
	if err != nil || succeeded.State != approvals.StateSucceeded {
		t.Fatalf("record run: %v, %v", succeeded, err)
	}
	return []*approvals.Gate{triggering, running, succeeded}
}

func eventID(g *approvals.Gate) string { return fmt.Sprintf("evt_%s_v%d", g.ID, g.Version) }

// dead lists the given-up event ids.
func (e *env) dead(t *testing.T) []string {
	t.Helper()
	ids, err := e.rdb.ZRange(context.Background(), e.prefix+"cb:dead", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// waitDead waits until id is among the given-up events.
func (e *env) waitDead(t *testing.T, id string) {
	t.Helper()
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := e.rdb.ZScore(context.Background(), e.prefix+"cb:dead", id).Result(); err == nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s was not given up; dead letters %v", id, e.dead(t))
}

// logBuffer collects log output from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
