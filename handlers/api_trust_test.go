package handlers_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatebot/gatebot/apitoken"
	"github.com/gatebot/gatebot/approvals"
)

// TestAPIRunnersHold: on a pipeline with runners, a token without an owner
// may not open a gate, nor may a token whose owner is not a runner; the
// owner who is a runner may. Chat applies the same rule (one Open).
func TestAPIRunnersHold(t *testing.T) {
	e := newAPIEnv(t, redisClients(t)["miniredis"], apiEnvOptions{runners: []string{"megan.bowen@example.com"}})
	mk := func(name, owner string) string {
		sec, _, err := e.tokens.Create(context.Background(), apitoken.CreateRequest{Name: name,
			Scopes: []apitoken.Scope{apitoken.ScopeWrite, apitoken.ScopeRead}, Pipelines: []string{"deploy-api"}, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		return sec.Reveal()
	}
	body := map[string]any{"pipeline": "deploy-api", "inputs": map[string]any{"version": "1.4.2"}}
	for _, c := range []struct {
		name, token string
		want        int
	}{
		{"token without an owner", e.tok["ci-prod"], http.StatusForbidden},
		{"owner not a runner", mk("alex-ci", "alex.wilber@example.com"), http.StatusForbidden},
		{"owner is a runner", mk("megan-ci", "megan.bowen@example.com"), http.StatusCreated},
	} {
		resp, raw := e.api("POST", "/api/v1/gates", c.token, body, nil)
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, resp.StatusCode, raw, c.want)
			continue
		}
		if c.want == http.StatusForbidden && !strings.Contains(string(raw), "not-a-runner") {
			t.Errorf("%s: problem does not say why: %s", c.name, raw)
		}
	}
	if n := e.gateCount(); n != 1 {
		t.Errorf("%d gates stored, want 1 (the runner's)", n)
	}
}

// TestAPIFreeTextRefusesControlCharacters: a requester, message or cancel
// reason with a control or bidi character would forge audit lines or
// reorder what a reader sees; each is refused with the field named.
func TestAPIFreeTextRefusesControlCharacters(t *testing.T) {
	e := newAPIEnv(t, redisClients(t)["miniredis"], apiEnvOptions{})
	ci := e.tok["ci-prod"]
	forged := "ci\n2026-12-02T00:00:00Z  g_x  deploy-api  approve  by admin@example.com"
	for _, c := range []struct {
		name, field string
		body        map[string]any
	}{
		{"newline in requester", "requester", map[string]any{"requester": forged}},
		{"bidi override in requester", "requester", map[string]any{"requester": "Mallory\u202Eeciffo"}},
		{"NUL in message", "message", map[string]any{"message": "hotfix\x00"}},
		{"bidi isolate in message", "message", map[string]any{"message": "ok \u2067x"}},
	} {
		b := map[string]any{"pipeline": "deploy-api", "inputs": map[string]any{"version": "1.4.2"}}
		for k, v := range c.body {
			b[k] = v
		}
		resp, raw := e.api("POST", "/api/v1/gates", ci, b, nil)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(raw), `"field":"`+c.field+`"`) {
			t.Errorf("%s: %d %s, want 422 naming %s", c.name, resp.StatusCode, raw, c.field)
		}
	}
	if n := e.gateCount(); n != 0 {
		t.Fatalf("%d gates stored from refused requests", n)
	}
	// A multi-line message is fine; a cancel reason with a control
	// character is not.
	resp, raw := e.api("POST", "/api/v1/gates", ci, map[string]any{"pipeline": "deploy-api",
		"inputs": map[string]any{"version": "1.4.2"}, "message": "line one\nline two", "requester": "Release train"}, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, raw)
	}
	id := decode(t, raw)["id"].(string)
	resp, raw = e.api("DELETE", "/api/v1/gates/"+id+"?reason=done%1B%5B2J", ci, nil, nil)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(raw), `"field":"reason"`) {
		t.Errorf("cancel with an escape sequence: %d %s", resp.StatusCode, raw)
	}

	// The audit names the token, not the free-text requester.
	entries, err := e.store.Audit(context.Background(), approvals.AuditQuery{})
	if err != nil || len(entries) != 1 {
		t.Fatalf("audit: %v %+v", err, entries)
	}
	if a := entries[0]; !strings.HasPrefix(a.Actor, "api:ci-prod#tok_") || a.ActorName != "Release train" {
		t.Errorf("audit actor %q name %q, want api:ci-prod#<token id> and the requester as its name", a.Actor, a.ActorName)
	}
	if found, _ := e.store.Audit(context.Background(), approvals.AuditQuery{User: "Release train"}); len(found) != 0 {
		t.Errorf("a caller-supplied name is searchable as the actor: %+v", found)
	}
}

