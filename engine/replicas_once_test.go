package engine

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatebot/gatebot/approvals"
)

// TestTwoReplicasExpireAndRemindOnce: two engines on one Redis share the
// expiry and reminder schedules: every gate is reminded once, expires
// once, its requester is told once, and its card ends on expired.
func TestTwoReplicasExpireAndRemindOnce(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		s1, s2 := newStore(t, rdb, prefix), newStore(t, rdb, prefix)
		tm := newTeams()
		pls := func() map[string]*Pipeline { return map[string]*Pipeline{"deploy": pipeline(newProvider("ci"), "ci")} }
		run(t, s1, tm, "r1", pls())
		run(t, s2, tm, "r2", pls())
		var ids []string
		for i := range 12 {
			st := []*approvals.Store{s1, s2}[i%2]
			g, _, err := st.Create(t.Context(), &approvals.Gate{Pipeline: "deploy", Requester: alice,
				Policy: approvals.Policy{Required: 1, Timeout: 1500 * time.Millisecond, RemindBefore: time.Second}}, "")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.SetPost(t.Context(), g.ID, approvals.Post{Conversation: []byte(`{"conversation":{"id":"c1"}}`), ActivityID: "act-" + g.ID}, ""); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, g.ID)
		}
		for _, id := range ids {
			eventually(t, "gate "+id+" expired on its card", func() bool {
				ss := tm.sendsOf(id)
				return len(ss) > 0 && ss[len(ss)-1].state == approvals.StateExpired
			})
		}
		time.Sleep(500 * time.Millisecond) // more ticks of both replicas' loops
		tm.mu.Lock()
		defer tm.mu.Unlock()
		for _, id := range ids {
			if n := count(tm.expired, id); n != 1 {
				t.Errorf("gate %s: requester told of the expiry %d times, want 1", id, n)
			}
			if n := count(tm.reminded, id); n != 1 {
				t.Errorf("gate %s: reminded %d times, want 1", id, n)
			}
		}
	})
}

func count(ids []string, id string) int {
	n := 0
	for _, x := range ids {
		if x == id {
			n++
		}
	}
	return n
}
