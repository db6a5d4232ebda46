package approvals

import (
	"context"
	"testing"
	"time"
)

// TestCardDigests: the digest SetPost records comes back with the card's
// next sync, FinishCardSync replaces it, and a final gate's is forgotten;
// each gate's digest is its own however the gates share a hash.
func TestCardDigests(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		a := mustCreate(t, e.store, &Gate{ID: "g_first-xy", Pipeline: "api", Requester: alice, Policy: Policy{Required: 1}})
		b := mustCreate(t, e.store, &Gate{ID: "g_second-xy", Pipeline: "api", Requester: alice, Policy: Policy{Required: 1}})
		if e.store.cardSentKey(a.ID) != e.store.cardSentKey(b.ID) {
			t.Fatalf("test gates meant to share a digest hash: %s, %s", e.store.cardSentKey(a.ID), e.store.cardSentKey(b.ID))
		}
		claim := func() map[string]CardSync {
			t.Helper()
			e.clock.Advance(time.Minute)
			syncs, err := e.store.ClaimCardSyncs(ctx, 10, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]CardSync{}
			for _, c := range syncs {
				out[c.GateID] = c
			}
			return out
		}
		for _, g := range []*Gate{a, b} {
			if _, err := e.store.SetPost(ctx, g.ID, Post{ActivityID: "act-" + g.ID}, "posted-"+g.ID); err != nil {
				t.Fatal(err)
			}
		}
		got := claim()
		for _, g := range []*Gate{a, b} {
			if got[g.ID].LastDigest != "posted-"+g.ID {
				t.Errorf("%s: last digest %q after the post", g.ID, got[g.ID].LastDigest)
			}
			if err := e.store.FinishCardSync(ctx, g.ID, got[g.ID].Version, "synced-"+g.ID, false); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := e.store.Decide(ctx, a.ID, bob, true, "", ""); err != nil {
			t.Fatal(err)
		}
		got = claim()
		if got[a.ID].LastDigest != "synced-"+a.ID {
			t.Errorf("last digest %q after a sync", got[a.ID].LastDigest)
		}
		if err := e.store.FinishCardSync(ctx, a.ID, got[a.ID].Version, "x", true); err != nil {
			t.Fatal(err)
		}
		if e.rdb.HExists(ctx, e.store.cardSentKey(a.ID), a.ID).Val() {
			t.Errorf("a final gate's digest is kept")
		}
		if v := e.rdb.HGet(ctx, e.store.cardSentKey(b.ID), b.ID).Val(); v != "synced-"+b.ID {
			t.Errorf("the other gate's digest is %q", v)
		}
	})
}
