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
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/gatebot/gatebot/apitoken"
	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/bot"
	"github.com/gatebot/gatebot/handlers"
	"github.com/gatebot/gatebot/pipelines"
)

const (
	releasesChannel = "19:releases@thread.tacv2"
	opseraID        = "62690bfb122768ed" // Opsera-style id of pipeline opsera-release
	opseraStep      = "6269103a122768ee"
	apiAlias        = "api-1" // alias of deploy-api
	apiStep         = "step-deploy-api"
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

var validCreate = map[string]any{
	"pipeline": "deploy-api", "inputs": map[string]any{"version": "1.4.2"}, "message": "hotfix for INC-42",
}

func TestAPIBadInput(t *testing.T) {
	e := newAPIEnv(t, redisClients(t)["miniredis"], apiEnvOptions{})
	ci := e.tok["ci-prod"]
	with := func(kv ...any) map[string]any {
		m := map[string]any{"pipeline": "deploy-api", "inputs": map[string]any{"version": "1.4.2"}}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		name      string
		method    string
		path      string
		token     string
		body      any
		hdr       map[string]string
		status    int
		field     string // a ProblemField that must be named
		wantInErr string
	}{
		{"no token", "POST", "/api/v1/gates", "", validCreate, nil, 401, "", "bearer token is required"},
		{"wrong scheme", "POST", "/api/v1/gates", "", validCreate, map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("a:b"))}, 401, "", "bearer token"},
		{"malformed token", "POST", "/api/v1/gates", "gbt_nonsense", validCreate, nil, 401, "", "unknown, revoked or expired"},
		{"unknown token", "POST", "/api/v1/gates", "gbt_" + strings.Repeat("A", 49), validCreate, nil, 401, "", "unknown"},
		{"unknown well-formed token", "POST", "/api/v1/gates", unknownToken(t), validCreate, nil, 401, "", "unknown"},
		{"revoked token", "POST", "/api/v1/gates", e.tok["revoked"], validCreate, nil, 401, "", "revoked"},
		{"expired token", "POST", "/api/v1/gates", e.tok["expired"], validCreate, nil, 401, "", "expired"},
		{"wrong scope", "POST", "/api/v1/gates", e.tok["reader"], validCreate, nil, 403, "", "gates:write"},
		{"other pipeline", "POST", "/api/v1/gates", e.tok["web"], validCreate, nil, 403, "pipeline", "may not use"},
		{"unknown pipeline", "POST", "/api/v1/gates", ci, with("pipeline", "deploy-nope"), nil, 404, "pipeline", "no pipeline"},
		{"malformed JSON", "POST", "/api/v1/gates", ci, `{"pipeline":"deploy-api",`, nil, 400, "", "malformed JSON"},
		{"syntax error", "POST", "/api/v1/gates", ci, `{"pipeline" "deploy-api"}`, nil, 400, "", "malformed JSON"},
		{"not an object", "POST", "/api/v1/gates", ci, `["deploy-api"]`, nil, 400, "", "one JSON object"},
		{"null body", "POST", "/api/v1/gates", ci, `null`, nil, 400, "", "one JSON object"},
		{"trailing data", "POST", "/api/v1/gates", ci, `{"pipeline":"deploy-api","inputs":{"version":"1.4.2"}} {}`, nil, 400, "", "nothing after it"},
		{"unknown field", "POST", "/api/v1/gates", ci, with("colour", "red"), nil, 422, "colour", "unknown field"},
		{"wrong type (pipeline)", "POST", "/api/v1/gates", ci, with("pipeline", 5), nil, 422, "pipeline", "must be a string"},
		{"wrong type (inputs)", "POST", "/api/v1/gates", ci, with("inputs", []string{"1.4.2"}), nil, 422, "inputs", "must be an object"},
		{"wrong input type", "POST", "/api/v1/gates", ci, with("inputs", map[string]any{"version": "1.4.2", "dry_run": "maybe"}), nil, 422, "inputs.dry_run", "true or false"},
		{"oversized body", "POST", "/api/v1/gates", ci, with("message", strings.Repeat("x", handlers.DefaultAPIMaxBody)), nil, 413, "", "exceeds"},
		{"not JSON", "POST", "/api/v1/gates", ci, "pipeline=deploy-api", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, "", "must be JSON"},
		{"missing required input", "POST", "/api/v1/gates", ci, with("inputs", map[string]any{}), nil, 422, "inputs.version", "required"},
		{"invalid input pattern", "POST", "/api/v1/gates", ci, with("inputs", map[string]any{"version": "banana"}), nil, 422, "inputs.version", "does not match"},
		{"undeclared input", "POST", "/api/v1/gates", ci, with("inputs", map[string]any{"version": "1.4.2", "env": "prod"}), nil, 422, "inputs.env", "not an input"},
		{"missing pipeline", "POST", "/api/v1/gates", ci, map[string]any{"inputs": map[string]any{}}, nil, 422, "pipeline", "required"},
		{"message too long", "POST", "/api/v1/gates", ci, with("message", strings.Repeat("é", 2001)), nil, 422, "message", "at most 2000"},
		{"callback host not allowed", "POST", "/api/v1/gates", ci, with("callback_url", "https://evil.example.net/hook"), nil, 422, "callback_url", "allow-list"},
		{"callback over http", "POST", "/api/v1/gates", ci, with("callback_url", "http://hooks.example.com/hook"), nil, 422, "callback_url", "https"},
		{"callback with credentials", "POST", "/api/v1/gates", ci, with("callback_url", "https://u:p@hooks.example.com/hook"), nil, 422, "callback_url", "credentials"},
		{"callback not a URL", "POST", "/api/v1/gates", ci, with("callback_url", "hooks.example.com/hook"), nil, 422, "callback_url", "absolute"},
		{"bad idempotency key", "POST", "/api/v1/gates", ci, validCreate, map[string]string{"Idempotency-Key": "a b"}, 400, "Idempotency-Key", "Idempotency-Key"},
		{"pipeline without channel", "POST", "/api/v1/gates", ci, with("pipeline", "no-channel"), nil, 422, "pipeline", "no Teams channel"},

		{"opsera: no token", "POST", "/api/v1/pipeline/run/notification", "", map[string]any{"pipelineId": opseraID, "stepId": opseraStep}, nil, 401, "", "bearer"},
		{"opsera: unknown pipeline", "POST", "/api/v1/pipeline/run/notification", ci, map[string]any{"pipelineId": "nope", "stepId": opseraStep}, nil, 404, "pipelineId", "no pipeline"},
		{"opsera: wrong step", "POST", "/api/v1/pipeline/run/notification", ci, map[string]any{"pipelineId": opseraID, "stepId": "other-step"}, nil, 422, "stepId", "approval gate step"},
		{"opsera: no step configured", "POST", "/api/v1/pipeline/run/notification", e.tok["both"], map[string]any{"pipelineId": "deploy-web", "stepId": "x"}, nil, 422, "stepId", "no approval step id"},
		{"opsera: no access", "POST", "/api/v1/pipeline/run/notification", e.tok["web"], map[string]any{"pipelineId": opseraID, "stepId": opseraStep}, nil, 403, "pipelineId", "may not use"},
		{"opsera: wrong scope", "POST", "/api/v1/pipeline/run/notification", e.tok["reader"], map[string]any{"pipelineId": opseraID, "stepId": opseraStep}, nil, 403, "", "gates:write"},
		{"opsera: missing required input", "POST", "/api/v1/pipeline/run/notification", ci, map[string]any{"pipelineId": "deploy-api", "stepId": apiStep}, nil, 422, "inputs.version", "required"},
		{"opsera: missing stepId", "POST", "/api/v1/pipeline/run/notification", ci, map[string]any{"pipelineId": opseraID}, nil, 422, "stepId", "required"},
		{"opsera: unknown field", "POST", "/api/v1/pipeline/run/notification", ci, map[string]any{"pipelineId": opseraID, "stepId": opseraStep, "customerId": "x"}, nil, 422, "customerId", "unknown field"},
		{"opsera: wrong type", "POST", "/api/v1/pipeline/run/notification", ci, map[string]any{"pipelineId": 62690, "stepId": opseraStep}, nil, 422, "pipelineId", "must be a string"},
		{"opsera: malformed JSON", "POST", "/api/v1/pipeline/run/notification", ci, `{"pipelineId":`, nil, 400, "", "malformed"},

		{"get: wrong scope", "GET", "/api/v1/gates", e.tok["expired"], nil, nil, 401, "", "expired"},
		{"list: unknown parameter", "GET", "/api/v1/gates?colour=red", ci, nil, nil, 400, "colour", "not a parameter"},
		{"list: bad state", "GET", "/api/v1/gates?state=napping", ci, nil, nil, 400, "state", "one of pending"},
		{"list: bad limit", "GET", "/api/v1/gates?limit=0", ci, nil, nil, 400, "limit", "integer from 1 to 500"},
		{"list: bad cursor", "GET", "/api/v1/gates?cursor=xyz", ci, nil, nil, 400, "cursor", "next_cursor"},
		{"list: other pipeline", "GET", "/api/v1/gates?pipeline=deploy-web", ci, nil, nil, 403, "pipeline", "may not use"},
		{"list: unknown pipeline", "GET", "/api/v1/gates?pipeline=nope", ci, nil, nil, 404, "pipeline", "no pipeline"},
		{"get: unknown gate", "GET", "/api/v1/gates/g_doesnotexist", ci, nil, nil, 404, "", "no gate"},
		{"delete: unknown gate", "DELETE", "/api/v1/gates/g_doesnotexist", ci, nil, nil, 404, "", "no gate"},
		{"delete: wrong scope", "DELETE", "/api/v1/gates/g_doesnotexist", e.tok["reader"], nil, nil, 403, "", "gates:write"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			gates, creates, posts := e.gateCount(), e.createCount(), e.postCount()
			resp, body := e.api(c.method, c.path, c.token, c.body, c.hdr)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q, want application/problem+json", ct)
			}
			if !strings.Contains(string(body), c.wantInErr) {
				t.Errorf("problem lacks %q: %s", c.wantInErr, body)
			}
			if c.field != "" {
				var p handlers.Problem
				json.Unmarshal(body, &p)
				if !slices.ContainsFunc(p.Errors, func(f handlers.ProblemField) bool { return f.Field == c.field && f.Detail != "" }) {
					t.Errorf("problem does not name field %q: %s", c.field, body)
				}
			}
			if c.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if strings.Contains(string(body), "gbt_") {
				t.Errorf("a token appears in the answer: %s", body)
			}
			if g := e.gateCount(); g != gates {
				t.Errorf("a gate was created (%d → %d)", gates, g)
			}
			if n, p := e.createCount(), e.postCount(); n != creates || p != posts {
				t.Errorf("a card was posted (creates %d → %d, posts %d → %d)", creates, n, posts, p)
			}
		})
	}
	e.t = t
}

