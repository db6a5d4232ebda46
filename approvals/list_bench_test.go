package approvals

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkList reads the first page (50 gates) of the list queries the
// chat, the API and the CLI make, over 20,000 gates in 10 pipelines of
// which 30% are pending and the rest cancelled, on the real Redis.
func BenchmarkList(b *testing.B) {
	e := newEnv(b, true, Options{})
	ctx := context.Background()
	const n = 20_000
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := int(next.Add(1)); i <= n; i = int(next.Add(1)) {
				g := mustCreate(b, e.store, newGate(fmt.Sprintf("pipeline-%d", i%10), 1, time.Hour))
				if i%10 >= 3 {
					if _, err := e.store.Cancel(ctx, g.ID, alice, ""); err != nil {
						b.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	for _, q := range []struct {
		name string
		q    ListQuery
	}{
		{"all", ListQuery{}},
		{"state", ListQuery{State: StatePending}},
		{"pipeline", ListQuery{Pipeline: "pipeline-1"}},
		{"pipeline+state", ListQuery{Pipeline: "pipeline-1", State: StatePending}},
	} {
		b.Run(q.name, func(b *testing.B) {
			for b.Loop() {
				gs, _, err := e.store.List(ctx, q.q)
				if err != nil || len(gs) != 50 {
					b.Fatalf("List: %d gates, %v", len(gs), err)
				}
			}
		})
	}
}
