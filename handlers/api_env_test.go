package handlers_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/gatebot/gatebot/callbacks"
	"github.com/gatebot/gatebot/standardwebhooks"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatebot/gatebot/apitoken"
	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/bot"
	"github.com/gatebot/gatebot/handlers"
	"github.com/gatebot/gatebot/pipelines"
)

// created is one CreateConversation request the fake connector received.
type created struct {
	Params map[string]any
	Raw    string
	ID     string // conversation id answered
	ActID  string
}

// apiEnv is a server with the external API on, a fake connector that also
// accepts CreateConversation, tokens, and a callback receiver.
type apiEnv struct {
	*testEnv
	rdb      redis.UniversalClient
	prefix   string
	store    *approvals.Store
	tokens   *apitoken.Store
	cb       *callbacks.Deliverer
	receiver *receiver
	secret   []byte

	mu         sync.Mutex
	creates    []created
	createFail atomic.Int32 // HTTP status to answer CreateConversation with; 0 = succeed

	tok map[string]string // token name → secret

	upns    map[string]string // Teams user id → UPN the connector's member lookup answers
	lookups atomic.Int32      // member lookups received
}

type apiEnvOptions struct {
	rate  float64 // 0: generous
	burst int
	// runners sets the runners of deploy-api.
	runners []string
	// mod, when set, changes the server's options last.
	mod func(*handlers.Options)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func demoDef(name string) *pipelines.Definition {
	return &pipelines.Definition{Name: name, Provider: "fake", Description: "Deploy " + name, Inputs: map[string]*pipelines.Input{
		"version": {Type: pipelines.TypeString, Required: true, Pattern: `^v?\d+\.\d+\.\d+$`},
		"dry_run": {Type: pipelines.TypeBoolean, Default: false},
	}}
}

func newAPIEnv(t *testing.T, rdb redis.UniversalClient, o apiEnvOptions) *apiEnv {
	t.Helper()
	prefix := "{gbtest-api-" + randomHex(6) + "}:"
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := rdb.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	store, err := approvals.NewStore(rdb, approvals.Options{Prefix: prefix, UnpostedAfter: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	e := &apiEnv{rdb: rdb, prefix: prefix, store: store, tok: map[string]string{},
		upns: map[string]string{alex.id: "alex.wilber@example.com", megan.id: "megan.bowen@example.com"}}

	fc := &fakeConnector{t: t, changed: make(chan struct{}, 1000)}
	fc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_connector/v3/conversations" {
			e.serveCreate(t, fc, w, r)
			return
		}
		if m := memberPath.FindStringSubmatch(r.URL.Path); m != nil {
			e.serveMember(t, fc, w, r, m[1], m[2])
			return
		}
		fc.serve(w, r)
	}))
	t.Cleanup(fc.srv.Close)
	trust := bot.ServiceURLPolicy{AllowLoopback: true}
	conn, err := bot.NewConnector(bot.ConnectorConfig{Trust: trust, HTTPClient: fc.srv.Client(), MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}

	e.receiver = newReceiver(t)
	key := make([]byte, 32)
	rand.Read(key)
	e.secret = key
	e.cb, err = callbacks.New(callbacks.Options{
		Outbox: store, Secret: "whsec_" + base64.StdEncoding.EncodeToString(key), Render: handlers.APIGateView(""),
		Hosts: []string{e.receiver.srv.URL, "hooks.example.com"}, Logger: log,
		Schedule:  []time.Duration{20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond},
		PollEvery: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.tokens, err = apitoken.NewStore(rdb, apitoken.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	rate, burst := o.rate, o.burst
	if rate == 0 {
		rate, burst = 1000, 1000
	}
	limiter, err := apitoken.NewLimiter(rdb, apitoken.LimiterOptions{Prefix: prefix, Rate: rate, Burst: burst})
	if err != nil {
		t.Fatal(err)
	}

	prov := &fakeProvider{status: pipelines.StatusRunning}
	pol := approvals.Policy{Required: 1, Timeout: time.Hour}
	pls := map[string]*handlers.Pipeline{}
	for _, name := range []string{"deploy-api", "deploy-web", "no-channel", "opsera-release"} {
		def := demoDef(name)
		if name == "opsera-release" {
			delete(def.Inputs, "version") // Opsera's call carries no inputs
		}
		if errs := def.Compile(); len(errs) > 0 {
			t.Fatal(errs)
		}
		pls[name] = &handlers.Pipeline{Def: def, Provider: prov, ProviderType: "fake", Channel: "releases", Policy: pol, PollEvery: 50 * time.Millisecond}
	}
	pls["deploy-api"].Aliases = []string{apiAlias}
	pls["deploy-api"].StepID = apiStep
	pls["opsera-release"].Aliases = []string{opseraID}
	pls["opsera-release"].StepID = opseraStep
	pls["no-channel"].Channel = ""
	pls["deploy-api"].Runners = o.runners
	opts := handlers.Options{
		Logger: log, Trust: trust, Connector: conn, Store: store, Pipelines: pls,
		Channels: map[string]handlers.Channel{"releases": {ServiceURL: fc.serviceURL(), ConversationID: releasesChannel, TenantID: "tenant-1"}},
		BotID:    "28:gatebot", BotName: "gatebot",
		API: handlers.APIOptions{Tokens: e.tokens, Limiter: limiter, Callbacks: e.cb},
	}
	if o.mod != nil {
		o.mod(&opts)
	}
	h, err := handlers.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	stop := startEngine(t, h, store, pls, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.cb.Run(ctx); close(done) }()
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		stop()
		cancel()
		<-done
		h.Shutdown(context.Background())
	})
	e.testEnv = &testEnv{t: t, srv: srv, conn: fc, prov: prov, h: h}

	for name, r := range map[string]apitoken.CreateRequest{
		"ci-prod": {Scopes: []apitoken.Scope{apitoken.ScopeWrite, apitoken.ScopeRead}, Pipelines: []string{"deploy-api", "no-channel", "opsera-release"}},
		"reader":  {Scopes: []apitoken.Scope{apitoken.ScopeRead}, Pipelines: []string{"*"}},
		"web":     {Scopes: []apitoken.Scope{apitoken.ScopeWrite, apitoken.ScopeRead}, Pipelines: []string{"deploy-web"}},
		"both":    {Scopes: []apitoken.Scope{apitoken.ScopeWrite, apitoken.ScopeRead}, Pipelines: []string{"deploy-api", "deploy-web", "gone"}},
		"revoked": {Scopes: []apitoken.Scope{apitoken.ScopeWrite, apitoken.ScopeRead}, Pipelines: []string{"*"}},
		"expired": {Scopes: []apitoken.Scope{apitoken.ScopeWrite, apitoken.ScopeRead}, Pipelines: []string{"*"}, TTL: time.Millisecond},
	} {
		r.Name = name
		sec, _, err := e.tokens.Create(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		e.tok[name] = sec.Reveal()
	}
	if _, err := e.tokens.Revoke(context.Background(), "revoked", "test"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond) // "expired" expires
	return e
}

// serveCreate is the connector's POST /v3/conversations, checked as the
// Bot Framework documents a new thread in a Teams channel.
func (e *apiEnv) serveCreate(t *testing.T, fc *fakeConnector, w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		t.Errorf("connector: %s %s", r.Method, r.URL.Path)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("connector: create conversation Content-Type %q", ct)
	}
	body, _ := io.ReadAll(r.Body)
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		t.Errorf("connector: create conversation body is not JSON: %s", body)
	}
	chData, _ := p["channelData"].(map[string]any)
	channel, _ := chData["channel"].(map[string]any)
	act, _ := p["activity"].(map[string]any)
	switch {
	case p["isGroup"] != true:
		t.Errorf("connector: create conversation without isGroup:true: %s", body)
	case channel["id"] != releasesChannel:
		t.Errorf("connector: create conversation in channel %v, want %s: %s", channel["id"], releasesChannel, body)
	case p["tenantId"] != "tenant-1":
		t.Errorf("connector: create conversation tenantId %v: %s", p["tenantId"], body)
	case act["type"] != "message" || !strings.Contains(string(body), `"contentType":"application/vnd.microsoft.card.adaptive"`):
		t.Errorf("connector: create conversation activity is not a card message: %s", body)
	case !gateIDRe.Match(body):
		t.Errorf("connector: the card carries no gate id: %s", body)
	}
	if st := e.createFail.Load(); st != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(st))
		fmt.Fprint(w, `{"error":{"code":"BotNotInConversationRoster","message":"The bot is not part of the conversation roster."}}`)
		return
	}
	e.mu.Lock()
	n := len(e.creates) + 1
	c := created{Params: p, Raw: string(body), ActID: fmt.Sprintf("root-%d", n)}
	c.ID = releasesChannel + ";messageid=" + c.ActID
	e.creates = append(e.creates, c)
	e.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"id": c.ID, "activityId": c.ActID})
	select {
	case fc.changed <- struct{}{}:
	default:
	}
}