func unknownToken(t *testing.T) string {
	t.Helper()
	mr := miniredis.RunT(t)
	s, _ := apitoken.NewStore(redis.NewClient(&redis.Options{Addr: mr.Addr()}), apitoken.Options{})
	sec, _, err := s.Create(context.Background(), apitoken.CreateRequest{Name: "elsewhere", Scopes: apitoken.Scopes, Pipelines: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	return sec.Reveal()
}

func TestAPICreateGetAndIdempotency(t *testing.T) {
	e := newAPIEnv(t, redisClients(t)["miniredis"], apiEnvOptions{})
	ci := e.tok["ci-prod"]
	body := map[string]any{"pipeline": apiAlias, "inputs": map[string]any{"version": "v1.4.2"}, "message": "hotfix for INC-42", "requester": "Release train"}
	resp, raw := e.api("POST", "/api/v1/gates", ci, body, map[string]string{"Idempotency-Key": "release-1.4.2"})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, raw)
	}
	g := decode(t, raw)
	id, _ := g["id"].(string)
	if resp.Header.Get("Location") != "/api/v1/gates/"+id || g["state"] != "pending" || g["pipeline"] != "deploy-api" {
		t.Fatalf("create answer: Location %q, %s", resp.Header.Get("Location"), raw)
	}
	if in := g["inputs"].(map[string]any); in["version"] != "v1.4.2" || in["dry_run"] != false {
		t.Errorf("inputs not typed with defaults: %v", in)
	}
	if rq := g["requester"].(map[string]any); rq["name"] != "Release train" || g["origin"] != "api:ci-prod" {
		t.Errorf("requester/origin: %v %v", rq, g["origin"])
	}
	// The card went to the configured channel as a new thread, and the gate
	// remembers the thread so the card can be updated.
	c := e.lastCreate()
	if !strings.Contains(c.Raw, id) || !strings.Contains(c.Raw, "hotfix for INC-42") || !strings.Contains(c.Raw, "Release train") {
		t.Errorf("card lacks gate id, message or requester: %s", c.Raw)
	}
	sg, err := e.store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var ref bot.ConversationReference
	json.Unmarshal(sg.Post.Conversation, &ref)
	if sg.Post.ActivityID != c.ActID || ref.Conversation.ID != c.ID || ref.ServiceURL != e.conn.serviceURL() || ref.Bot.ID != "28:gatebot" {
		t.Errorf("gate post = %+v ref %+v, want thread %s activity %s", sg.Post, ref, c.ID, c.ActID)
	}
	if want := "api:ci-prod#" + sg.TokenID; !strings.HasPrefix(sg.TokenID, "tok_") || sg.Requester.ID != want {
		t.Errorf("requester id %q (token id %q), want api:ci-prod#<token id>", sg.Requester.ID, sg.TokenID)
	}

	// A retry returns the first gate and posts nothing.
	resp, raw = e.api("POST", "/api/v1/gates", ci, body, map[string]string{"Idempotency-Key": "release-1.4.2"})
	if resp.StatusCode != http.StatusOK || decode(t, raw)["id"] != id || resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s", resp.StatusCode, raw)
	}
	// The same key with another body is refused, and opens nothing.
	for _, other := range []map[string]any{
		{"pipeline": "deploy-api", "inputs": map[string]any{"version": "1.4.3"}, "message": "hotfix for INC-42", "requester": "Release train"},
		{"pipeline": "deploy-api", "inputs": map[string]any{"version": "v1.4.2"}, "message": "hotfix for INC-42", "requester": "Release train", "callback_url": e.receiver.srv.URL + "/hook"},
		{"pipeline": "deploy-api", "inputs": map[string]any{"version": "v1.4.2"}, "message": "hotfix for INC-42", "requester": "Someone else"},
		{"pipeline": "deploy-api", "inputs": map[string]any{"version": "v1.4.2"}, "message": "hotfix for INC-42"}, // requester: the token
	} {
		resp, raw = e.api("POST", "/api/v1/gates", ci, other, map[string]string{"Idempotency-Key": "release-1.4.2"})
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(raw), "Idempotency-Key") {
			t.Errorf("same key, different body: %d %s", resp.StatusCode, raw)
		}
	}
	// Keys are per token: another token's identical key is another gate.
	resp, raw = e.api("POST", "/api/v1/gates", e.tok["both"], body, map[string]string{"Idempotency-Key": "release-1.4.2"})
	if resp.StatusCode != http.StatusCreated || decode(t, raw)["id"] == id {
		t.Errorf("another token's key: %d %s", resp.StatusCode, raw)
	}
	if n := e.createCount(); n != 2 || e.gateCount() != 2 {
		t.Errorf("cards posted %d, gates %d; want 2 and 2", n, e.gateCount())
	}

	resp, raw = e.api("GET", "/api/v1/gates/"+id, e.tok["reader"], nil, nil)
	if resp.StatusCode != http.StatusOK || decode(t, raw)["id"] != id {
		t.Errorf("GET: %d %s", resp.StatusCode, raw)
	}
	// A token without access to the pipeline does not see the gate.
	resp, raw = e.api("GET", "/api/v1/gates/"+id, e.tok["web"], nil, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET by another pipeline's token: %d %s", resp.StatusCode, raw)
	}
}

