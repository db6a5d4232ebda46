package approvals

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
)

func TestList(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		var all []string // newest first
		for i := range 13 {
			pl := "api"
			if i%3 == 0 {
				pl = "web"
			}
			g := mustCreate(t, e.store, newGate(pl, 1, time.Hour))
			all = append([]string{g.ID}, all...)
			if i%4 == 0 {
				e.clock.Advance(time.Second) // several gates share a millisecond
			}
		}
		byID := map[string]*Gate{}
		for _, id := range all {
			byID[id], _ = e.store.Get(ctx, id)
		}
		// Approve two api gates.
		approved := 0
		for _, id := range all {
			if byID[id].Pipeline == "api" && approved < 2 {
				if _, _, err := e.store.Decide(ctx, id, bob, true, "", ""); err != nil {
					t.Fatal(err)
				}
				approved++
			}
		}
		// Newest first; gates created in the same millisecond by id, descending.
		slices.SortStableFunc(all, func(a, b string) int {
			if c := byID[b].CreatedAt.Compare(byID[a].CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(b, a)
		})
		want := func(keep func(g *Gate) bool) []string {
			var out []string
			for _, id := range all {
				g, _ := e.store.Get(ctx, id)
				if keep(g) {
					out = append(out, id)
				}
			}
			return out
		}
		tests := []struct {
			q    ListQuery
			keep func(g *Gate) bool
		}{
			{ListQuery{Limit: 4}, func(*Gate) bool { return true }},
			{ListQuery{Limit: 1}, func(*Gate) bool { return true }},
			{ListQuery{Pipeline: "api", Limit: 3}, func(g *Gate) bool { return g.Pipeline == "api" }},
			{ListQuery{Pipeline: "web", Limit: 2}, func(g *Gate) bool { return g.Pipeline == "web" }},
			{ListQuery{State: StatePending, Limit: 3}, func(g *Gate) bool { return g.State == StatePending }},
			{ListQuery{Pipeline: "api", State: StateApproved, Limit: 1}, func(g *Gate) bool { return g.Pipeline == "api" && g.State == StateApproved }},
			{ListQuery{Pipeline: "none"}, func(*Gate) bool { return false }},
		}
		for _, tt := range tests {
			var got []string
			q := tt.q
			for pages := 0; ; pages++ {
				gs, next, err := e.store.List(ctx, q)
				if err != nil {
					t.Fatalf("%+v: %v", q, err)
				}
				if len(gs) > q.Limit && q.Limit > 0 {
					t.Errorf("%+v: page of %d", q, len(gs))
				}
				if next != "" && len(gs) == 0 {
					t.Errorf("%+v: empty page with a next cursor", q)
				}
				for _, g := range gs {
					got = append(got, g.ID)
				}
				if next == "" || pages > 20 {
					// The last page says so: no cursor to an empty page.
					if tt.q.Limit > 0 && len(gs) == 0 && pages > 0 {
						t.Errorf("%+v: trailing empty page", tt.q)
					}
					break
				}
				q.Cursor = next
			}
			if diff := cmp.Diff(want(tt.keep), got); diff != "" {
				t.Errorf("List %+v (-want +got):\n%s", tt.q, diff)
			}
		}
		// A gate whose record expired is pruned from the index it was met in.
		e.rdb.Del(ctx, e.store.gateKey(all[0]))
		gs, _, err := e.store.List(ctx, ListQuery{Limit: 100})
		if err != nil || len(gs) != len(all)-1 {
			t.Errorf("List after expiry: %d gates, %v", len(gs), err)
		}
		if n := indexed(t, e, "", ""); n != int64(len(all)-1) {
			t.Errorf("index holds %d gates after a record expired, want %d", n, len(all)-1)
		}
		if _, err := e.rdb.ZScore(ctx, e.store.ixPipelineState(byID[all[0]].Pipeline, byID[all[0]].State), all[0]).Result(); !errors.Is(err, redis.Nil) {
			t.Errorf("expired gate not pruned from the index")
		}
		if _, _, err := e.store.List(ctx, ListQuery{Cursor: "garbage"}); !errors.Is(err, ErrBadCursor) {
			t.Errorf("bad cursor: %v", err)
		}
	})
}

func TestOnceAndConversations(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		for i, want := range []bool{true, false, false} {
			if got, err := e.store.Once(ctx, "act-1", time.Minute); err != nil || got != want {
				t.Errorf("Once #%d = %v, %v; want %v", i, got, err, want)
			}
		}
		if ttl := e.rdb.TTL(ctx, e.store.seenKey("act-1")).Val(); ttl <= 0 || ttl > time.Minute {
			t.Errorf("seen TTL = %v", ttl)
		}
		if _, err := e.store.Conversation(ctx, "c1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing conversation: %v", err)
		}
		ref := []byte(`{"conversation":{"id":"19:abc@thread.tacv2"}}`)
		if err := e.store.PutConversation(ctx, "c1", ref); err != nil {
			t.Fatal(err)
		}
		if got, err := e.store.Conversation(ctx, "c1"); err != nil || string(got) != string(ref) {
			t.Errorf("Conversation = %s, %v", got, err)
		}
		if err := e.store.DeleteConversation(ctx, "c1"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.Conversation(ctx, "c1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted conversation: %v", err)
		}
		if err := e.store.Ping(ctx); err != nil {
			t.Errorf("Ping: %v", err)
		}
	})
}
