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
		key := e.store.layoutKey()
		replica := func() *Store { s, _ := NewStore(e.rdb, e.store.opts); return s }
		if err := e.store.CheckLayout(ctx); err != nil || e.store.isLegacy() {
			t.Fatalf("fresh prefix: %v, legacy %v", err, e.store.isLegacy())
		}
		if v := e.rdb.Get(ctx, key).Val(); v != "3" {
			t.Fatalf("layout recorded %q, want 3", v)
		}
		for _, old := range []string{"1", "2"} {
			e.rdb.Set(ctx, key, old, 0)
			s := replica()
			if err := s.CheckLayout(ctx); err != nil || e.rdb.Get(ctx, key).Val() != "2" || !s.isLegacy() {
				t.Fatalf("older layout %s: %v, recorded %q, legacy %v; want 2 and layout-2 writes", old, err, e.rdb.Get(ctx, key).Val(), s.isLegacy())
			}
		}
		s := replica()
		if err := s.MigrateLayout(ctx); err != nil || e.rdb.Get(ctx, key).Val() != "3" || s.isLegacy() {
			t.Fatalf("migrate: %v, recorded %q, legacy %v", err, e.rdb.Get(ctx, key).Val(), s.isLegacy())
		}
		e.rdb.Set(ctx, key, "4", 0)
		if err := replica().CheckLayout(ctx); !errors.Is(err, ErrLayout) {
			t.Fatalf("newer layout: %v, want ErrLayout", err)
		}
		if err := replica().MigrateLayout(ctx); !errors.Is(err, ErrLayout) {
			t.Fatalf("migrating a newer layout: %v, want ErrLayout", err)
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

// TestLayout2Migration is a rolling upgrade from layout 2: gatebots that
// know layout 3 meet layout-2 data, keep writing what a layout-2 gatebot
// reads, and serve the old gates; MigrateLayout converts the data, and a
// replica that has not noticed yet switches within layoutRecheck and
// clears what it wrote the old way.
func TestLayout2Migration(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.rdb.Set(ctx, e.store.layoutKey(), "2", 0)
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
		a, b := e.store, newReplica(t, e)
		for _, s := range []*Store{a, b} {
			if err := s.CheckLayout(ctx); err != nil || !s.isLegacy() {
				t.Fatalf("CheckLayout on layout 2: %v, legacy %v", err, s.isLegacy())
			}
		}
		checkServed(t, a, ids)
		// A gate opened meanwhile is written as layout 2 would.
		e.clock.Advance(time.Minute)
		mid := mustCreate(t, a, typicalGate())
		if rec := e.rdb.Get(ctx, a.gateKey(mid.ID)).Val(); rec[0] != tagDeflateV1 && rec[0] != '{' {
			t.Errorf("record written with tag %#x during the upgrade", rec[0])
		}
		if _, err := codecV1.decode([]byte(e.rdb.Get(ctx, a.gateKey(mid.ID)).Val())); err != nil {
			t.Errorf("a layout-2 gatebot cannot read it: %v", err)
		}
		for _, k := range []string{"ix:all", "ix:p:deploy-api", "ix:s:pending"} {
			if e.rdb.ZScore(ctx, e.prefix+k, mid.ID).Err() != nil {
				t.Errorf("gate opened during the upgrade missing from %s", k)
			}
		}
		last := e.rdb.XRevRangeN(ctx, a.auditKey(), "+", "-", 1).Val()
		if len(last) != 1 || last[0].Values[afActID] != "aad:"+mid.Requester.AADObjectID || last[0].Values[afTo] != "pending" {
			t.Errorf("audit entry during the upgrade: %v", last)
		}
		if _, err := a.SetPost(ctx, ids[2], Post{ActivityID: "x"}, "digest-c"); err != nil {
			t.Fatal(err)
		}

		if err := a.MigrateLayout(ctx); err != nil || a.isLegacy() {
			t.Fatalf("MigrateLayout: %v, legacy %v", err, a.isLegacy())
		}
		if v := e.rdb.Get(ctx, a.layoutKey()).Val(); v != "3" {
			t.Errorf("layout %q after migrating", v)
		}
		for i, want := range []string{"digest-a", "digest-b", "digest-c"} {
			if got := e.rdb.HGet(ctx, a.cardSentKey(ids[i]), ids[i]).Val(); got != want {
				t.Errorf("card digest of %s = %q after migration, want %q", ids[i], got, want)
			}
		}
		for _, k := range []string{"ob:cardsent", "ix:all", "ix:p:api", "ix:p:web:eu", "ix:s:pending", "ix:s:succeeded"} {
			if e.rdb.Exists(ctx, e.prefix+k).Val() != 0 {
				t.Errorf("%s survived the migration", k)
			}
		}
		if pls, _ := a.pipelines(ctx); !slices.Equal(pls, []string{"api", "deploy-api", "web:eu"}) {
			t.Errorf("pipelines = %v", pls)
		}
		ids = append([]string{mid.ID}, ids...)
		checkServed(t, a, ids[1:])
		checkLateSwitch(t, e, a, b, ids)
	})
}

