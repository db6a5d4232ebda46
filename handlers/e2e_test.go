package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/bot"
	"github.com/gatebot/gatebot/handlers"
	"github.com/gatebot/gatebot/pipelines"
)

type testEnv struct {
	t     *testing.T
	srv   *httptest.Server
	conn  *fakeConnector
	prov  *fakeProvider
	h     *handlers.Server
	store *approvals.Store
	// idp, when set, signs every activity posted (Bot Framework auth on).
	idp *testIdP
}

// envOptions are newEnvWith's knobs beyond the approval policy.
type envOptions struct {
	// signed turns Bot Framework auth on: activities carry tokens from a
	// test identity provider, and Tenants serves tenants.
	signed  bool
	tenants []string
	runners []string
	// wrap, when set, wraps the store the handlers see.
	wrap func(handlers.Store) handlers.Store
	// mod, when set, changes the server's options last.
	mod func(*handlers.Options)
}

// redisClients returns the stores the e2e runs against: miniredis always,
// and the real Redis server when one answers.
func redisClients(t testing.TB) map[string]redis.UniversalClient {
	out := map[string]redis.UniversalClient{}
	mr := miniredis.RunT(t)
	out["miniredis"] = redis.NewClient(&redis.Options{Addr: mr.Addr()})
	url := os.Getenv("GATEBOT_TEST_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	if opt, err := redis.ParseURL(url); err == nil {
		rdb := redis.NewClient(opt)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if rdb.Ping(ctx).Err() == nil {
			out["redis"] = rdb
		} else {
			t.Logf("real Redis at %s does not answer; running against miniredis only", url)
		}
	}
	return out
}

func newEnv(t *testing.T, rdb redis.UniversalClient, pol approvals.Policy) *testEnv {
	t.Helper()
	return newEnvWith(t, rdb, pol, envOptions{})
}

