package handlers_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/gatebot/gatebot/apitoken"
	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/bot"
	"github.com/gatebot/gatebot/handlers"
)

const (
	releasesChannel = "19:releases@thread.tacv2"
	opseraID        = "62690bfb122768ed" // Opsera-style id of pipeline opsera-release
	opseraStep      = "6269103a122768ee"
	apiAlias        = "api-1" // alias of deploy-api
	apiStep         = "step-deploy-api"
)

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
