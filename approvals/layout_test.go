package approvals

import (
	"context"
	"errors"
	"testing"
)

func TestCheckLayout(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		key := e.store.opts.Prefix + "layout"
		if err := e.store.CheckLayout(ctx); err != nil {
			t.Fatalf("fresh prefix: %v", err)
		}
		if v := e.rdb.Get(ctx, key).Val(); v != "2" {
			t.Fatalf("layout recorded %q, want 2", v)
		}
		e.rdb.Set(ctx, key, "1", 0)
		if err := e.store.CheckLayout(ctx); err != nil || e.rdb.Get(ctx, key).Val() != "2" {
			t.Fatalf("older layout: %v, recorded %q; want it raised to 2", err, e.rdb.Get(ctx, key).Val())
		}
		e.rdb.Set(ctx, key, "3", 0)
		if err := e.store.CheckLayout(ctx); !errors.Is(err, ErrLayout) {
			t.Fatalf("newer layout: %v, want ErrLayout", err)
		}
		if v := e.rdb.Get(ctx, key).Val(); v != "3" {
			t.Errorf("a newer layout was lowered to %q", v)
		}
	})
}