func newEnvWith(t *testing.T, rdb redis.UniversalClient, pol approvals.Policy, o envOptions) *testEnv {
	t.Helper()
	prefix := fmt.Sprintf("gbtest:%s:%d:", t.Name(), time.Now().UnixNano())
	t.Cleanup(func() { // registered first, so it runs after the server stops
		ctx := context.Background()
		if keys, _ := rdb.Keys(ctx, prefix+"*").Result(); len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	store, err := approvals.NewStore(rdb, approvals.Options{Prefix: prefix, UnpostedAfter: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	fc := newFakeConnector(t)
	trust := bot.ServiceURLPolicy{AllowLoopback: true}
	conn, err := bot.NewConnector(bot.ConnectorConfig{Trust: trust, HTTPClient: fc.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	prov := &fakeProvider{status: pipelines.StatusRunning}
	def := &pipelines.Definition{Name: "demo", Provider: "fake", Description: "Demo pipeline", Inputs: map[string]*pipelines.Input{
		"version": {Type: pipelines.TypeString, Required: true, Pattern: `^v?\d+\.\d+\.\d+$`},
		"dry_run": {Type: pipelines.TypeBoolean, Default: false},
	}}
	if errs := def.Compile(); len(errs) > 0 {
		t.Fatal(errs)
	}
	opts := handlers.Options{
		Logger:    slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Trust:     trust,
		Connector: conn,
		Store:     wrapStore(o.wrap, store),
		Pipelines: map[string]*handlers.Pipeline{"demo": {Def: def, Provider: prov, ProviderType: "fake", Policy: pol,
			Runners: o.runners, PollEvery: 100 * time.Millisecond}},
	}
	var idp *testIdP
	if o.signed {
		idp = newTestIdP(t)
		opts.Auth = idp.auth
		opts.Tenants = bot.TenantPolicy{Allowed: o.tenants}
	}
	if o.mod != nil {
		o.mod(&opts)
	}
	h, err := handlers.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	stop := startEngine(t, h, store, opts.Pipelines, opts.Logger)
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		stop()
		h.Shutdown(context.Background())
	})
	return &testEnv{t: t, srv: srv, conn: fc, prov: prov, h: h, store: store, idp: idp}
}

func wrapStore(wrap func(handlers.Store) handlers.Store, s *approvals.Store) handlers.Store {
	if wrap == nil {
		return s
	}
	return wrap(s)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// user is a Playground-style user.
type user struct{ id, name, aad string }

var (
	alex  = user{"29:alex", "Alex Wilber", "00000000-0000-0000-0000-0000000000a1"}
	megan = user{"29:megan", "Megan Bowen", "00000000-0000-0000-0000-0000000000b2"}
)

// activity builds a Playground-shaped personal-chat activity.
func (e *testEnv) activity(typ string, from user, extra map[string]any) map[string]any {
	a := map[string]any{
		"type":         typ,
		"id":           fmt.Sprintf("in-%d", time.Now().UnixNano()),
		"timestamp":    time.Now().UTC().Format(time.RFC3339Nano),
		"channelId":    "msteams",
		"serviceUrl":   e.conn.serviceURL(),
		"from":         map[string]any{"id": from.id, "name": from.name, "aadObjectId": from.aad},
		"recipient":    map[string]any{"id": "28:gatebot", "name": "gatebot"},
		"conversation": map[string]any{"id": "personal-chat-id", "conversationType": "personal", "tenantId": "tenant-1"},
		"locale":       "en-US",
	}
	for k, v := range extra {
		a[k] = v
	}
	return a
}

func (e *testEnv) post(body any) (*http.Response, []byte) {
	e.t.Helper()
	var b []byte
	switch v := body.(type) {
	case []byte:
		b = v
	default:
		b, _ = json.Marshal(v)
	}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/api/messages", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if e.idp != nil {
		req.Header.Set("Authorization", "Bearer "+e.idp.token(e.t, jwt.MapClaims{"aud": benchAppID, "serviceurl": e.conn.serviceURL()}))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}

func (e *testEnv) send(from user, text string) {
	e.t.Helper()
	resp, body := e.post(e.activity("message", from, map[string]any{"text": text}))
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("message %q: status %d %s", text, resp.StatusCode, body)
	}
}

// click sends an Action.Execute invoke from the personal chat and returns
// the invoke response.
func (e *testEnv) click(from user, gateID, verb, reason, replyTo string) map[string]any {
	e.t.Helper()
	return e.clickIn(nil, from, gateID, verb, reason, replyTo)
}

// channelThread is the conversation of a card posted as a new thread in
// the test channel (the API's channel).
func channelThread(activityID string) map[string]any {
	return map[string]any{"id": "19:releases@thread.tacv2;messageid=" + activityID, "conversationType": "channel",
		"isGroup": true, "tenantId": "tenant-1"}
}

// clickIn is click from conversation conv (nil: the personal chat).
func (e *testEnv) clickIn(conv map[string]any, from user, gateID, verb, reason, replyTo string) map[string]any {
	e.t.Helper()
	data := map[string]any{"verb": verb, "gateId": gateID}
	if reason != "" {
		data["reason"] = reason
	}
	extra := map[string]any{
		"name":      "adaptiveCard/action",
		"replyToId": replyTo,
		"value":     map[string]any{"action": map[string]any{"type": "Action.Execute", "verb": verb, "data": data}, "trigger": "manual"},
	}
	if conv != nil {
		extra["conversation"] = conv
	}
	resp, body := e.post(e.activity("invoke", from, extra))
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("invoke %s: HTTP %d %s (card clicks must always get 200)", verb, resp.StatusCode, body)
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		e.t.Fatalf("invoke %s: body is not JSON: %s", verb, body)
	}
	return out
}

var gateIDRe = regexp.MustCompile(`"gateId":"(g_[a-z0-9]+)"`)

// lastCardPost waits for a posted approval card and returns its gate id and
// activity id.
func (e *testEnv) lastCardPost(n int) (gateID, activityID string) {
	e.t.Helper()
	e.conn.waitFor("an approval card", func(posts, _ []recorded) bool { return len(posts) >= n })
	e.conn.mu.Lock()
	defer e.conn.mu.Unlock()
	p := e.conn.posts[n-1]
	if !strings.Contains(p.Raw, `"contentType":"application/vnd.microsoft.card.adaptive"`) {
		e.t.Fatalf("post %d is not an Adaptive Card: %s", n, p.Raw)
	}
	if p.Conversation != "personal-chat-id" {
		e.t.Fatalf("card posted to conversation %q", p.Conversation)
	}
	m := gateIDRe.FindStringSubmatch(p.Raw)
	if m == nil {
		e.t.Fatalf("card carries no gate id: %s", p.Raw)
	}
	return m[1], p.ActivityID
}

func invokeCardText(t *testing.T, resp map[string]any) string {
	t.Helper()
	if resp["statusCode"] != float64(200) || resp["type"] != "application/vnd.microsoft.card.adaptive" {
		t.Fatalf("invoke response is not a card: %v", resp)
	}
	b, _ := json.Marshal(resp["value"])
	return string(b)
}

func TestEndToEndApproveRunsOnce(t *testing.T) {
	for name, rdb := range redisClients(t) {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, rdb, approvals.Policy{Required: 1, AllowSelfApproval: true, Timeout: time.Hour})
			e.send(alex, "/run demo version=1.2.3")
			gateID, actID := e.lastCardPost(1)

			card := invokeCardText(t, e.click(megan, gateID, "approve", "", actID))
			if !strings.Contains(card, "Approved by Megan Bowen") {
				t.Errorf("invoke answer does not say who approved: %s", card)
			}
			// Every viewer sees the decision: the base message is updated.
			e.conn.waitFor("the card updated in place", func(_, updates []recorded) bool {
				for _, u := range updates {
					if u.ActivityID == actID && strings.Contains(u.Raw, "Approved by Megan Bowen") {
						return true
					}
				}
				return false
			})
			e.conn.waitFor("the run shown as running", func(_, updates []recorded) bool {
				return len(updates) > 0 && strings.Contains(strings.ToLower(updates[len(updates)-1].Raw), "running")
			})
			e.prov.setStatus(pipelines.StatusSucceeded)
			e.conn.waitFor("the run shown as succeeded", func(_, updates []recorded) bool {
				return len(updates) > 0 && strings.Contains(strings.ToLower(updates[len(updates)-1].Raw), "succeeded")
			})
			// A repeated click gets the current card and starts nothing.
			again := invokeCardText(t, e.click(megan, gateID, "approve", "", actID))
			if !strings.Contains(again, "already") {
				t.Errorf("a repeated click should say so: %s", again)
			}
			if n := e.prov.calls(gateID); n != 1 {
				t.Fatalf("provider called %d times for %s, want exactly 1", n, gateID)
			}
		})
	}
}

