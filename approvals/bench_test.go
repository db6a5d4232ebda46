package approvals

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatebot/gatebot/pipelines"
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

// BenchmarkScheduleNotDue shows that expiry and run-status polling cost
// the same whatever the number of gates not due yet: the expiry and poll
// schedules hold 1,000 or 100,000 members due in a day, and each
// iteration expires (and acknowledges) one gate that is due, or claims one
// due poll. Both claims are one ZRANGEBYSCORE … LIMIT, O(log n + due).
func BenchmarkScheduleNotDue(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("expire/notdue=%d", n), func(b *testing.B) {
			e := newEnv(b, true, Options{})
			ctx := context.Background()
			fillSchedule(b, e, e.store.dueKey(), n)
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				g := mustCreate(b, e.store, newGate("deploy-api", 1, time.Second))
				e.clock.Advance(2 * time.Second)
				b.StartTimer()
				got, err := e.store.ExpireDue(ctx, 100)
				if err != nil || len(got) != 1 || got[0].ID != g.ID {
					b.Fatalf("ExpireDue: %d gates, %v", len(got), err)
				}
				if err := e.store.AckExpired(ctx, g.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("poll/notdue=%d", n), func(b *testing.B) {
			e := newEnv(b, true, Options{})
			ctx := context.Background()
			fillSchedule(b, e, e.store.pollKey(), n)
			g := runningGate(b, e)
			b.ResetTimer()
			for b.Loop() {
				got, _, err := e.store.ClaimPolls(ctx, 100, time.Millisecond)
				if err != nil || len(got) != 1 || got[0].ID != g.ID {
					b.Fatalf("ClaimPolls: %d gates, %v", len(got), err)
				}
				b.StopTimer()
				e.clock.Advance(time.Second) // the claim lease runs out
				b.StartTimer()
			}
		})
	}
}

// fillSchedule adds n members due in a day to the schedule key.
func fillSchedule(b *testing.B, e *env, key string, n int) {
	ctx := context.Background()
	at := ms(e.clock.Now().Add(24 * time.Hour))
	for i := 0; i < n; i += 1000 {
		zs := make([]redis.Z, 0, 1000)
		for j := i; j < min(i+1000, n); j++ {
			zs = append(zs, redis.Z{Score: at + float64(j), Member: fmt.Sprintf("g_notdue%012d", j)})
		}
		if err := e.rdb.ZAdd(ctx, key, zs...).Err(); err != nil {
			b.Fatal(err)
		}
	}
}

// runningGate opens, approves and triggers a gate up to running.
func runningGate(b *testing.B, e *env) *Gate {
	ctx := context.Background()
	g := mustCreate(b, e.store, newGate("deploy-api", 1, time.Hour))
	if _, _, err := e.store.Decide(ctx, g.ID, bob, true, "", ""); err != nil {
		b.Fatal(err)
	}
	if _, err := e.store.updateWith(ctx, g.ID, func(g *Gate) error { g.State = StateTriggering; return nil }); err != nil {
		b.Fatal(err)
	}
	g, err := e.store.updateWith(ctx, g.ID, func(g *Gate) error {
		g.State, g.Run = StateRunning, &pipelines.Run{ID: "run-1"}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return g
}
