package approvals

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestCheckLayout(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		key := e.store.opts.Prefix + "layout"
		if err := e.store.CheckLayout(ctx); err != nil {
			t.Fatalf("fresh prefix: %v", err)
		}
		if v := e.rdb.Get(ctx, key).Val(); v != "3" {
			t.Fatalf("layout recorded %q, want 3", v)
		}
		for _, old := range []string{"1", "2"} {
			e.rdb.Set(ctx, key, old, 0)
			if err := e.store.CheckLayout(ctx); err != nil || e.rdb.Get(ctx, key).Val() != "3" {
				t.Fatalf("older layout %s: %v, recorded %q; want it raised to 3", old, err, e.rdb.Get(ctx, key).Val())
			}
		}
		e.rdb.Set(ctx, key, "4", 0)
		if err := e.store.CheckLayout(ctx); !errors.Is(err, ErrLayout) {
			t.Fatalf("newer layout: %v, want ErrLayout", err)
		}
		if v := e.rdb.Get(ctx, key).Val(); v != "4" {
			t.Errorf("a newer layout was lowered to %q", v)
		}
	})
}

// writeLayout2 stores g as a layout-2 gatebot did: the record in the
// version-1 codec and the gate in all four list indexes.
func writeLayout2(t *testing.T, e *env, g *Gate) {
	t.Helper()
	ctx := context.Background()
	var c recordCodec
	raw, err := c.encode(g)
	if err != nil {
		t.Fatal(err)
	}
	z := redis.Z{Score: ms(g.CreatedAt), Member: g.ID}
	p := e.rdb.TxPipeline()
	p.Set(ctx, e.store.gateKey(g.ID), raw, 0)
	for _, k := range []string{"ix:all", "ix:p:" + g.Pipeline, "ix:s:" + string(g.State), "ix:ps:" + string(g.State) + ":" + g.Pipeline} {
		p.ZAdd(ctx, e.prefix+k, z)
	}
	if !g.Deadline.IsZero() {
		p.ZAdd(ctx, e.store.dueKey(), redis.Z{Score: ms(g.Deadline), Member: g.ID})
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestLayout2Migration: gates a layout-2 gatebot wrote are listed,
// counted, resolved by prefix and decided after CheckLayout migrates the
// indexes, their card digests are in the new hashes, and the dropped keys
// are gone.
func TestLayout2Migration(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.rdb.Set(ctx, e.prefix+"layout", "2", 0)
		now := e.clock.Now()
		var ids []string
		for i, spec := range []struct {
			pl string
			st State
		}{{"api", StatePending}, {"web:eu", StatePending}, {"api", StateSucceeded}} {
			g := typicalGate()
			g.ID = "g_old" + string(rune('a'+i)) + "xxxxxxxxxxxxxxx"
			g.Pipeline, g.State, g.Version = spec.pl, spec.st, 1
			g.CreatedAt, g.UpdatedAt, g.Deadline = now.Add(time.Duration(i)*time.Second), now, now.Add(time.Hour)
			writeLayout2(t, e, g)
			ids = append(ids, g.ID)
		}
		e.rdb.HSet(ctx, e.prefix+"ob:cardsent", ids[0], "digest-a", ids[1], "digest-b")
		if err := e.store.CheckLayout(ctx); err != nil {
			t.Fatal(err)
		}
		for i, want := range []string{"digest-a", "digest-b"} {
			if got := e.rdb.HGet(ctx, e.store.cardSentKey(ids[i]), ids[i]).Val(); got != want {
				t.Errorf("card digest of %s = %q after migration, want %q", ids[i], got, want)
			}
		}
		for _, k := range []string{"ob:cardsent", "ix:all", "ix:p:api", "ix:p:web:eu", "ix:s:pending", "ix:s:succeeded"} {
			if e.rdb.Exists(ctx, e.prefix+k).Val() != 0 {
				t.Errorf("%s survived the migration", k)
			}
		}
		if pls, _ := e.store.pipelines(ctx); !slices.Equal(pls, []string{"api", "web:eu"}) {
			t.Errorf("pipelines = %v, want [api web:eu]", pls)
		}
		for _, tt := range []struct {
			q    ListQuery
			want []string
		}{
			{ListQuery{}, []string{ids[2], ids[1], ids[0]}},
			{ListQuery{State: StatePending}, []string{ids[1], ids[0]}},
			{ListQuery{Pipeline: "api"}, []string{ids[2], ids[0]}},
		} {
			gs, _, err := e.store.List(ctx, tt.q)
			var got []string
			for _, g := range gs {
				got = append(got, g.ID)
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("List %+v = %v, %v; want %v", tt.q, got, err, tt.want)
			}
		}
		if c, err := e.store.CountByState(ctx); err != nil || c[StatePending] != 2 {
			t.Errorf("CountByState = %v, %v; want 2 pending", c, err)
		}
		if g, err := e.store.Resolve(ctx, "oldbxxxxx"); err != nil || g.ID != ids[1] {
			t.Errorf("Resolve by prefix: %v, %v", g, err)
		}
		g, _, err := e.store.Decide(ctx, ids[0], typicalVoters()[0], false, "no", "")
		if err != nil || g.State != StateRejected {
			t.Fatalf("Decide on a migrated gate: %v", err)
		}
		if gs, _, _ := e.store.List(ctx, ListQuery{State: StateRejected}); len(gs) != 1 || gs[0].ID != ids[0] {
			t.Errorf("rejected list = %v", gs)
		}
	})
}