func TestEndToEndRejectWithReason(t *testing.T) {
	e := newEnv(t, redisClients(t)["miniredis"], approvals.Policy{Required: 1, Timeout: time.Hour})
	e.send(alex, "/run demo version=1.2.4")
	gateID, actID := e.lastCardPost(1)
	// The requester may not approve their own gate.
	self := invokeCardText(t, e.click(alex, gateID, "approve", "", actID))
	if !strings.Contains(self, "someone else") {
		t.Errorf("self-approval should be refused with a notice: %s", self)
	}
	card := invokeCardText(t, e.click(megan, gateID, "reject", "not during the freeze", actID))
	if !strings.Contains(card, "Rejected by **Megan Bowen**") || !strings.Contains(card, "not during the freeze") {
		t.Errorf("reject card lacks who and why: %s", card)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(e.prov.rejections()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got, want := e.prov.rejections(), []string{gateID + ": Megan Bowen: not during the freeze"}; !slices.Equal(got, want) {
		t.Errorf("rejection relayed to the provider = %q, want %q", got, want)
	}
	if n := e.prov.calls(gateID); n != 0 {
		t.Fatalf("provider called %d times for a rejected gate", n)
	}
}

// TestFastFailureShowsRetry: a provider that refuses at once moves the gate
// to trigger_failed within milliseconds of the click. The clicker's invoke
// answer is written first; every shared update of the card lands after it,
// and the last one, which everyone sees, offers Retry.
func TestFastFailureShowsRetry(t *testing.T) {
	e := newEnv(t, redisClients(t)["miniredis"], approvals.Policy{Required: 1, Timeout: time.Hour})
	e.prov.mu.Lock()
	e.prov.fail = &pipelines.APIError{Provider: "fake", StatusCode: 400, Message: "unknown ref"}
	e.prov.mu.Unlock()
	e.send(alex, "/run demo version=1.2.5")
	gateID, actID := e.lastCardPost(1)
	e.click(megan, gateID, "approve", "", actID)
	answered := time.Now()
	e.conn.waitFor("the failure on the shared card", func(_, updates []recorded) bool {
		for i := len(updates) - 1; i >= 0; i-- {
			if updates[i].ActivityID == actID {
				return strings.Contains(updates[i].Raw, `"retry"`)
			}
		}
		return false
	})
	e.conn.mu.Lock()
	defer e.conn.mu.Unlock()
	for _, u := range e.conn.updates {
		if u.ActivityID == actID && u.At.Before(answered.Add(-50*time.Millisecond)) {
			t.Errorf("a shared update landed %s before the click's answer was returned", answered.Sub(u.At))
		}
	}
	if n := e.prov.triggers[gateID]; n != 1 {
		t.Errorf("provider called %d times", n)
	}
}

// orderStore records the order of the calls that decide when the shared
// card may follow a click.
type orderStore struct {
	handlers.Store
	mu    sync.Mutex
	calls []string
}

func (o *orderStore) note(c string) {
	o.mu.Lock()
	o.calls = append(o.calls, c)
	o.mu.Unlock()
}

func (o *orderStore) HoldCard(ctx context.Context, id string, d time.Duration) error {
	o.note("hold")
	return o.Store.HoldCard(ctx, id, d)
}

func (o *orderStore) ReleaseCard(ctx context.Context, id string) error {
	o.note("release")
	return o.Store.ReleaseCard(ctx, id)
}

func (o *orderStore) Decide(ctx context.Context, id string, p approvals.Person, approve bool, reason, where string) (*approvals.Gate, approvals.Outcome, error) {
	o.note("decide")
	return o.Store.Decide(ctx, id, p, approve, reason, where)
}

func (o *orderStore) DecideHeld(ctx context.Context, id string, p approvals.Person, approve bool, reason, where string, hold time.Duration) (*approvals.Gate, approvals.Outcome, error) {
	o.note("decide-held")
	return o.Store.DecideHeld(ctx, id, p, approve, reason, where, hold)
}

// TestClickHoldsTheSharedCard: a click's vote holds the shared card update
// in its own script, released only after the invoke answer is written, so
// the shared card cannot land before (and under) the answer.
func TestClickHoldsTheSharedCard(t *testing.T) {
	rec := &orderStore{}
	e := newEnvWith(t, redisClients(t)["miniredis"], approvals.Policy{Required: 1, Timeout: time.Hour},
		envOptions{wrap: func(s handlers.Store) handlers.Store { rec.Store = s; return rec }})
	e.send(alex, "/run demo version=1.2.6")
	gateID, actID := e.lastCardPost(1)
	e.click(megan, gateID, "approve", "", actID)
	rec.mu.Lock()
	got := strings.Join(rec.calls, ",")
	rec.mu.Unlock()
	if got != "decide-held,release" {
		t.Errorf("calls around the click = %s, want decide-held,release", got)
	}
}

func TestEndToEndBadCommands(t *testing.T) {
	e := newEnv(t, redisClients(t)["miniredis"], approvals.Policy{Required: 1, Timeout: time.Hour})
	cases := []struct {
		text string
		want []string
	}{
		{"/run dmeo version=1.2.3", []string{"There is no pipeline", "Did you mean demo?"}},
		{"/run demo version=banana", []string{"version", "does not match"}},
		{"/run demo", []string{"version", "required"}},
		{"/run demo version=1.2.3 colour=red", []string{"colour", "not an input of demo"}},
		{`/run demo msg="unclosed`, []string{"quote is not closed"}},
		{"/frobnicate", []string{"don't know the command"}},
	}
	for i, c := range cases {
		e.send(alex, c.text)
		e.conn.waitFor("an answer to "+c.text, func(posts, _ []recorded) bool { return len(posts) > i })
		e.conn.mu.Lock()
		raw := e.conn.posts[i].Raw
		e.conn.mu.Unlock()
		for _, w := range c.want {
			if !strings.Contains(raw, w) {
				t.Errorf("%q: answer lacks %q: %s", c.text, w, raw)
			}
		}
		if gateIDRe.MatchString(raw) {
			t.Errorf("%q opened a gate", c.text)
		}
	}
}

func TestMessagesEndpointBadInput(t *testing.T) {
	e := newEnv(t, redisClients(t)["miniredis"], approvals.Policy{Required: 1, Timeout: time.Hour})
	big := e.activity("message", alex, map[string]any{"text": strings.Repeat("x", handlers.DefaultMaxBody)})
	cases := []struct {
		name       string
		body       any
		wantStatus int
		wantBody   string
	}{
		{"malformed JSON", []byte(`{"type":"message",`), http.StatusBadRequest, "not a valid activity"},
		{"oversized body", big, http.StatusRequestEntityTooLarge, "exceeds"},
		{"unknown activity type", e.activity("messageReaction", alex, nil), http.StatusOK, ""},
		{"untrusted serviceUrl", e.activity("message", alex, map[string]any{"serviceUrl": "https://evil.example.com/", "text": "/run demo version=1.2.3"}), http.StatusForbidden, "serviceUrl"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := e.post(c.body)
			if resp.StatusCode != c.wantStatus {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, c.wantStatus, body)
			}
			if c.wantStatus >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("error Content-Type = %q", resp.Header.Get("Content-Type"))
			}
			if !strings.Contains(string(body), c.wantBody) {
				t.Errorf("body %s lacks %q", body, c.wantBody)
			}
		})
	}
	t.Run("click on a gate that does not exist", func(t *testing.T) {
		resp := e.click(megan, "g_doesnotexist", "approve", "", "act-x")
		if resp["type"] != "application/vnd.microsoft.activity.message" || !strings.Contains(fmt.Sprint(resp["value"]), "no longer exists") {
			t.Fatalf("unexpected answer: %v", resp)
		}
	})
	e.conn.mu.Lock()
	defer e.conn.mu.Unlock()
	if len(e.conn.posts) != 0 {
		t.Fatalf("bad input made the bot post %d messages", len(e.conn.posts))
	}
}