func TestAPIRunNotificationOpsera(t *testing.T) {
	e := newAPIEnv(t, redisClients(t)["miniredis"], apiEnvOptions{})
	// The Opsera document's body, verbatim but for the ids.
	body := fmt.Sprintf(`{ "pipelineId":%q, "stepId": %q, "notificationMessage":"here is the custom message" }`, opseraID, opseraStep)
	resp, raw := e.api("POST", "/api/v1/pipeline/run/notification", e.tok["ci-prod"], body, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d: %s", resp.StatusCode, raw)
	}
	m := decode(t, raw)
	id, _ := m["gateId"].(string)
	if m["status"] != "success" || m["pipelineId"] != opseraID || m["stepId"] != opseraStep || m["state"] != "pending" || !strings.HasPrefix(id, "g_") {
		t.Errorf("answer: %s", raw)
	}
	if resp.Header.Get("Location") != "/api/v1/gates/"+id {
		t.Errorf("Location %q", resp.Header.Get("Location"))
	}
	c := e.lastCreate()
	if !strings.Contains(c.Raw, "here is the custom message") || !strings.Contains(c.Raw, id) {
		t.Errorf("the card does not carry the notification message: %s", c.Raw)
	}
	g, err := e.store.Get(context.Background(), id)
	if err != nil || g.Pipeline != "opsera-release" || g.Message != "here is the custom message" || g.Inputs["version"] != nil {
		t.Errorf("stored gate: %+v %v", g, err)
	}
	// By configured name too.
	resp, raw = e.api("POST", "/api/v1/pipeline/run/notification", e.tok["ci-prod"], map[string]any{"pipelineId": "opsera-release", "stepId": opseraStep}, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("by name: %d %s", resp.StatusCode, raw)
	}
}

