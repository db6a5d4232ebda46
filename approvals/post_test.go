package approvals

import (
	"context"
	"testing"
	"time"
)

// TestPostClaims: one poster at a time; only the holder gives a claim back
// (and the gate is then due for the unposted sweep at once); a takeover
// succeeds only from the holder named, so two replicas taking over from
// one dead poster cannot both win.
func TestPostClaims(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		g := mustCreate(t, e.store, newGate("deploy-api", 1, time.Hour))
		claim := func(holder string) bool {
			ok, err := e.store.ClaimPost(ctx, g.ID, holder, 4*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		holder := func() string {
			h, err := e.store.PostHolder(ctx, g.ID)
			if err != nil {
				t.Fatal(err)
			}
			return h
		}
		if h := holder(); h != "" {
			t.Fatalf("holder before any claim = %q", h)
		}
		if !claim("r1") || claim("r2") {
			t.Fatal("want r1 to claim and r2 refused")
		}
		if err := e.store.ReleasePost(ctx, g.ID, "r2"); err != nil {
			t.Fatal(err)
		}
		if h := holder(); h != "r1" {
			t.Fatalf("a release by r2 dropped r1's claim: holder %q", h)
		}
		if due, _ := e.store.DueUnposted(ctx, 10); len(due) != 0 {
			t.Fatalf("a refused release made the gate due: %v", due)
		}
		if err := e.store.ReleasePost(ctx, g.ID, "r1"); err != nil {
			t.Fatal(err)
		}
		if h := holder(); h != "" {
			t.Fatalf("holder after r1 released = %q", h)
		}
		due, err := e.store.DueUnposted(ctx, 10)
		if err != nil || len(due) != 1 || due[0].ID != g.ID {
			t.Fatalf("DueUnposted after release = %v, %v; want the gate at once", due, err)
		}

		if !claim("dead") {
			t.Fatal("claim after release refused")
		}
		won := 0
		for _, r := range []string{"r1", "r2"} {
			ok, err := e.store.TakeOverPost(ctx, g.ID, "dead", r, 4*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				won++
			}
		}
		if won != 1 || holder() != "r1" {
			t.Errorf("takeovers from one dead poster: %d won, holder %q; want exactly r1", won, holder())
		}
	})
}
