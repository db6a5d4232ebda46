package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatebot/gatebot/approvals"
)

// conv is a Teams conversation as activities carry it.
func conv(id, tenant string) map[string]any {
	c := map[string]any{"id": id, "conversationType": "personal"}
	if tenant != "" {
		c["tenantId"] = tenant
	}
	return c
}

// tenantData is Teams' channelData naming a tenant.
func tenantData(tenant string) map[string]any {
	return map[string]any{"tenant": map[string]any{"id": tenant}}
}

// storedGate reads a gate straight from the store.
func (e *testEnv) storedGate(id string) *approvals.Gate {
	e.t.Helper()
	g, err := e.store.Get(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return g
}

func (e *testEnv) connectorCalls() int {
	e.conn.mu.Lock()
	defer e.conn.mu.Unlock()
	return len(e.conn.posts) + len(e.conn.updates)
}

// TestTenantNotAllowedIsDropped: with signed tokens, a message or a click
// from a tenant gatebot does not serve (or with no tenant, or two that
// disagree) is answered 200 and does nothing at all: no gate, no vote, no
// reply, no provider call.
func TestTenantNotAllowedIsDropped(t *testing.T) {
	for name, rdb := range redisClients(t) {
		t.Run(name, func(t *testing.T) {
			e := newEnvWith(t, rdb, approvals.Policy{Required: 1, Timeout: time.Hour}, envOptions{signed: true, tenants: []string{"tenant-1"}})
			// A gate in the allowed tenant, for the clicks below to aim at.
			e.send(alex, "/run demo version=1.2.3")
			gateID, actID := e.lastCardPost(1)
			before := e.connectorCalls()

			cases := []struct {
				name  string
				extra map[string]any
			}{
				{"other tenant", map[string]any{"conversation": conv("personal-chat-id", "tenant-evil"), "channelData": tenantData("tenant-evil")}},
				{"other tenant, channelData only", map[string]any{"conversation": conv("personal-chat-id", ""), "channelData": tenantData("tenant-evil")}},
				{"no tenant", map[string]any{"conversation": conv("personal-chat-id", "")}},
				{"tenants disagree", map[string]any{"conversation": conv("personal-chat-id", "tenant-1"), "channelData": tenantData("tenant-evil")}},
			}
			for _, c := range cases {
				msg := e.activity("message", megan, c.extra)
				msg["text"] = "/run demo version=9.9.9"
				resp, body := e.post(msg)
				if resp.StatusCode != http.StatusOK || len(body) != 0 {
					t.Errorf("%s: message answered %d %q, want a bare 200", c.name, resp.StatusCode, body)
				}
				click := e.activity("invoke", megan, c.extra)
				click["name"] = "adaptiveCard/action"
				click["value"] = map[string]any{"action": map[string]any{"type": "Action.Execute", "verb": "approve",
					"data": map[string]any{"verb": "approve", "gateId": gateID}}}
				resp, body = e.post(click)
				if resp.StatusCode != http.StatusOK || len(body) != 0 {
					t.Errorf("%s: invoke answered %d %q, want a bare 200", c.name, resp.StatusCode, body)
				}
			}
			time.Sleep(200 * time.Millisecond) // any async reply would have gone out by now
			if g := e.storedGate(gateID); len(g.Votes) != 0 || g.State != approvals.StatePending {
				t.Errorf("a refused tenant changed the gate: %+v", g)
			}
			gates, _, _ := e.store.List(context.Background(), approvals.ListQuery{})
			if len(gates) != 1 {
				t.Errorf("%d gates, want only the allowed tenant's", len(gates))
			}
			if n := e.connectorCalls(); n != before {
				t.Errorf("connector called %d times for refused tenants", n-before)
			}
			if e.prov.calls(gateID) != 0 {
				t.Error("provider called")
			}
			if got := e.h.Refusals().Tenant.Load(); got != int64(2*len(cases)) {
				t.Errorf("tenant refusals counted %d, want %d", got, 2*len(cases))
			}
			// The allowed tenant still works: the same click from the gate's
			// conversation approves.
			card := invokeCardText(t, e.click(megan, gateID, "approve", "", actID))
			if !strings.Contains(card, "Approved by Megan Bowen") {
				t.Errorf("the allowed tenant's click did not approve: %s", card)
			}
		})
	}
}

// TestClickFromAnotherConversation: knowing a gate id is not enough. A
// click, a refresh or an Action.Submit fallback from a conversation the
// card was not posted in — same tenant or another allowed one — is
// answered as for an unknown gate, records nothing and starts nothing.
func TestClickFromAnotherConversation(t *testing.T) {
	for name, rdb := range redisClients(t) {
		t.Run(name, func(t *testing.T) {
			e := newEnvWith(t, rdb, approvals.Policy{Required: 1, Timeout: time.Hour},
				envOptions{signed: true, tenants: []string{"tenant-1", "tenant-2"}})
			e.send(alex, "/run demo version=1.2.3")
			gateID, actID := e.lastCardPost(1)

			elsewhere := map[string]map[string]any{
				"other chat, same tenant":    conv("a:other-personal-chat", "tenant-1"),
				"same chat id, other tenant": conv("personal-chat-id", "tenant-2"),
				"a channel of the tenant":    {"id": "19:general@thread.tacv2;messageid=1", "conversationType": "channel", "tenantId": "tenant-1"},
			}
			for what, c := range elsewhere {
				for _, verb := range []string{"approve", "reject", "cancel", "refresh"} {
					resp := e.clickIn(c, megan, gateID, verb, "no", actID)
					if resp["type"] != "application/vnd.microsoft.activity.message" || resp["value"] != "This approval gate is not in this conversation." {
						t.Errorf("%s, %s: answer %v", what, verb, resp)
					}
					if b, _ := json.Marshal(resp); strings.Contains(string(b), "1.2.3") || strings.Contains(string(b), "demo") {
						t.Errorf("%s, %s: the answer leaks gate data: %s", what, verb, b)
					}
				}
				// Action.Submit fallback, as a message carrying the card data.
				submit := e.activity("message", megan, map[string]any{"conversation": c,
					"value": map[string]any{"verb": "approve", "gateId": gateID}})
				if resp, body := e.post(submit); resp.StatusCode != http.StatusOK {
					t.Errorf("%s, submit: %d %s", what, resp.StatusCode, body)
				}
			}
			time.Sleep(200 * time.Millisecond)
			if g := e.storedGate(gateID); len(g.Votes) != 0 || g.State != approvals.StatePending {
				t.Fatalf("a foreign click changed the gate: state %s, votes %+v", g.State, g.Votes)
			}
			if e.prov.calls(gateID) != 0 {
				t.Error("provider called")
			}
			if got := e.h.Refusals().Conversation.Load(); got < int64(4*len(elsewhere)) {
				t.Errorf("conversation refusals counted %d, want at least %d", got, 4*len(elsewhere))
			}
			// From the gate's own conversation the same click works.
			card := invokeCardText(t, e.click(megan, gateID, "approve", "", actID))
			if !strings.Contains(card, "Approved by Megan Bowen") {
				t.Errorf("the click from the card's conversation did not approve: %s", card)
			}
		})
	}
}

// TestChannelThreadBinding: a card posted in a channel thread belongs to
// the channel; a click in a reply of the same thread (another messageid)
// acts, a click in another channel does not.
func TestChannelThreadBinding(t *testing.T) {
	e := newEnvWith(t, redisClients(t)["miniredis"], approvals.Policy{Required: 1, Timeout: time.Hour},
		envOptions{signed: true, tenants: []string{"tenant-1"}})
	thread := func(channel, msg string) map[string]any {
		return map[string]any{"id": channel + ";messageid=" + msg, "conversationType": "channel", "tenantId": "tenant-1"}
	}
	m := e.activity("message", alex, map[string]any{"conversation": thread("19:ops@thread.tacv2", "100"), "text": "/run demo version=1.2.3"})
	if resp, body := e.post(m); resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	e.conn.waitFor("the card", func(posts, _ []recorded) bool { return len(posts) == 1 })
	e.conn.mu.Lock()
	p := e.conn.posts[0]
	e.conn.mu.Unlock()
	id := gateIDRe.FindStringSubmatch(p.Raw)[1]
	if g := e.storedGate(id); len(g.Conversations) != 1 || g.Conversations[0] != "19:ops@thread.tacv2" || g.Tenant != "tenant-1" {
		t.Fatalf("gate bound to %v in %q", g.Conversations, g.Tenant)
	}
	if resp := e.clickIn(thread("19:dev@thread.tacv2", "7"), megan, id, "approve", "", p.ActivityID); resp["type"] != "application/vnd.microsoft.activity.message" {
		t.Fatalf("a click from another channel acted: %v", resp)
	}
	card := invokeCardText(t, e.clickIn(thread("19:ops@thread.tacv2", "101"), megan, id, "approve", "", p.ActivityID))
	if !strings.Contains(card, "Approved by Megan Bowen") {
		t.Fatalf("a click in the same channel did not approve: %s", card)
	}
}

// TestRunnersHoldInChat: a pipeline with runners refuses anyone else in
// chat, through the same Open operation the API uses.
func TestRunnersHoldInChat(t *testing.T) {
	e := newEnvWith(t, redisClients(t)["miniredis"], approvals.Policy{Required: 1, Timeout: time.Hour},
		envOptions{signed: true, tenants: []string{"tenant-1"}, runners: []string{"aad:" + megan.aad}})
	e.send(alex, "/run demo version=1.2.3")
	e.conn.waitFor("the refusal", func(posts, _ []recorded) bool { return len(posts) == 1 })
	e.conn.mu.Lock()
	raw := e.conn.posts[0].Raw
	e.conn.mu.Unlock()
	if !strings.Contains(raw, "You are not allowed to run demo.") {
		t.Fatalf("refusal = %s", raw)
	}
	if gates, _, _ := e.store.List(context.Background(), approvals.ListQuery{}); len(gates) != 0 {
		t.Fatalf("a non-runner opened %d gates", len(gates))
	}
	e.send(megan, "/run demo version=1.2.3")
	e.lastCardPost(2)
}

// TestUnpostedChatGateIsPosted: gatebot stopped after storing a chat gate
// and before posting its card; the sweep posts it, once.
func TestUnpostedChatGateIsPosted(t *testing.T) {
	for name, rdb := range redisClients(t) {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, rdb, approvals.Policy{Required: 1, Timeout: time.Hour})
			g := e.openUnposted(t)
			gateID, actID := e.lastCardPost(1)
			if gateID != g.ID {
				t.Fatalf("posted %s, want %s", gateID, g.ID)
			}
			e.conn.mu.Lock()
			replyTo := e.conn.posts[0].Activity["replyToId"]
			e.conn.mu.Unlock()
			if replyTo != "in-1" {
				t.Errorf("the card does not reply to the request: replyToId %v", replyTo)
			}
			deadline := time.Now().Add(5 * time.Second)
			for e.storedGate(g.ID).Post.ActivityID != actID && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if sg := e.storedGate(g.ID); sg.Post.ActivityID != actID || sg.Post.PostedAt.IsZero() {
				t.Fatalf("post not recorded: %+v", sg.Post)
			}
			time.Sleep(time.Second) // several sweeps
			if n := len(e.conn.posts); n != 1 {
				t.Fatalf("%d posts, want exactly 1", n)
			}
		})
	}
}