func TestAPIList(t *testing.T) {
	e := newAPIEnv(t, redisClients(t)["miniredis"], apiEnvOptions{})
	ctx := context.Background()
	// Gates straight in the store: listing is about reading.
	var ids []string
	for i, p := range []string{"deploy-api", "deploy-web", "deploy-api", "no-channel", "deploy-web", "deploy-api", "other"} {
		g, _, err := e.store.Create(ctx, &approvals.Gate{Pipeline: p, Inputs: map[string]any{"version": fmt.Sprintf("1.0.%d", i)},
			Requester: approvals.Person{ID: "api:x", Name: "x"}, Policy: approvals.Policy{Required: 1, Timeout: time.Hour}}, "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, g.ID)
		time.Sleep(2 * time.Millisecond) // distinct creation times
	}
	if _, err := e.store.Cancel(ctx, ids[2], approvals.Person{ID: "x"}, ""); err != nil {
		t.Fatal(err)
	}
	page := func(token, query string) ([]string, string) {
		t.Helper()
		resp, raw := e.api("GET", "/api/v1/gates"+query, token, nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", query, resp.StatusCode, raw)
		}
		var l struct {
			Gates []struct {
				ID string `json:"id"`
			} `json:"gates"`
			Next  string            `json:"next_cursor"`
			Links map[string]string `json:"links"`
		}
		json.Unmarshal(raw, &l)
		var out []string
		for _, g := range l.Gates {
			out = append(out, g.ID)
		}
		if (l.Next != "") != (l.Links["next"] != "") {
			t.Errorf("next_cursor and links.next disagree: %s", raw)
		}
		return out, l.Next
	}
	all := func(token, filter string, limit int) []string {
		var got []string
		cursor := ""
		for range 20 {
			q, _ := url.ParseQuery(filter)
			q.Set("limit", fmt.Sprint(limit))
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			ids, next := page(token, "?"+q.Encode())
			got = append(got, ids...)
			if next == "" {
				return got
			}
			cursor = next
		}
		t.Fatal("paging does not end")
		return nil
	}
	rev := func(idx ...int) []string {
		var out []string
		for i := len(idx) - 1; i >= 0; i-- {
			out = append(out, ids[idx[i]])
		}
		return out
	}
	cases := []struct {
		token, filter string
		want          []string
	}{
		{"reader", "", rev(0, 1, 2, 3, 4, 5, 6)},              // "*": everything, newest first
		{"ci-prod", "", rev(0, 2, 3, 5)},                      // one token, two pipelines
		{"both", "", rev(0, 1, 2, 4, 5)},                      // merged from two indexes (and an unconfigured name)
		{"web", "", rev(1, 4)},                                // a single pipeline
		{"both", "state=pending", rev(0, 1, 4, 5)},            // merged and filtered
		{"both", "pipeline=" + apiAlias, rev(0, 2, 5)},        // by alias
		{"reader", "state=cancelled", rev(2)},                 // by state
		{"ci-prod", "pipeline=deploy-api&state=running", nil}, // nothing
	}
	for _, c := range cases {
		for _, limit := range []int{1, 2, 3, 50} {
			got := all(e.tok[c.token], c.filter, limit)
			if !slices.Equal(got, c.want) {
				t.Errorf("%s %q limit %d: got %v, want %v", c.token, c.filter, limit, got, c.want)
			}
		}
	}
}

func TestAPICancel(t *testing.T) {
	e := newAPIEnv(t, redisClients(t)["miniredis"], apiEnvOptions{})
	resp, raw := e.api("POST", "/api/v1/gates", e.tok["both"], map[string]any{"pipeline": "deploy-web", "inputs": map[string]any{"version": "2.0.0"}}, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, raw)
	}
	id := decode(t, raw)["id"].(string)
	actID := e.lastCreate().ActID
	thread := e.lastCreate().ID

	if resp, raw := e.api("DELETE", "/api/v1/gates/"+id, e.tok["ci-prod"], nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("cancel by a token without the pipeline: %d %s", resp.StatusCode, raw)
	}
	if resp, raw := e.api("DELETE", "/api/v1/gates/"+id+"?reason="+strings.Repeat("x", 501), e.tok["both"], nil, nil); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("overlong reason: %d %s", resp.StatusCode, raw)
	}
	resp, raw = e.api("DELETE", "/api/v1/gates/"+id+"?reason=superseded+by+2.0.1", e.tok["both"], nil, nil)
	g := decode(t, raw)
	if resp.StatusCode != http.StatusOK || g["state"] != "cancelled" || g["reason"] != "superseded by 2.0.1" {
		t.Fatalf("cancel: %d %s", resp.StatusCode, raw)
	}
	if by, _ := g["decided_by"].(map[string]any); by["name"] != "both" {
		t.Errorf("decided_by = %v, want the token name", g["decided_by"])
	}
	// The card in the channel thread now says who cancelled it.
	e.conn.waitFor("the card updated to cancelled", func(_, updates []recorded) bool {
		for _, u := range updates {
			if u.ActivityID == actID && strings.Contains(u.Raw, "Cancelled by **both**") {
				if conv, _ := url.PathUnescape(u.Conversation); conv != thread {
					t.Errorf("card updated in conversation %q, want the thread %q", conv, thread)
				}
				return true
			}
		}
		return false
	})
	resp, raw = e.api("DELETE", "/api/v1/gates/"+id, e.tok["both"], nil, nil)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(raw), "cancelled") {
		t.Errorf("second cancel: %d %s", resp.StatusCode, raw)
	}
}

