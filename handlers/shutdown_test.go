package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/handlers"
	"github.com/gatebot/gatebot/replicas"
)

// liveReplicas is a replica registry view that lists these instances as
// live, read just now.
type liveReplicas struct{ names []string }

func (l *liveReplicas) View() replicas.View {
	v := replicas.View{Self: replicas.Info{Instance: "local", Deployment: "app-1"}, Read: time.Now(), TTL: 30 * time.Second}
	for _, n := range l.names {
		v.Live = append(v.Live, replicas.Info{Instance: n, Deployment: "app-1"})
	}
	return v
}

// openUnposted stores a pending chat gate whose card is not up yet.
func (e *testEnv) openUnposted(t *testing.T) *approvals.Gate {
	t.Helper()
	ref, _ := json.Marshal(map[string]any{
		"activityId": "in-1", "bot": map[string]any{"id": "28:gatebot", "name": "gatebot"},
		"user": map[string]any{"id": alex.id, "name": alex.name}, "channelId": "msteams", "serviceUrl": e.conn.serviceURL(),
		"conversation": map[string]any{"id": "personal-chat-id", "conversationType": "personal", "tenantId": "tenant-1"},
	})
	def := demoDef("demo")
	def.Compile()
	g, _, err := e.store.Open(context.Background(), approvals.Opening{
		Pipeline: "demo", Schema: def, RawInputs: map[string]any{"version": "1.2.3"},
		Requester: approvals.Person{ID: alex.id, Name: alex.name}, Origin: "teams", Policy: approvals.Policy{Required: 1, Timeout: time.Hour},
		Tenant: "tenant-1", Conversations: []string{"personal-chat-id"}, Post: approvals.Post{Conversation: ref},
	})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestSweepTakesOverTheCardPostOfAGoneReplica: a replica killed while
// posting a card leaves its post claim (a 4-minute lease). While the
// registry lists that replica as live nobody else posts; once it does not,
// the unposted sweep takes the claim over and the card goes up.
func TestSweepTakesOverTheCardPostOfAGoneReplica(t *testing.T) {
	for name, rdb := range redisClients(t) {
		for _, tc := range []struct {
			name   string
			live   []string
			posted bool
		}{
			{"poster live", []string{"local", "killed-1"}, false},
			{"poster gone", []string{"local"}, true},
		} {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				e := newEnvWith(t, rdb, approvals.Policy{Required: 1, Timeout: time.Hour},
					envOptions{mod: func(o *handlers.Options) { o.Replicas = &liveReplicas{names: tc.live} }})
				g := e.openUnposted(t)
				if ok, err := e.store.ClaimPost(t.Context(), g.ID, "killed-1", 4*time.Minute); err != nil || !ok {
					t.Fatalf("ClaimPost for the killed replica = %v, %v", ok, err)
				}
				if !tc.posted {
					time.Sleep(time.Second) // the sweep runs 300 ms after creation
					if n := e.connectorCalls(); n != 0 {
						t.Fatalf("the card was posted %d times while its poster was live", n)
					}
					return
				}
				gateID, _ := e.lastCardPost(1)
				if gateID != g.ID {
					t.Fatalf("posted %s, want %s", gateID, g.ID)
				}
				if h, _ := e.store.PostHolder(t.Context(), g.ID); h != "local" {
					t.Errorf("post claim held by %q after the takeover, want local", h)
				}
			})
		}
	}
}

// TestShutdownGivesBackACardPost: a /run whose card is still waiting for
// the Connector when shutdown's deadline comes is not cancelled; its post
// claim is given back and the gate is due for another replica's sweep at
// once, not after the lease.
func TestShutdownGivesBackACardPost(t *testing.T) {
	for name, rdb := range redisClients(t) {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, rdb, approvals.Policy{Required: 1, Timeout: time.Hour})
			hold := make(chan struct{})
			e.conn.mu.Lock()
			e.conn.holdPosts = hold
			e.conn.mu.Unlock()
			t.Cleanup(func() { close(hold) })
			e.send(alex, "/run demo version=1.2.3")
			var g *approvals.Gate
			deadline := time.Now().Add(5 * time.Second)
			for g == nil || func() bool { h, _ := e.store.PostHolder(t.Context(), g.ID); return h != "local" }() {
				if time.Now().After(deadline) {
					t.Fatal("the /run's card post never started")
				}
				time.Sleep(10 * time.Millisecond)
				if gs, _, _ := e.store.List(t.Context(), approvals.ListQuery{}); len(gs) == 1 {
					g = gs[0]
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			if err := e.h.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Shutdown = %v, want the deadline", err)
			}
			if h, _ := e.store.PostHolder(t.Context(), g.ID); h != "" {
				t.Errorf("post claim still held by %q after shutdown", h)
			}
			if st := e.storedGate(g.ID).State; st != approvals.StatePending {
				t.Errorf("gate is %s after an interrupted post, want pending (not cancelled)", st)
			}
			due, err := e.store.DueUnposted(t.Context(), 10)
			if err != nil || len(due) != 1 || due[0].ID != g.ID {
				t.Errorf("DueUnposted right after shutdown = %v, %v; want the gate, due now", due, err)
			}
		})
	}
}
