package handlers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/handlers"
)

var crewChat = map[string]any{"id": "19:release-crew@thread.v2", "conversationType": "groupChat", "isGroup": true, "tenantId": "tenant-1"}

func dmChat(u user) map[string]any {
	return map[string]any{"id": dmConversation(u.id), "conversationType": "personal", "tenantId": "tenant-1"}
}

// postIn waits for the nth post in conversation conv and returns it.
func (e *testEnv) postIn(conv string, n int) recorded {
	e.t.Helper()
	var out recorded
	e.conn.waitFor("a post in "+conv, func(posts, _ []recorded) bool {
		k := 0
		for _, p := range posts {
			if p.Conversation == conv {
				if k++; k == n {
					out = p
					return true
				}
			}
		}
		return false
	})
	return out
}

// TestNotifyDMSendsAndSyncsCopies: with approval.notify: dm, each listed
// approver gets the gate's card in their personal chat, a click there acts
// on the gate, and every copy follows the gate to its end. An approver the
// app is not installed for is skipped once, not retried on every sync.
func TestNotifyDMSendsAndSyncsCopies(t *testing.T) {
	for name, rdb := range redisClients(t) {
		t.Run(name, func(t *testing.T) {
			pol := approvals.Policy{Required: 1, Timeout: time.Hour,
				Approvers: []string{"aad:" + megan.aad, "aad:" + dave.aad, "aad:" + alex.aad}}
			e := newEnvWith(t, rdb, pol, envOptions{mod: func(o *handlers.Options) { o.Pipelines["demo"].NotifyDM = true }})
			e.conn.notInstalled = map[string]bool{dave.id: true}

			resp, body := e.post(e.activity("message", alex, map[string]any{"text": "/run demo version=1.2.3", "conversation": crewChat}))
			if resp.StatusCode != 200 {
				t.Fatalf("/run: HTTP %d %s", resp.StatusCode, body)
			}
			shared := e.postIn("19:release-crew@thread.v2", 1)
			m := gateIDRe.FindStringSubmatch(shared.Raw)
			if m == nil {
				t.Fatalf("no gate id on the card: %s", shared.Raw)
			}
			gateID := m[1]
			copyPost := e.postIn(dmConversation(megan.id), 1)
			if !strings.Contains(copyPost.Raw, gateID) || !strings.Contains(copyPost.Raw, `"summary":"Approval needed`) {
				t.Fatalf("megan's copy is not the gate's card with its summary: %s", copyPost.Raw)
			}
			// The requester may not approve their own request: no copy for alex.
			g := waitGate(t, e.store, gateID, func(g *approvals.Gate) bool { return len(g.Copies) == 2 })
			if c, ok := g.CopyFor("aad:" + dave.aad); !ok || c.Failed == "" || c.ActivityID != "" {
				t.Errorf("dave's copy = %+v, want one recorded as failed", c)
			}
			if c, ok := g.CopyFor("aad:" + megan.aad); !ok || c.ActivityID != copyPost.ActivityID {
				t.Errorf("megan's copy = %+v, want activity %s", c, copyPost.ActivityID)
			}
			if _, ok := g.CopyFor("aad:" + alex.aad); ok {
				t.Error("the requester got a copy of their own request")
			}

			// A click from some other chat is refused; from the copy it counts.
			other := map[string]any{"id": "a:dm-somewhere-else", "conversationType": "personal", "tenantId": "tenant-1"}
			if got := invokeMessage(t, e.clickIn(other, megan, gateID, "approve", "", copyPost.ActivityID)); !strings.Contains(got, "not in this conversation") {
				t.Fatalf("click from an unbound chat: %s", got)
			}
			card := invokeCardText(t, e.clickIn(dmChat(megan), megan, gateID, "approve", "", copyPost.ActivityID))
			if !strings.Contains(card, "Megan Bowen") {
				t.Fatalf("the copy's click answer does not show the approval: %s", card)
			}
			// Both the shared card and the copy follow the gate to its run.
			for _, act := range []string{shared.ActivityID, copyPost.ActivityID} {
				e.conn.waitFor("card "+act+" showing the run", func(_, updates []recorded) bool {
					for _, u := range updates {
						if u.ActivityID == act && strings.Contains(strings.ToLower(u.Raw), "running") {
							return true
						}
					}
					return false
				})
			}
			if n := e.prov.calls(gateID); n != 1 {
				t.Errorf("provider called %d times, want 1", n)
			}
			e.conn.mu.Lock()
			creates := append([]string(nil), e.conn.creates...)
			e.conn.mu.Unlock()
			if strings.Count(strings.Join(creates, ","), dave.id) != 1 || strings.Count(strings.Join(creates, ","), megan.id) != 1 {
				t.Errorf("1:1 chats opened %v; want megan's and dave's once each", creates)
			}
		})
	}
}

// TestNotifyDMOffSendsNoCopies: without notify: dm nobody is written to
// personally.
func TestNotifyDMOffSendsNoCopies(t *testing.T) {
	pol := approvals.Policy{Required: 1, Timeout: time.Hour, Approvers: []string{"aad:" + megan.aad}}
	e := newEnv(t, redisClients(t)["miniredis"], pol)
	e.post(e.activity("message", alex, map[string]any{"text": "/run demo version=1.2.3", "conversation": crewChat}))
	shared := e.postIn("19:release-crew@thread.v2", 1)
	gateID := gateIDRe.FindStringSubmatch(shared.Raw)[1]
	e.click(megan, gateID, "refresh", "", shared.ActivityID) // any turn; lets a sync run
	time.Sleep(300 * time.Millisecond)
	e.conn.mu.Lock()
	defer e.conn.mu.Unlock()
	if len(e.conn.creates) != 0 {
		t.Errorf("1:1 chats opened without notify: dm: %v", e.conn.creates)
	}
}

func waitGate(t *testing.T, s *approvals.Store, id string, cond func(*approvals.Gate) bool) *approvals.Gate {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		g, err := s.Get(context.Background(), id)
		if err == nil && cond(g) {
			return g
		}
		if time.Now().After(deadline) {
			t.Fatalf("gate %s never reached the expected state: %+v (err %v)", id, g, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// invokeMessage is the text of an invoke answered with a message.
func invokeMessage(t *testing.T, resp map[string]any) string {
	t.Helper()
	if resp["type"] != "application/vnd.microsoft.activity.message" {
		t.Fatalf("invoke response is not a message: %v", resp)
	}
	s, _ := resp["value"].(string)
	return s
}