func TestAPIRateLimit(t *testing.T) {
	e := newAPIEnv(t, redisClients(t)["miniredis"], apiEnvOptions{rate: 0.01, burst: 2})
	for i := range 2 {
		if resp, raw := e.api("GET", "/api/v1/gates", e.tok["reader"], nil, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, raw)
		}
	}
	resp, raw := e.api("GET", "/api/v1/gates", e.tok["reader"], nil, nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third request: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), raw)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "100" {
		t.Errorf("Retry-After %q, want 100 (one request per 100 s)", ra)
	}
	// Another token has its own budget.
	if resp, raw := e.api("GET", "/api/v1/gates", e.tok["ci-prod"], nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("another token: %d %s", resp.StatusCode, raw)
	}
}

func TestAPIStoreUnavailable(t *testing.T) {
	mr := miniredis.RunT(t)
	e := newAPIEnv(t, redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1}), apiEnvOptions{})
	mr.Close()
	for _, c := range []struct{ method, path string }{{"GET", "/api/v1/gates"}, {"POST", "/api/v1/gates"}, {"GET", "/api/v1/gates/g_x"}} {
		resp, raw := e.api(c.method, c.path, e.tok["ci-prod"], validCreate, nil)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s with Redis down: %d %q %s", c.method, c.path, resp.StatusCode, resp.Header.Get("Retry-After"), raw)
		}
	}
}