// TestStoreDownTellsTheUser: with Redis gone, a command is acknowledged
// (no redelivery that would open a gate minutes later), the sender is told
// nothing was recorded, and a click gets an error body, never a fake card.
func TestStoreDownTellsTheUser(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), DialerRetries: 1, MaxRetries: -1})
	e := newEnv(t, rdb, approvals.Policy{Required: 1, Timeout: time.Hour})
	e.send(alex, "/run demo version=1.2.3")
	gateID, actID := e.lastCardPost(1)
	mr.Close()

	e.send(alex, "/run demo version=1.2.4")
	e.conn.waitFor("a store-down message", func(posts, _ []recorded) bool { return len(posts) >= 2 })
	e.conn.mu.Lock()
	raw := e.conn.posts[1].Raw
	e.conn.mu.Unlock()
	if !strings.Contains(raw, "nothing was recorded") || gateIDRe.MatchString(raw) {
		t.Fatalf("want a short store-down message, got %s", raw)
	}
	resp := e.click(megan, gateID, "approve", "", actID)
	if resp["statusCode"] != float64(500) || resp["type"] != "application/vnd.microsoft.error" {
		t.Fatalf("a click that could not be recorded must say so, got %v", resp)
	}
	if n := e.prov.calls(gateID); n != 0 {
		t.Fatalf("provider called %d times while the store was down", n)
	}
}