// TestAPIReplayPostsMissingCard: gatebot stored an API gate and stopped
// before posting its card. The caller's retry with the same
// Idempotency-Key posts it (once, however many retries), instead of
// answering "pending" for a gate nobody can see.
func TestAPIReplayPostsMissingCard(t *testing.T) {
	for name, rdb := range redisClients(t) {
		t.Run(name, func(t *testing.T) {
			e := newAPIEnv(t, rdb, apiEnvOptions{})
			ci := e.tok["ci-prod"]
			tok, err := e.tokens.Get(context.Background(), "ci-prod")
			if err != nil {
				t.Fatal(err)
			}
			// What the first request stored before gatebot stopped.
			def := demoDef("deploy-api")
			def.Compile()
			g, _, err := e.store.Open(context.Background(), approvals.Opening{
				Pipeline: "deploy-api", Schema: def, RawInputs: map[string]any{"version": "1.4.2"},
				Requester: approvals.Person{ID: "api:ci-prod#" + tok.ID, Name: "ci-prod"}, Origin: "api:ci-prod", TokenID: tok.ID,
				Policy: approvals.Policy{Required: 1, Timeout: time.Hour}, Tenant: "tenant-1",
				Conversations: []string{releasesChannel}, IdempotencyKey: "api:" + tok.ID + ":release-1.4.2",
			})
			if err != nil {
				t.Fatal(err)
			}
			body := map[string]any{"pipeline": "deploy-api", "inputs": map[string]any{"version": "1.4.2"}}
			hdr := map[string]string{"Idempotency-Key": "release-1.4.2"}
			done := make(chan int, 3)
			for range 3 {
				go func() {
					var buf bytes.Buffer
					resp, raw := e.api("POST", "/api/v1/gates", ci, body, hdr)
					buf.Write(raw)
					if !strings.Contains(buf.String(), g.ID) {
						t.Errorf("replay answered another gate: %s", raw)
					}
					done <- resp.StatusCode
				}()
			}
			for range 3 {
				if code := <-done; code != http.StatusOK {
					t.Errorf("replay: %d, want 200", code)
				}
			}
			deadline := time.Now().Add(3 * time.Second)
			for e.createCount() == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(700 * time.Millisecond) // past UnpostedAfter: the sweep must not post it again
			if n := e.createCount(); n != 1 {
				t.Fatalf("card posted %d times, want exactly once", n)
			}
			sg, _ := e.store.Get(context.Background(), g.ID)
			if sg.Post.PostedAt.IsZero() || sg.Post.ActivityID != e.lastCreate().ActID {
				t.Errorf("post not recorded: %+v", sg.Post)
			}
		})
	}
}

// TestAPIUnpostedGateSweep: with no retry from the caller, the sweep
// posts an API gate whose card never went up.
func TestAPIUnpostedGateSweep(t *testing.T) {
	e := newAPIEnv(t, redisClients(t)["miniredis"], apiEnvOptions{})
	def := demoDef("deploy-api")
	def.Compile()
	g, _, err := e.store.Open(context.Background(), approvals.Opening{
		Pipeline: "deploy-api", Schema: def, RawInputs: map[string]any{"version": "1.4.2"},
		Requester: approvals.Person{ID: "api:ci-prod#tok_x", Name: "ci-prod"}, Origin: "api:ci-prod",
		Policy: approvals.Policy{Required: 1, Timeout: time.Hour}, Tenant: "tenant-1", Conversations: []string{releasesChannel},
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.createCount() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if e.createCount() != 1 {
		t.Fatalf("sweep posted %d cards, want 1", e.createCount())
	}
	// The post is recorded right after the connector answers.
	for time.Now().Before(deadline) {
		if sg, _ := e.store.Get(context.Background(), g.ID); !sg.Post.PostedAt.IsZero() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("post not recorded")
}

// TestAPICallbackURLFollowsTokenID: token names are reusable after a
// revoke, so a later token with the same name must not see the callback
// URL (and any secret in it) of the old token's gates.
func TestAPICallbackURLFollowsTokenID(t *testing.T) {
	e := newAPIEnv(t, redisClients(t)["miniredis"], apiEnvOptions{})
	hook := e.receiver.srv.URL + "/hook?token=s3cr3t"
	resp, raw := e.api("POST", "/api/v1/gates", e.tok["ci-prod"], map[string]any{
		"pipeline": "deploy-api", "inputs": map[string]any{"version": "1.4.2"}, "callback_url": hook,
	}, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, raw)
	}
	id := decode(t, raw)["id"].(string)
	if _, err := e.tokens.Revoke(context.Background(), "ci-prod", "test"); err != nil {
		t.Fatal(err)
	}
	sec, _, err := e.tokens.Create(context.Background(), apitoken.CreateRequest{Name: "ci-prod",
		Scopes: []apitoken.Scope{apitoken.ScopeRead}, Pipelines: []string{"deploy-api"}})
	if err != nil {
		t.Fatal(err)
	}
	resp, raw = e.api("GET", "/api/v1/gates/"+id, sec.Reveal(), nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("get: %d %s", resp.StatusCode, raw)
	}
	if strings.Contains(string(raw), "s3cr3t") {
		t.Fatalf("a new token with a reused name sees the old token's callback URL: %s", raw)
	}
}
