package handlers_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/bot"
	"github.com/gatebot/gatebot/handlers"
	"github.com/gatebot/gatebot/metrics"
	"github.com/gatebot/gatebot/replicas"
)

// scrape GETs /metrics and returns its text.
func scrape(t *testing.T, e *testEnv) string {
	t.Helper()
	res, err := http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %s", res.StatusCode, body)
	}
	return string(body)
}

// sample returns the value of the series written exactly as series.
func sample(t *testing.T, text, series string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		t.Errorf("no series %s in:\n%s", series, text)
		return ""
	}
	return m[1]
}

func metricsEnv(t *testing.T, rdb redis.UniversalClient, o envOptions) (*testEnv, *metrics.Metrics) {
	t.Helper()
	reg := prometheus.NewRegistry()
	var store *approvals.Store
	m, err := metrics.New(reg, metrics.Options{Version: "test", GoVersion: runtime.Version(),
		OpenGates: func(ctx context.Context) (map[string]int64, error) {
			counts, err := store.CountByState(ctx)
			out := map[string]int64{}
			for st, n := range counts {
				out[string(st)] = n
			}
			return out, err
		}})
	if err != nil {
		t.Fatal(err)
	}
	o.mod = func(opts *handlers.Options) {
		opts.Metrics = m
		opts.MetricsHandler = m.Handler()
	}
	e := newEnvWith(t, rdb, approvals.Policy{Required: 2, AllowSelfApproval: true, Timeout: time.Hour}, o)
	store = e.store
	return e, m
}

// TestMetricsAfterTurns drives a command, a click, an unauthenticated
// request and one from a tenant that is not served, then scrapes /metrics
// and checks each series with its labels.
func TestMetricsAfterTurns(t *testing.T) {
	mr := miniredis.RunT(t)
	e, _ := metricsEnv(t, redis.NewClient(&redis.Options{Addr: mr.Addr()}), envOptions{signed: true, tenants: []string{"tenant-1"}})
	e.send(alex, "/run demo version=1.2.3")
	gateID, actID := e.lastCardPost(1)
	e.click(megan, gateID, "approve", "", actID) // one of two votes: still pending

	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/api/messages", strings.NewReader(`{}`))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %d", res.StatusCode)
	}
	foreign := e.activity("message", alex, map[string]any{"text": "/help",
		"conversation": map[string]any{"id": "personal-chat-id", "conversationType": "personal", "tenantId": "tenant-9"}})
	if res, body := e.post(foreign); res.StatusCode != http.StatusOK {
		t.Fatalf("foreign tenant: %d %s", res.StatusCode, body)
	}

	text := scrape(t, e)
	for series, want := range map[string]string{
		`gatebot_activities_total{outcome="ok",type="message"}`:                    "1",
		`gatebot_activities_total{outcome="ok",type="invoke"}`:                     "1",
		`gatebot_activities_total{outcome="refused",type="message"}`:               "1",
		`gatebot_auth_failures_total{reason="no_token"}`:                           "1",
		`gatebot_refused_total{kind="tenant"}`:                                     "1",
		`gatebot_invoke_duration_seconds_count`:                                    "1",
		`gatebot_open_gates{state="pending"}`:                                      "1",
		`gatebot_open_gates{state="approved"}`:                                     "0",
		`gatebot_build_info{goversion="` + runtime.Version() + `",version="test"}`: "1",
	} {
		if got := sample(t, text, series); got != "" && got != want {
			t.Errorf("%s = %s, want %s", series, got, want)
		}
	}
	if !strings.Contains(text, `gatebot_invoke_duration_seconds_bucket{le="5"} 1`) {
		t.Errorf("the click is not under the 5s bucket:\n%s", text)
	}
}

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// repeatedKeys returns the top-level keys of a JSON object line that occur
// more than once.
func repeatedKeys(t *testing.T, line string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %s", line)
	}
	seen := map[string]bool{}
	var dups []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if seen[k.(string)] {
			dups = append(dups, k.(string))
		}
		seen[k.(string)] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
	}
	return dups
}