// checkLateSwitch: replica b, which has not looked at the layout since
// a migrated, still writes layout 2 until its recheck, then switches,
// clears the layout-2 keys and serves the migrated gates (ids: the gate
// opened during the upgrade, then TestLayout2Migration's three).
func checkLateSwitch(t *testing.T, e *env, a, b *Store, ids []string) {
	t.Helper()
	ctx := context.Background()
	e.clock.Advance(time.Second)
	late := mustCreate(t, b, typicalGate())
	if e.rdb.Exists(ctx, e.prefix+"ix:all").Val() == 0 {
		t.Fatalf("the replica that has not noticed did not write layout 2")
	}
	b.mode.checked = time.Time{} // layoutRecheck has passed
	if gs, _, err := b.List(ctx, ListQuery{Pipeline: "deploy-api"}); err != nil || len(gs) != 2 || gs[0].ID != late.ID {
		t.Errorf("List after the switch: %v, %v", gs, err)
	}
	if b.isLegacy() || e.rdb.Exists(ctx, e.prefix+"ix:all").Val() != 0 {
		t.Errorf("replica did not switch and clear: legacy %v", b.isLegacy())
	}
	g, _, err := b.Decide(ctx, ids[1], typicalVoters()[0], false, "no", "")
	if err != nil || g.State != StateRejected {
		t.Fatalf("Decide on a migrated gate: %v", err)
	}
	if gs, _, _ := a.List(ctx, ListQuery{State: StateRejected}); len(gs) != 1 || gs[0].ID != ids[1] {
		t.Errorf("rejected list = %v", gs)
	}
}

// newReplica is another Store on e's Redis and prefix.
func newReplica(t *testing.T, e *env) *Store {
	t.Helper()
	s, err := NewStore(e.rdb, e.store.opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkServed checks that the three gates TestLayout2Migration wrote
// (api pending, web:eu pending, api succeeded, oldest first) are listed,
// counted and resolved by s.
func checkServed(t *testing.T, s *Store, ids []string) {
	t.Helper()
	ctx := context.Background()
	for _, tt := range []struct {
		q    ListQuery
		want []string
	}{
		{ListQuery{Pipeline: "api"}, []string{ids[2], ids[0]}},
		{ListQuery{State: StateSucceeded}, []string{ids[2]}},
		{ListQuery{Pipeline: "web:eu", State: StatePending}, []string{ids[1]}},
	} {
		gs, _, err := s.List(ctx, tt.q)
		var got []string
		for _, g := range gs {
			got = append(got, g.ID)
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("List %+v = %v, %v; want %v", tt.q, got, err, tt.want)
		}
	}
	if gs, _, err := s.List(ctx, ListQuery{Limit: 500}); err != nil || len(gs) < 3 {
		t.Errorf("List all: %d gates, %v", len(gs), err)
	}
	if c, err := s.CountByState(ctx); err != nil || c[StatePending] < 2 {
		t.Errorf("CountByState = %v, %v; want at least 2 pending", c, err)
	}
	if g, err := s.Resolve(ctx, "oldbxxxxx"); err != nil || g.ID != ids[1] {
		t.Errorf("Resolve by prefix: %v, %v", g, err)
	}
}
