package approvals

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestPendingGatesMemory opens 100,000 typical pending gates in the real
// Redis and reports what they cost: MEMORY USAGE of a sample of gate
// records and of every shared structure (indexes, expiry schedule, audit
// stream), and the used_memory delta from INFO (noisier, since other
// clients may share the server). It fails if a pending gate costs more
// than 2 KiB all-in.
func TestPendingGatesMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping 100,000-gate memory measurement")
	}
	if raceEnabled {
		t.Skip("race detector on: skipping 100,000-gate memory measurement (run without -race)")
	}
	const n = 100_000
	e := newEnv(t, true, Options{Now: time.Now})
	ctx := context.Background()
	before := usedMemory(t, e)
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		mu   sync.Mutex
		ids  []string
	)
	start := time.Now()
	for range 32 {
		wg.Go(func() {
			for i := next.Add(1); i <= n; i = next.Add(1) {
				g := typicalGate()
				g.Inputs["version"] = fmt.Sprintf("1.%d.%d", i/1000, i%1000)
				g, _, err := e.store.Create(ctx, g, "")
				if err != nil {
					t.Errorf("Create: %v", err)
					return
				}
				if i%100 == 0 {
					mu.Lock()
					ids = append(ids, g.ID)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	created := time.Since(start)
	after := usedMemory(t, e)

	var gateBytes int64
	for _, id := range ids {
		gateBytes += e.rdb.MemoryUsage(ctx, e.store.gateKey(id)).Val()
	}
	perGate := gateBytes / int64(len(ids))
	shared := map[string]int64{}
	var sharedTotal int64
	for _, k := range []string{e.store.ixAll(), e.store.ixPipeline("deploy-api"), e.store.ixState(StatePending),
		e.store.ixPipelineState("deploy-api", StatePending), e.store.dueKey(), e.store.auditKey()} {
		m, err := e.rdb.MemoryUsage(ctx, k, 0).Result() // SAMPLES 0: every element
		if err != nil {
			t.Fatalf("MEMORY USAGE %s: %v", k, err)
		}
		shared[strings.TrimPrefix(k, e.prefix)] = m
		sharedTotal += m
	}
	total := perGate*n + sharedTotal
	t.Logf("%d pending gates created in %v (%.0f/s)", n, created.Round(time.Millisecond), float64(n)/created.Seconds())
	t.Logf("gate record: %d B each (MEMORY USAGE, %d sampled) = %.1f MiB", perGate, len(ids), float64(perGate*n)/(1<<20))
	for k, m := range shared {
		t.Logf("%-28s %7.1f MiB (%d B per gate)", k, float64(m)/(1<<20), m/n)
	}
	t.Logf("total by MEMORY USAGE: %.1f MiB, %d B per pending gate; INFO used_memory delta: %.1f MiB, %d B per gate",
		float64(total)/(1<<20), total/n, float64(after-before)/(1<<20), (after-before)/n)
	if total/n > 2048 {
		t.Errorf("a pending gate costs %d B all-in, want ≤ 2048", total/n)
	}
	if got := e.rdb.ZCard(ctx, e.store.dueKey()).Val(); got != n {
		t.Errorf("expiry schedule holds %d, want %d", got, n)
	}
}

func usedMemory(t *testing.T, e *env) int64 {
	info, err := e.rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("no used_memory in INFO")
	return 0
}