func TestAPICardNotPosted(t *testing.T) {
	e := newAPIEnv(t, redisClients(t)["miniredis"], apiEnvOptions{})
	e.createFail.Store(http.StatusForbidden)
	resp, raw := e.api("POST", "/api/v1/gates", e.tok["ci-prod"], validCreate, nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(raw), "cancelled") {
		t.Fatalf("status %d: %s", resp.StatusCode, raw)
	}
	// Nothing waits invisibly: the gate exists only as cancelled.
	gs, _, err := e.store.List(context.Background(), approvals.ListQuery{})
	if err != nil || len(gs) != 1 || gs[0].State != approvals.StateCancelled {
		t.Fatalf("gates after a failed post: %+v %v", gs, err)
	}
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

func TestAPIEndToEnd(t *testing.T) {
	for name, rdb := range redisClients(t) {
		t.Run(name, func(t *testing.T) {
			e := newAPIEnv(t, rdb, apiEnvOptions{})
			e.receiver.secret = e.secret
			e.receiver.fail = 1 // the first delivery fails and is retried
			hook := e.receiver.srv.URL + "/gatebot?tenant=acme"

			// API call → card posted to the configured channel.
			resp, raw := e.api("POST", "/api/v1/gates", e.tok["ci-prod"], map[string]any{
				"pipeline": "deploy-api", "inputs": map[string]any{"version": "1.4.2"}, "message": "release 1.4.2", "callback_url": hook,
			}, map[string]string{"Idempotency-Key": "e2e-" + name})
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("create: %d %s", resp.StatusCode, raw)
			}
			id := decode(t, raw)["id"].(string)
			c := e.lastCreate()

			// Approve via an authenticated invoke.
			card := invokeCardText(t, e.clickIn(channelThread(c.ActID), megan, id, "approve", "", c.ActID))
			if !strings.Contains(card, "Approved by Megan Bowen") {
				t.Errorf("invoke answer: %s", card)
			}
			e.conn.waitFor("the run shown as running", func(_, updates []recorded) bool {
				return len(updates) > 0 && strings.Contains(strings.ToLower(updates[len(updates)-1].Raw), "running")
			})
			e.prov.setStatus(pipelines.StatusSucceeded)

			// Callbacks arrive, signed, up to the final state.
			ds := e.receiver.waitFor("the succeeded callback", func(ds []delivery) bool {
				return slices.Contains(acceptedTypes(ds), "gate.succeeded")
			})
			if n := e.prov.calls(id); n != 1 {
				t.Fatalf("provider called %d times, want 1", n)
			}
			ids := map[string]string{} // webhook-id → type
			for _, d := range ds {
				if d.Payload.Data.ID != id {
					t.Errorf("callback for gate %q", d.Payload.Data.ID)
				}
				wid := d.Header.Get("webhook-id")
				if prev, ok := ids[wid]; ok && prev != d.Payload.Type {
					t.Errorf("webhook-id %s names both %s and %s", wid, prev, d.Payload.Type)
				}
				ids[wid] = d.Payload.Type
			}
			// Deliveries of different changes interleave; the retry of the
			// failed first one must carry its id and body.
			retried := false
			for _, d := range ds[1:] {
				if d.Header.Get("webhook-id") == ds[0].Header.Get("webhook-id") && bytes.Equal(ds[0].Body, d.Body) {
					retried = true
				}
			}
			if ds[0].Status != http.StatusInternalServerError || !retried {
				t.Errorf("the failed first delivery (%d, %s) was not retried with the same id and body", ds[0].Status, ds[0].Header.Get("webhook-id"))
			}
			acc := acceptedTypes(ds)
			for _, want := range []string{"gate.running", "gate.succeeded"} {
				if !slices.Contains(acc, want) {
					t.Errorf("no %s callback; got %v", want, acc)
				}
			}
			if slices.Contains(acc, "gate.pending") {
				t.Errorf("pending was sent: %v", acc)
			}

			// GET shows the final state.
			resp, raw = e.api("GET", "/api/v1/gates/"+id, e.tok["ci-prod"], nil, nil)
			g := decode(t, raw)
			if g["state"] != "succeeded" || g["run"].(map[string]any)["id"] != "run-"+id {
				t.Errorf("final GET: %s", raw)
			}
			if votes := g["votes"].([]any); len(votes) != 1 || votes[0].(map[string]any)["by"].(map[string]any)["name"] != "Megan Bowen" {
				t.Errorf("votes: %v", g["votes"])
			}
		})
	}
}

