package handlers_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/handlers"
	"github.com/gatebot/gatebot/pipelines/webhook"
)

func newSecret(t *testing.T) (string, []byte) {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	return "whsec_" + base64.StdEncoding.EncodeToString(key), key
}

func TestCallbackURLAllowList(t *testing.T) {
	sec, _ := newSecret(t)
	cb, err := handlers.NewCallbacks(handlers.CallbackOptions{
		Redis: redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), Gates: &approvals.Store{}, Secret: sec,
		Hosts: []string{"hooks.example.com", "*.ci.example.org", "http://127.0.0.1:8080", "https://gw.example.net:8443", "[::1]"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		url  string
		want string // "" = allowed, else a fragment of the refusal
	}{
		{"https://hooks.example.com/gatebot", ""},
		{"https://HOOKS.example.com:9443/gatebot?x=1", ""},
		{"https://a.ci.example.org/cb", ""},
		{"https://x.a.ci.example.org/cb", ""},
		{"http://127.0.0.1:8080/cb", ""},
		{"https://gw.example.net:8443/cb", ""},
		{"https://[::1]/cb", ""},
		{"http://hooks.example.com/gatebot", "https"},
		{"https://evil.example.com/x", "allow-list"},
		{"https://hooks.example.com.evil.com/x", "allow-list"},
		{"https://evilhooks.example.com/x", "allow-list"},
		{"https://ci.example.org/cb", "allow-list"},
		{"https://xci.example.org/cb", "allow-list"},
		{"http://127.0.0.1:8081/cb", "https"},
		{"https://127.0.0.1:8080/cb", "allow-list"},
		{"https://gw.example.net/cb", "allow-list"},
		{"ftp://hooks.example.com/x", "https"},
		{"https://user:pw@hooks.example.com/x", "credentials"},
		{"/relative/path", "absolute"},
		{"hooks.example.com/x", "absolute"},
		{"https://hooks.example.com/" + strings.Repeat("a", 2100), "at most"},
		{"mailto:ops@hooks.example.com", "absolute"},
	}
	for _, c := range cases {
		err := cb.CheckURL(c.url)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s refused: %v", c.url, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want a refusal mentioning %q", c.url, err, c.want)
		}
	}
}

func TestNewCallbacksValidates(t *testing.T) {
	sec, _ := newSecret(t)
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	ok := handlers.CallbackOptions{Redis: rdb, Gates: &approvals.Store{}, Secret: sec, Hosts: []string{"hooks.example.com"}}
	if _, err := handlers.NewCallbacks(ok); err != nil {
		t.Fatalf("valid options refused: %v", err)
	}
	bad := map[string]func(o *handlers.CallbackOptions){
		"no redis":  func(o *handlers.CallbackOptions) { o.Redis = nil },
		"no gates":  func(o *handlers.CallbackOptions) { o.Gates = nil },
		"no secret": func(o *handlers.CallbackOptions) { o.Secret = "" },
		"short secret": func(o *handlers.CallbackOptions) {
			o.Secret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("short"))
		},
		"origin with a path": func(o *handlers.CallbackOptions) { o.Hosts = []string{"https://hooks.example.com/cb"} },
		"bare tld wildcard":  func(o *handlers.CallbackOptions) { o.Hosts = []string{"*.com"} },
		"host with space":    func(o *handlers.CallbackOptions) { o.Hosts = []string{"hooks example.com"} },
		"other scheme":       func(o *handlers.CallbackOptions) { o.Hosts = []string{"ftp://hooks.example.com"} },
	}
	for name, mut := range bad {
		o := ok
		mut(&o)
		if _, err := handlers.NewCallbacks(o); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), sec) {
			t.Errorf("%s: the error shows the secret", name)
		}
	}
}

// cbEnv is a Callbacks with its store and receiver, not running.
type cbEnv struct {
	rdb    redis.UniversalClient
	store  *approvals.Store
	secret string
	key    []byte
	rc     *receiver
	prefix string
}

