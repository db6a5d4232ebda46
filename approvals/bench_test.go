package approvals

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkApproveToEnqueue measures the vote that completes a quorum of
// one: read the gate, apply the vote, write gate, indexes, trigger and
// audit entry in one transaction, against the real Redis. It reports
// approvals per second and the 99th-percentile latency.
func BenchmarkApproveToEnqueue(b *testing.B) {
	for _, bc := range []struct {
		name string
		par  int
	}{{"serial", 1}, {"parallel16", 16}} {
		par := bc.par
		b.Run(bc.name, func(b *testing.B) {
			e := newEnv(b, true, Options{Now: time.Now})
			ctx := context.Background()
			gates := make([]*Gate, b.N)
			var wg sync.WaitGroup
			var next atomic.Int64
			for range 16 {
				wg.Go(func() {
					for i := int(next.Add(1) - 1); i < b.N; i = int(next.Add(1) - 1) {
						gates[i] = mustCreate(b, e.store, newGate("deploy-api", 1, time.Hour))
					}
				})
			}
			wg.Wait()
			lat := make([]time.Duration, b.N)
			next.Store(0)
			b.ResetTimer()
			start := time.Now()
			for range par {
				wg.Go(func() {
					for i := int(next.Add(1) - 1); i < b.N; i = int(next.Add(1) - 1) {
						t0 := time.Now()
						_, out, err := e.store.Decide(ctx, gates[i].ID, bob, true, "", "conv")
						lat[i] = time.Since(t0)
						if err != nil || out != OutcomeApproved {
							b.Errorf("Decide: %v %v", out, err)
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if n := e.rdb.XLen(ctx, e.store.triggerKey("deploy-api")).Val(); n != int64(b.N) {
				b.Fatalf("enqueued %d triggers for %d approvals", n, b.N)
			}
			slices.Sort(lat)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "approvals/s")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		})
	}
}