func TestAPIRejectedCallbackBySweep(t *testing.T) {
	// A rejection made in Teams reaches the caller too: the sweep re-reads
	// watched gates whatever path changed them.
	e := newAPIEnv(t, redisClients(t)["miniredis"], apiEnvOptions{})
	e.receiver.secret = e.secret
	resp, raw := e.api("POST", "/api/v1/gates", e.tok["ci-prod"], map[string]any{
		"pipeline": "deploy-api", "inputs": map[string]any{"version": "1.4.2"}, "callback_url": e.receiver.srv.URL + "/hook",
	}, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, raw)
	}
	id := decode(t, raw)["id"].(string)
	invokeCardText(t, e.clickIn(channelThread(e.lastCreate().ActID), megan, id, "reject", "not today", e.lastCreate().ActID))
	ds := e.receiver.waitFor("the rejected callback", func(ds []delivery) bool { return slices.Contains(acceptedTypes(ds), "gate.rejected") })
	last := ds[len(ds)-1].Payload
	if last.Data.State != "rejected" || last.Data.Reason != "not today" || last.Data.DecidedBy == nil || last.Data.DecidedBy.Name != "Megan Bowen" {
		t.Errorf("rejected payload: %+v", last.Data)
	}
	time.Sleep(500 * time.Millisecond) // more sweeps: nothing is sent twice
	if n := len(e.receiver.deliveries()); n != 1 {
		t.Errorf("%d deliveries, want 1", n)
	}
}