func newCBEnv(t *testing.T, rdb redis.UniversalClient) *cbEnv {
	prefix := "{gbtest-cb-" + randomHex(6) + "}:"
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := rdb.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	store, err := approvals.NewStore(rdb, approvals.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	sec, key := newSecret(t)
	rc := newReceiver(t)
	rc.secret = key
	return &cbEnv{rdb: rdb, store: store, secret: sec, key: key, rc: rc, prefix: prefix}
}

func (e *cbEnv) callbacks(t *testing.T, mut func(o *handlers.CallbackOptions)) *handlers.Callbacks {
	t.Helper()
	o := handlers.CallbackOptions{
		Redis: e.rdb, Prefix: e.prefix, Secret: e.secret, Hosts: []string{e.rc.srv.URL}, Gates: e.store,
		Schedule: []time.Duration{10 * time.Millisecond, 10 * time.Millisecond}, SweepEvery: 100 * time.Millisecond,
		PollEvery: 5 * time.Millisecond, Timeout: time.Second,
		Logger: slogFor(t),
	}
	if mut != nil {
		mut(&o)
	}
	cb, err := handlers.NewCallbacks(o)
	if err != nil {
		t.Fatal(err)
	}
	return cb
}

// run runs cb until the returned stop is called (or the test ends).
func run(t *testing.T, cb *handlers.Callbacks) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { cb.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func (e *cbEnv) gate(t *testing.T, url string) *approvals.Gate {
	t.Helper()
	g, _, err := e.store.Create(context.Background(), &approvals.Gate{
		Pipeline: "deploy-api", Inputs: map[string]any{"version": "1.0.0"}, Requester: approvals.Person{ID: "api:ci", Name: "ci"},
		Origin: "api:ci", Policy: approvals.Policy{Required: 1, Timeout: time.Hour}, CallbackURL: url,
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func (e *cbEnv) move(t *testing.T, id string, to approvals.State) *approvals.Gate {
	t.Helper()
	ctx := context.Background()
	if to == approvals.StateApproved {
		// Only a vote approves a pending gate.
		g, outcome, err := e.store.Decide(ctx, id, approvals.Person{ID: "29:approver", Name: "Approver"}, true, "", "test")
		if err != nil || outcome != approvals.OutcomeApproved {
			t.Fatalf("approve: %v, %v", outcome, err)
		}
		return g
	}
	g, err := e.store.Update(ctx, id, func(g *approvals.Gate) error {
		return g.Transition(to, time.Now())
	})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestCallbackEnqueueOncePerChange(t *testing.T) {
	for name, rdb := range redisClients(t) {
		t.Run(name, func(t *testing.T) {
			e := newCBEnv(t, rdb)
			cb := e.callbacks(t, nil)
			ctx := context.Background()
			g := e.gate(t, e.rc.srv.URL+"/hook")
			if err := cb.Enqueue(ctx, g); err != nil { // pending: never sent
				t.Fatal(err)
			}
			approved := e.move(t, g.ID, approvals.StateApproved)
			for range 3 { // the hook and the sweep both enqueue; one event results
				if err := cb.Enqueue(ctx, approved); err != nil {
					t.Fatal(err)
				}
			}
			triggering := e.move(t, g.ID, approvals.StateTriggering)
			cb.Enqueue(ctx, triggering)
			cb.Enqueue(ctx, approved) // a stale snapshot is ignored
			run(t, cb)
			ds := e.rc.waitFor("two callbacks", func(ds []delivery) bool { return len(ds) >= 2 })
			time.Sleep(100 * time.Millisecond)
			ds = e.rc.deliveries()
			if len(ds) != 2 {
				t.Fatalf("%d deliveries, want 2: %v", len(ds), acceptedTypes(ds))
			}
			want := map[string]string{
				fmt.Sprintf("evt_%s_v%d", g.ID, approved.Version):   "gate.approved",
				fmt.Sprintf("evt_%s_v%d", g.ID, triggering.Version): "gate.triggering",
			}
			for _, d := range ds {
				if typ := want[d.Header.Get("webhook-id")]; typ != d.Payload.Type {
					t.Errorf("webhook-id %q carries %s", d.Header.Get("webhook-id"), d.Payload.Type)
				}
				if d.Payload.Data.ID != g.ID || d.Payload.Data.Links.Self != "/api/v1/gates/"+g.ID {
					t.Errorf("payload data: %+v", d.Payload.Data)
				}
				ts, _ := time.Parse(time.RFC3339, d.Payload.Timestamp.Format(time.RFC3339))
				if time.Since(ts) > time.Minute {
					t.Errorf("payload timestamp %v", d.Payload.Timestamp)
				}
			}
		})
	}
}

func TestCallbackSignature(t *testing.T) {
	e := newCBEnv(t, redisClients(t)["miniredis"])
	cb := e.callbacks(t, nil)
	g := e.move(t, e.gate(t, e.rc.srv.URL+"/hook").ID, approvals.StateRejected)
	cb.Enqueue(context.Background(), g)
	run(t, cb)
	d := e.rc.waitFor("a callback", func(ds []delivery) bool { return len(ds) == 1 })[0]
	ts := d.Header.Get("webhook-timestamp")
	var sec int64
	fmt.Sscan(ts, &sec)
	// Recompute the signature from the standard's definition, not with the
	// helper the sender used.
	want := webhook.Sign(e.key, d.Header.Get("webhook-id"), time.Unix(sec, 0), d.Body)
	if d.Header.Get("webhook-signature") != want || !strings.HasPrefix(want, "v1,") {
		t.Errorf("signature %q, want %q", d.Header.Get("webhook-signature"), want)
	}
	otherKey := make([]byte, 32)
	if err := webhook.VerifyRequest(otherKey, d.Header, d.Body, time.Now()); err == nil {
		t.Error("the signature verifies with another key")
	}
	tampered := append([]byte(nil), d.Body...)
	tampered[len(tampered)-2] ^= 1
	if err := webhook.VerifyRequest(e.key, d.Header, tampered, time.Now()); err == nil {
		t.Error("the signature verifies a tampered body")
	}
}

func TestCallbackRetriesThenGivesUp(t *testing.T) {
	e := newCBEnv(t, redisClients(t)["miniredis"])
	e.rc.fail = 1000
	cb := e.callbacks(t, nil) // two retries
	cb.Enqueue(context.Background(), e.move(t, e.gate(t, e.rc.srv.URL+"/hook").ID, approvals.StateExpired))
	run(t, cb)
	e.rc.waitFor("three attempts", func(ds []delivery) bool { return len(ds) >= 3 })
	time.Sleep(200 * time.Millisecond)
	ds := e.rc.deliveries()
	if len(ds) != 3 {
		t.Fatalf("%d attempts, want 3 (first + 2 retries)", len(ds))
	}
	for _, d := range ds[1:] {
		if d.Header.Get("webhook-id") != ds[0].Header.Get("webhook-id") || string(d.Body) != string(ds[0].Body) {
			t.Error("a retry changed the id or the body")
		}
	}
	if n, _ := e.rdb.ZCard(context.Background(), e.prefix+"cb:dead").Result(); n != 1 {
		t.Errorf("dead letters: %d, want 1", n)
	}
}

func TestCallbackGoneAndRedirects(t *testing.T) {
	e := newCBEnv(t, redisClients(t)["miniredis"])
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	t.Cleanup(other.Close)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/stolen", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirect.Close)
	var redirects atomic.Int32
	counted := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirects.Add(1)
		redirect.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(counted.Close)
	e.rc.status = http.StatusGone
	cb := e.callbacks(t, func(o *handlers.CallbackOptions) { o.Hosts = append(o.Hosts, counted.URL) })
	ctx := context.Background()
	cb.Enqueue(ctx, e.move(t, e.gate(t, e.rc.srv.URL+"/gone").ID, approvals.StateCancelled))
	cb.Enqueue(ctx, e.move(t, e.gate(t, counted.URL+"/moved").ID, approvals.StateCancelled))
	run(t, cb)
	e.rc.waitFor("the 410", func(ds []delivery) bool { return len(ds) == 1 })
	deadline := time.Now().Add(5 * time.Second)
	for redirects.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(e.rc.deliveries()); n != 1 {
		t.Errorf("410 Gone was retried: %d attempts", n)
	}
	if redirects.Load() != 3 || elsewhere.Load() != 0 {
		t.Errorf("redirecting receiver hit %d times (want 3: a failure each), redirect target hit %d times (want 0)", redirects.Load(), elsewhere.Load())
	}
}

func TestCallbackSurvivesReplicaCrash(t *testing.T) {
	for name, rdb := range redisClients(t) {
		t.Run(name, func(t *testing.T) {
			e := newCBEnv(t, rdb)
			// Replica A takes the event and dies while the receiver is still
			// reading it: nothing records the attempt.
			inFlight := make(chan struct{})
			released := make(chan struct{})
			var hung atomic.Bool
			slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if hung.CompareAndSwap(false, true) {
					io.Copy(io.Discard, r.Body) // lets the server notice the client going away
					close(inFlight)
					select {
					case <-r.Context().Done():
					case <-released:
					}
					return
				}
				e.rc.serve(w, r)
			}))
			t.Cleanup(slow.Close)
			t.Cleanup(func() { close(released) })
			opts := func(o *handlers.CallbackOptions) { o.Hosts = []string{slow.URL}; o.Timeout = 300 * time.Millisecond }
			a := e.callbacks(t, opts)
			g := e.move(t, e.gate(t, slow.URL+"/hook").ID, approvals.StateApproved)
			if err := a.Enqueue(context.Background(), g); err != nil {
				t.Fatal(err)
			}
			stopA := run(t, a)
			<-inFlight
			stopA()
			// Replica B delivers it once A's claim lapses.
			b := e.callbacks(t, opts)
			run(t, b)
			d := e.rc.waitFor("the event from replica B", func(ds []delivery) bool { return len(ds) == 1 })[0]
			if d.Header.Get("webhook-id") != fmt.Sprintf("evt_%s_v%d", g.ID, g.Version) || d.Payload.Type != "gate.approved" {
				t.Errorf("delivered %s %s", d.Header.Get("webhook-id"), d.Payload.Type)
			}
		})
	}
}

func TestCallbackSweepCatchesMissedChanges(t *testing.T) {
	e := newCBEnv(t, redisClients(t)["miniredis"])
	cb := e.callbacks(t, nil)
	ctx := context.Background()
	g := e.gate(t, e.rc.srv.URL+"/hook")
	if err := cb.Watch(ctx, g); err != nil {
		t.Fatal(err)
	}
	run(t, cb)
	// Changes made without Enqueue (a crash right after the change, or a
	// path that does not call it) are found by the sweep.
	e.move(t, g.ID, approvals.StateApproved)
	e.rc.waitFor("approved", func(ds []delivery) bool { return len(ds) == 1 && ds[0].Payload.Type == "gate.approved" })
	e.move(t, g.ID, approvals.StateCancelled)
	e.rc.waitFor("cancelled", func(ds []delivery) bool { return len(ds) == 2 && ds[1].Payload.Type == "gate.cancelled" })
	// A final gate leaves the watch list.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := e.rdb.ZScore(ctx, e.prefix+"cb:watch", g.ID).Result(); err == redis.Nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Error("a final gate is still watched")
}

func slogFor(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Card refreshes and the trigger worker enqueue concurrently, so a newer
// version can be queued before an older one. Each version is still sent
// once: the receiver orders them by data.version.
func TestCallbackEnqueueOutOfOrder(t *testing.T) {
	for name, rdb := range redisClients(t) {
		t.Run(name, func(t *testing.T) {
			e := newCBEnv(t, rdb)
			cb := e.callbacks(t, nil)
			ctx := context.Background()
			g := e.gate(t, e.rc.srv.URL+"/hook")
			approved := e.move(t, g.ID, approvals.StateApproved)
			triggering := e.move(t, g.ID, approvals.StateTriggering)
			// A change that keeps the state (a run-status detail) is not a
			// state change and is not sent.
			sameState, err := e.store.Update(ctx, g.ID, func(g *approvals.Gate) error { g.Reason = "detail"; return nil })
			if err != nil {
				t.Fatal(err)
			}
			for _, snap := range []*approvals.Gate{triggering, approved, approved, triggering, sameState, approved} {
				if err := cb.Enqueue(ctx, snap); err != nil {
					t.Fatal(err)
				}
			}
			run(t, cb)
			e.rc.waitFor("two callbacks", func(ds []delivery) bool { return len(ds) >= 2 })
			time.Sleep(100 * time.Millisecond)
			ds := e.rc.deliveries()
			got := map[string]string{}
			for _, d := range ds {
				got[d.Header.Get("webhook-id")] = d.Payload.Type
			}
			want := map[string]string{
				fmt.Sprintf("evt_%s_v%d", g.ID, approved.Version):   "gate.approved",
				fmt.Sprintf("evt_%s_v%d", g.ID, triggering.Version): "gate.triggering",
			}
			if len(ds) != 2 || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%d deliveries %v, want one each of %v", len(ds), got, want)
			}
		})
	}
}

// Dead letters are kept as long as events are, not forever.
func TestCallbackDeadLettersTrimmed(t *testing.T) {
	for name, rdb := range redisClients(t) {
		t.Run(name, func(t *testing.T) {
			e := newCBEnv(t, rdb)
			ctx := context.Background()
			dead := e.prefix + "cb:dead"
			now := time.Now()
			e.rdb.ZAdd(ctx, dead,
				redis.Z{Score: float64(now.Add(-4 * 24 * time.Hour).UnixMilli()), Member: "evt_old"},
				redis.Z{Score: float64(now.Add(-time.Hour).UnixMilli()), Member: "evt_recent"})
			e.rc.status = http.StatusGone
			cb := e.callbacks(t, nil)
			g := e.move(t, e.gate(t, e.rc.srv.URL+"/hook").ID, approvals.StateRejected)
			if err := cb.Enqueue(ctx, g); err != nil {
				t.Fatal(err)
			}
			run(t, cb)
			id := fmt.Sprintf("evt_%s_v%d", g.ID, g.Version)
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) {
				if _, err := e.rdb.ZScore(ctx, dead, id).Result(); err == nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			got, err := e.rdb.ZRange(ctx, dead, 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint([]string{"evt_recent", id}) {
				t.Errorf("dead letters %v, want [evt_recent %s]", got, id)
			}
		})
	}
}

// A replica's claim covers all it claimed for as long as sending them
// can take, so a second replica never takes an event still in flight.
func TestCallbackClaimCoversBatch(t *testing.T) {
	e := newCBEnv(t, redisClients(t)["miniredis"])
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(700 * time.Millisecond) // well within Timeout: every attempt succeeds
		e.rc.serve(w, r)
	}))
	t.Cleanup(slow.Close)
	// A lease is 2 s; three rounds of sends at once would take 2.1 s.
	opts := func(o *handlers.CallbackOptions) { o.Hosts = []string{slow.URL}; o.Timeout = time.Second }
	a, b := e.callbacks(t, opts), e.callbacks(t, opts)
	ctx := context.Background()
	const events = 17
	for range events {
		if err := a.Enqueue(ctx, e.move(t, e.gate(t, slow.URL+"/hook").ID, approvals.StateRejected)); err != nil {
			t.Fatal(err)
		}
	}
	run(t, a)
	run(t, b)
	e.rc.waitFor("every event", func(ds []delivery) bool { return len(ds) >= events })
	time.Sleep(time.Second) // a duplicate taken at a lapsed lease arrives by then
	seen := map[string]int{}
	for _, d := range e.rc.deliveries() {
		seen[d.Header.Get("webhook-id")]++
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s delivered %d times", id, n)
		}
	}
	if len(seen) != events {
		t.Errorf("%d distinct events delivered, want %d", len(seen), events)
	}
}