var memberPath = regexp.MustCompile(`^/_connector/v3/conversations/([^/]+)/members/([^/]+)$`)

// serveMember is the connector's GET /v3/conversations/{id}/members/{user}:
// the UPN lookup for a user who clicked in the personal chat.
func (e *apiEnv) serveMember(t *testing.T, fc *fakeConnector, w http.ResponseWriter, r *http.Request, conv, userID string) {
	e.lookups.Add(1)
	// A click in a channel thread is looked up in the channel (Teams
	// answers member lookups there, not per thread).
	if r.Method != http.MethodGet || (conv != "personal-chat-id" && conv != releasesChannel) {
		t.Errorf("connector: member lookup %s %s", r.Method, r.URL.Path)
	}
	if got := r.Header.Get("Authorization"); got != fc.wantAuth {
		t.Errorf("connector: member lookup Authorization = %q, want %q", got, fc.wantAuth)
	}
	upn, ok := e.upns[userID]
	if !ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":{"code":"MemberNotFoundInConversation","message":"The member is not in the conversation."}}`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"id": userID, "userPrincipalName": upn})
}

func (e *apiEnv) createCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.creates)
}

func (e *apiEnv) lastCreate() created {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.creates) == 0 {
		e.t.Fatal("no CreateConversation request")
	}
	return e.creates[len(e.creates)-1]
}