// TestLogLinesCarryEachKeyOnce: the click turn's helpers each add gate_id
// to the logger they were given; every JSON line must still name it once.
func TestLogLinesCarryEachKeyOnce(t *testing.T) {
	mr := miniredis.RunT(t)
	logs := &lockedBuffer{}
	e := newEnvWith(t, redis.NewClient(&redis.Options{Addr: mr.Addr()}),
		approvals.Policy{Required: 1, AllowSelfApproval: true, Timeout: time.Hour},
		envOptions{mod: func(o *handlers.Options) {
			// A plain JSON handler: handlers.New must do the de-duplication.
			o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}})
	e.send(alex, "/run demo version=1.2.3")
	gateID, actID := e.lastCardPost(1)
	// A card that can no longer be updated makes the engine's card
	// syncer, whose logger adds gate_id, write a line.
	e.conn.mu.Lock()
	e.conn.failUpdates = true
	e.conn.mu.Unlock()
	e.click(megan, gateID, "approve", "", actID)
	deadline := time.Now().Add(10 * time.Second)
	for !slices.ContainsFunc(logs.lines(), func(l string) bool {
		return strings.Contains(l, "card can no longer be updated") && strings.Contains(l, `"worker":`)
	}) {
		if time.Now().After(deadline) {
			t.Fatalf("the card syncer logged no failed card update:\n%s", strings.Join(logs.lines(), "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}

	withGate := 0
	for _, line := range logs.lines() {
		if d := repeatedKeys(t, line); len(d) > 0 {
			t.Errorf("keys %v repeated on: %s", d, line)
		}
		if strings.Contains(line, `"gate_id":"`+gateID+`"`) && strings.Contains(line, `"request_id":"r_`) {
			withGate++
		}
		if strings.Contains(line, "Bearer ") {
			t.Errorf("a log line carries a bearer token: %s", line)
		}
	}
	if withGate == 0 {
		t.Errorf("no line names the gate and the request; the check saw nothing:\n%s", strings.Join(logs.lines(), "\n"))
	}
}

// TestAccessLogLevels: a successful request's access line is debug, a
// failed one is not hidden at the default level.
func TestAccessLogLevels(t *testing.T) {
	mr := miniredis.RunT(t)
	logs := &lockedBuffer{}
	e := newEnvWith(t, redis.NewClient(&redis.Options{Addr: mr.Addr()}), approvals.Policy{Required: 1, Timeout: time.Hour},
		envOptions{mod: func(o *handlers.Options) {
			o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}})
	for _, path := range []string{"/healthz", "/no-such-path"} {
		res, err := http.Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	levels := map[string]string{}
	for _, line := range logs.lines() {
		var l struct{ Level, Msg, Path string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "http request" {
			levels[l.Path] = l.Level
		}
	}
	if levels["/healthz"] != "DEBUG" || levels["/no-such-path"] != "INFO" {
		t.Errorf("access line levels = %v, want /healthz DEBUG, /no-such-path INFO", levels)
	}
}

type readyReport struct {
	Status string            `json:"status"`
	Failed []string          `json:"failed"`
	Checks map[string]string `json:"checks"`
}

func getReady(t *testing.T, url string) (int, readyReport) {
	t.Helper()
	res, err := http.Get(url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var rep readyReport
	if err := json.NewDecoder(res.Body).Decode(&rep); err != nil {
		t.Fatalf("/readyz body: %v", err)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("/readyz content type %q", ct)
	}
	return res.StatusCode, rep
}

// waitReady polls /readyz every 50ms until it answers want, and returns
// how long that took.
func waitReady(t *testing.T, url string, want int, within time.Duration) (time.Duration, readyReport) {
	t.Helper()
	start := time.Now()
	for {
		code, rep := getReady(t, url)
		if code == want {
			return time.Since(start), rep
		}
		if time.Since(start) > within {
			t.Fatalf("/readyz still %d after %v, want %d: %+v", code, within, want, rep)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReadyzFollowsRedis: losing Redis turns /readyz to 503 within 3 s,
// and it recovers when Redis is back.
func TestReadyzFollowsRedis(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
	e := newEnv(t, rdb, approvals.Policy{Required: 1, Timeout: time.Hour})
	if code, rep := getReady(t, e.srv.URL); code != http.StatusOK || rep.Status != "ready" || rep.Checks["redis"] != "ok" {
		t.Fatalf("/readyz = %d %+v, want 200 ready", code, rep)
	}
	mr.Close()
	down, rep := waitReady(t, e.srv.URL, http.StatusServiceUnavailable, 3*time.Second)
	if len(rep.Failed) != 1 || rep.Failed[0] != "redis" || rep.Status != "unavailable" {
		t.Errorf("report = %+v, want only redis failed", rep)
	}
	if err := mr.Restart(); err != nil {
		t.Fatal(err)
	}
	up, _ := waitReady(t, e.srv.URL, http.StatusOK, 5*time.Second)
	t.Logf("readyz: 503 %v after Redis stopped, 200 %v after it restarted", down.Round(time.Millisecond), up.Round(time.Millisecond))
}

// TestReadyzCachesThePing: many probes within a second cost one PING.
func TestReadyzCachesThePing(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	pings := &pingCounter{}
	rdb.AddHook(pings)
	e := newEnv(t, rdb, approvals.Policy{Required: 1, Timeout: time.Hour})
	getReady(t, e.srv.URL)
	before := pings.n.Load()
	for range 20 {
		getReady(t, e.srv.URL)
	}
	if n := pings.n.Load() - before; n > 1 {
		t.Errorf("20 probes in well under a second sent %d PINGs to Redis, want at most 1", n)
	}
}

// keylessAuth is an Authenticator whose signing keys never loaded.
type keylessAuth struct{}

func (keylessAuth) Authenticate(context.Context, string) (*bot.Identity, error) {
	return nil, errors.New("no keys")
}
func (keylessAuth) KeysLoaded() bool { return false }

func TestReadyzSigningKeysAndDrain(t *testing.T) {
	mr := miniredis.RunT(t)
	e := newEnvWith(t, redis.NewClient(&redis.Options{Addr: mr.Addr()}), approvals.Policy{Required: 1, Timeout: time.Hour},
		envOptions{mod: func(o *handlers.Options) {
			o.Auth = keylessAuth{}
			o.Tenants = bot.TenantPolicy{Allowed: []string{"tenant-1"}}
		}})
	code, rep := getReady(t, e.srv.URL)
	if code != http.StatusServiceUnavailable || len(rep.Failed) != 1 || rep.Failed[0] != "signing_keys" {
		t.Errorf("without keys: %d %+v, want 503 signing_keys", code, rep)
	}
	e.h.Drain()
	code, rep = getReady(t, e.srv.URL)
	if code != http.StatusServiceUnavailable || len(rep.Failed) != 2 || rep.Failed[1] != "shutdown" {
		t.Errorf("draining: %d %+v, want 503 signing_keys and shutdown", code, rep)
	}
	res, err := http.Get(e.srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("/healthz while draining = %d, want 200: the process is alive", res.StatusCode)
	}
}

// pingCounter counts the PINGs a client sends (the engine's own traffic
// shares the client).
type pingCounter struct{ n atomic.Int64 }

func (*pingCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (p *pingCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "ping" {
			p.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (*pingCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestReadyzReplicas: replicas that disagree (a rolling upgrade) stay
// ready and say so; a deployment that joined a prefix another one was
// using first is not ready, so it gets no traffic.
func TestReadyzReplicas(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	at := time.Now()
	reg := func(inst, deployment, config string, started time.Time) *replicas.Registry {
		r, err := replicas.New(rdb, replicas.Options{Prefix: "gatebot:", Self: replicas.Info{
			Instance: inst, Deployment: deployment, Version: "1.0", Config: config, Started: started}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	self := reg("gatebot-a", "app-1", "c0ffee", at)
	e := newEnvWith(t, rdb, approvals.Policy{Required: 1, Timeout: time.Hour},
		envOptions{mod: func(o *handlers.Options) { o.Replicas = self }})
	if err := self.Join(t.Context()); err != nil {
		t.Fatal(err)
	}
	if code, rep := getReady(t, e.srv.URL); code != http.StatusOK || rep.Checks["replicas"] != "ok: 1 live, version 1.0, config c0ffee" {
		t.Errorf("one replica: %d %q", code, rep.Checks["replicas"])
	}
	if err := reg("gatebot-b", "app-1", "beef00", at).Join(t.Context()); err != nil {
		t.Fatal(err)
	}
	self.Join(t.Context()) // the next heartbeat sees b
	code, rep := getReady(t, e.srv.URL)
	if code != http.StatusOK || !strings.Contains(rep.Checks["replicas"], "2 live replicas disagree") || !strings.Contains(rep.Checks["replicas"], "gatebot-b: version 1.0, config beef00") {
		t.Errorf("rolling upgrade: %d %q, want 200 naming the disagreement", code, rep.Checks["replicas"])
	}
	if _, err := rdb.HSet(t.Context(), "gatebot:replicas", "prod-1",
		`{"instance":"prod-1","deployment":"app-prod","config":"abc123","started":"`+at.Add(-time.Hour).UTC().Format(time.RFC3339Nano)+`","seen":"`+time.Now().UTC().Format(time.RFC3339Nano)+`"}`).Result(); err != nil {
		t.Fatal(err)
	}
	self.Join(t.Context()) // refused now, but it reads the registry
	code, rep = getReady(t, e.srv.URL)
	if code != http.StatusServiceUnavailable || len(rep.Failed) != 1 || rep.Failed[0] != "replicas" || !strings.Contains(rep.Checks["replicas"], "redis.prefix") {
		t.Errorf("another deployment first: %d %+v, want 503 replicas naming redis.prefix", code, rep)
	}
}