// A callback URL may carry a secret in its query, so only the token that
// created the gate is shown it; other readers of the pipeline are not.
func TestAPICallbackURLOnlyForCreator(t *testing.T) {
	e := newAPIEnv(t, redisClients(t)["miniredis"], apiEnvOptions{})
	hook := e.receiver.srv.URL + "/hook?token=s3cr3t"
	resp, raw := e.api("POST", "/api/v1/gates", e.tok["ci-prod"], map[string]any{
		"pipeline": "deploy-api", "inputs": map[string]any{"version": "1.4.2"}, "callback_url": hook,
	}, nil)
	if resp.StatusCode != http.StatusCreated || decode(t, raw)["callback_url"] != hook {
		t.Fatalf("create: %d %s", resp.StatusCode, raw)
	}
	id := decode(t, raw)["id"].(string)
	views := map[string]string{
		"creator GET":      "ci-prod GET /api/v1/gates/" + id,
		"creator list":     "ci-prod GET /api/v1/gates?pipeline=deploy-api",
		"reader GET":       "reader GET /api/v1/gates/" + id,
		"reader list":      "reader GET /api/v1/gates",
		"other writer GET": "both GET /api/v1/gates/" + id,
		"other cancel":     "both DELETE /api/v1/gates/" + id,
	}
	for _, name := range []string{"creator GET", "creator list", "reader GET", "reader list", "other writer GET", "other cancel"} {
		f := strings.Fields(views[name])
		resp, raw := e.api(f[1], f[2], e.tok[f[0]], nil, nil)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), id) {
			t.Fatalf("%s: %d %s", name, resp.StatusCode, raw)
		}
		shown := strings.Contains(string(raw), "s3cr3t")
		if want := strings.HasPrefix(name, "creator"); shown != want {
			t.Errorf("%s: callback_url shown = %v, want %v: %s", name, shown, want, raw)
		}
	}
}

// TestAPIOwnerMayNotApprove: a token with an owner opens a gate for a
// pipeline without self-approval; the owner's click in Teams is refused,
// someone else's runs it.
func TestAPIOwnerMayNotApprove(t *testing.T) {
	tests := []struct {
		name, owner string
		wantUPN     string
		lookups     bool // the owner is known by UPN only: their UPN must be looked up
	}{
		{name: "upn", owner: "Megan.Bowen@example.com", wantUPN: "Megan.Bowen@example.com", lookups: true},
		{name: "aad", owner: "aad:" + megan.aad},
	}
	for name, rdb := range redisClients(t) {
		for _, tt := range tests {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				e := newAPIEnv(t, rdb, apiEnvOptions{})
				sec, _, err := e.tokens.Create(context.Background(), apitoken.CreateRequest{Name: "megan-ci",
					Scopes: []apitoken.Scope{apitoken.ScopeWrite, apitoken.ScopeRead}, Pipelines: []string{"deploy-api"}, Owner: tt.owner})
				if err != nil {
					t.Fatal(err)
				}
				resp, raw := e.api("POST", "/api/v1/gates", sec.Reveal(), map[string]any{
					"pipeline": "deploy-api", "inputs": map[string]any{"version": "1.4.2"}, "requester": "Release train",
				}, nil)
				if resp.StatusCode != http.StatusCreated {
					t.Fatalf("create: %d %s", resp.StatusCode, raw)
				}
				g := decode(t, raw)
				id := g["id"].(string)
				rq := g["requester"].(map[string]any)
				wantUPN := any(nil)
				if tt.wantUPN != "" {
					wantUPN = tt.wantUPN
				}
				if rq["name"] != "Release train" || rq["upn"] != wantUPN {
					t.Errorf("requester: %v", rq)
				}
				actID := e.lastCreate().ActID

				self := invokeCardText(t, e.clickIn(channelThread(actID), megan, id, "approve", "", actID))
				if !strings.Contains(self, "someone else has to approve") {
					t.Errorf("the owner's approval should be refused as self-approval: %s", self)
				}
				if got := e.lookups.Load() > 0; got != tt.lookups {
					t.Errorf("member lookups: %d, want some: %v", e.lookups.Load(), tt.lookups)
				}
				if n := e.prov.calls(id); n != 0 {
					t.Fatalf("provider called %d times after the owner's click", n)
				}
				if st, err := e.store.Get(context.Background(), id); err != nil || st.State != approvals.StatePending || len(st.Votes) != 0 {
					t.Fatalf("after the owner's click: %+v %v", st, err)
				}

				card := invokeCardText(t, e.clickIn(channelThread(actID), alex, id, "approve", "", actID))
				if !strings.Contains(card, "Approved by Alex Wilber") {
					t.Errorf("another user's approval: %s", card)
				}
				e.conn.waitFor("the run shown as running", func(_, updates []recorded) bool {
					return len(updates) > 0 && strings.Contains(strings.ToLower(updates[len(updates)-1].Raw), "running")
				})
				if n := e.prov.calls(id); n != 1 {
					t.Fatalf("provider called %d times, want 1", n)
				}
			})
		}
	}
}