// api sends one API request, checks the exchange against openapi.yaml and
// returns the response and its body.
func (e *apiEnv) api(method, path, token string, body any, hdr map[string]string) (*http.Response, []byte) {
	e.t.Helper()
	var raw []byte
	switch v := body.(type) {
	case nil:
	case []byte:
		raw = v
	case string:
		raw = []byte(v)
	default:
		raw, _ = json.Marshal(v)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(raw))
	if err != nil {
		e.t.Fatal(err)
	}
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	checkExchange(e.t, req, raw, resp, out)
	return resp, out
}

func decode(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %s", body)
	}
	return m
}

// gateCount is how many gates the store holds.
func (e *apiEnv) gateCount() int {
	e.t.Helper()
	gs, _, err := e.store.List(context.Background(), approvals.ListQuery{Limit: 500})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(gs)
}

func (e *apiEnv) postCount() int {
	e.conn.mu.Lock()
	defer e.conn.mu.Unlock()
	return len(e.conn.posts)
}

// receiver is an httptest callback endpoint that verifies every delivery.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret []byte

	mu     sync.Mutex
	got    []delivery
	fail   int // answer 500 to this many more requests
	status int // answer this instead of 2xx, when set
}

// callbackPayload is callbacks.Payload with the data decoded as the API's
// gate.
type callbackPayload struct {
	Type      string           `json:"type"`
	Timestamp time.Time        `json:"timestamp"`
	Data      handlers.APIGate `json:"data"`
}

type delivery struct {
	Header  http.Header
	Body    []byte
	Payload callbackPayload
	Status  int
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{t: t}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	d := delivery{Header: r.Header.Clone(), Body: body}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		rc.t.Errorf("callback: %s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
	}
	rc.mu.Lock()
	secret := rc.secret
	rc.mu.Unlock()
	if secret != nil {
		if err := standardwebhooks.VerifyRequest(secret, r.Header, body, time.Now()); err != nil {
			rc.t.Errorf("callback signature does not verify: %v", err)
		}
	}
	checkCallback(rc.t, r.Header, body)
	if err := json.Unmarshal(body, &d.Payload); err != nil {
		rc.t.Errorf("callback body: %v", err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	d.Status = http.StatusNoContent
	switch {
	case rc.fail > 0:
		rc.fail--
		d.Status = http.StatusInternalServerError
	case rc.status != 0:
		d.Status = rc.status
	}
	rc.got = append(rc.got, d)
	w.WriteHeader(d.Status)
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

// waitFor polls the deliveries until cond holds.
func (rc *receiver) waitFor(what string, cond func([]delivery) bool) []delivery {
	rc.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if ds := rc.deliveries(); cond(ds) {
			return ds
		}
		time.Sleep(10 * time.Millisecond)
	}
	rc.t.Fatalf("timed out waiting for %s; got %d deliveries", what, len(rc.deliveries()))
	return nil
}

func acceptedTypes(ds []delivery) []string {
	var out []string
	for _, d := range ds {
		if d.Status/100 == 2 {
			out = append(out, d.Payload.Type)
		}
	}
	return out
}
