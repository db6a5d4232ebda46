package approvals

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestCardDigests: the digest SetPost records comes back with the card's
// next sync (LoadCardSync), FinishCardSync replaces it, and a final gate's is forgotten;
// each gate's digest is its own however the gates share a hash.
func TestCardDigests(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		a := mustCreate(t, e.store, &Gate{ID: "g_first-xy", Pipeline: "api", Requester: alice, Policy: Policy{Required: 1}})
		b := mustCreate(t, e.store, &Gate{ID: "g_second-xy", Pipeline: "api", Requester: alice, Policy: Policy{Required: 1}})
		if e.store.cardSentKey(a.ID) != e.store.cardSentKey(b.ID) {
			t.Fatalf("test gates meant to share a digest hash: %s, %s", e.store.cardSentKey(a.ID), e.store.cardSentKey(b.ID))
		}
		type claimed struct {
			CardSync
			LastDigest string
		}
		claim := func() map[string]claimed {
			t.Helper()
			e.clock.Advance(time.Minute)
			syncs, _, err := e.store.ClaimCardSyncs(ctx, 10, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]claimed{}
			for _, c := range syncs {
				st, err := e.store.LoadCardSync(ctx, c.GateID)
				if err != nil {
					t.Fatal(err)
				}
				out[c.GateID] = claimed{c, st.LastDigest}
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

// TestLoadCardSync: a sync sees a click's hold until it ends or is
// released, and a gate that is gone as ErrNotFound.
func TestLoadCardSync(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		g := mustCreate(t, e.store, newGate("deploy", 1, time.Hour))
		if err := e.store.HoldCard(ctx, g.ID, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		st, err := e.store.LoadCardSync(ctx, g.ID)
		if err != nil || st.Gate.ID != g.ID || !st.HeldUntil.Equal(e.clock.Now().Add(10*time.Second).Truncate(time.Millisecond)) {
			t.Fatalf("held: %+v, %v; want the gate held for 10 s", st, err)
		}
		e.clock.Advance(11 * time.Second)
		if st, err := e.store.LoadCardSync(ctx, g.ID); err != nil || !st.HeldUntil.IsZero() {
			t.Errorf("a hold that ended: %v, %v; want none", st.HeldUntil, err)
		}
		if err := e.store.HoldCard(ctx, g.ID, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := e.store.ReleaseCard(ctx, g.ID); err != nil {
			t.Fatal(err)
		}
		if st, err := e.store.LoadCardSync(ctx, g.ID); err != nil || !st.HeldUntil.IsZero() {
			t.Errorf("a released hold: %v, %v; want none", st.HeldUntil, err)
		}
		if _, err := e.store.LoadCardSync(ctx, "g_gone"); !errors.Is(err, ErrNotFound) {
			t.Errorf("a gone gate: %v, want ErrNotFound", err)
		}
	})
}

// TestDecideHeld: a vote that changes a posted gate holds its shared card
// update in the vote's own script; a refused vote, or a gate with no card,
// holds nothing.
func TestDecideHeld(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		held := func(id string) time.Time {
			t.Helper()
			st, err := e.store.LoadCardSync(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return st.HeldUntil
		}
		g := mustCreate(t, e.store, newGate("deploy", 2, time.Hour))
		if _, err := e.store.SetPost(ctx, g.ID, Post{ActivityID: "act-1"}, "posted"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.store.DecideHeld(ctx, g.ID, bob, true, "", "19:c", 0); err == nil {
			t.Errorf("a hold of 0 was accepted")
		}
		if _, o, err := e.store.DecideHeld(ctx, g.ID, bob, true, "", "19:c", 8*time.Second); err != nil || o != OutcomeRecorded {
			t.Fatalf("vote: %v, %v", o, err)
		}
		want := e.clock.Now().Add(8 * time.Second).Truncate(time.Millisecond)
		if got := held(g.ID); !got.Equal(want) {
			t.Errorf("held until %v after the vote, want %v", got, want)
		}
		if err := e.store.ReleaseCard(ctx, g.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.store.DecideHeld(ctx, g.ID, bob, true, "", "19:c", 8*time.Second); !errors.Is(err, ErrAlreadyVoted) {
			t.Fatalf("second vote: %v, want ErrAlreadyVoted", err)
		}
		if got := held(g.ID); !got.IsZero() {
			t.Errorf("a refused vote held the card until %v", got)
		}
		unposted := mustCreate(t, e.store, newGate("deploy", 2, time.Hour))
		if _, _, err := e.store.DecideHeld(ctx, unposted.ID, bob, true, "", "19:c", 8*time.Second); err != nil {
			t.Fatal(err)
		}
		if e.rdb.HExists(ctx, e.store.cardHoldKey(), unposted.ID).Val() {
			t.Errorf("a gate with no card was held")
		}
	})
}
