package approvals

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestConcurrentApprovals opens many gates and lets five approvers per gate
// click Approve at the same instant, some twice (Teams redelivering), and
// checks that every gate produced exactly one trigger.
func TestConcurrentApprovals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		real  bool
		gates int
	}{{"miniredis", false, 100}, {"redis", true, 1000}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.real && testing.Short() {
				t.Skip("-short: skipping 1,000-gate run")
			}
			e := newEnv(t, tc.real, Options{Now: time.Now})
			runConcurrentApprovals(t, e, tc.gates)
		})
	}
}

func runConcurrentApprovals(t *testing.T, e *env, n int) {
	ctx := context.Background()
	approvers := []Person{bob, carol, dave, erin, {ID: "29:frank", AADObjectID: "ffff-6666", UPN: "frank@example.com"}}
	t0 := time.Now()
	gates := make([]*Gate, n)
	for i := range gates {
		g := newGate("deploy-api", 2+i%2, time.Hour) // required 2 or 3
		gates[i] = mustCreate(t, e.store, g)
	}
	t.Logf("created %d gates in %v", n, time.Since(t0))
	t0 = time.Now()
	var (
		approvedOutcomes, recorded, already, notPending atomic.Int64
		wg                                              sync.WaitGroup
	)
	// Gates go through in waves of inFlight, so the test measures
	// contention on each gate rather than on the client's connection pool;
	// within a gate all clicks start at the same instant.
	const inFlight = 40
	sem := make(chan struct{}, inFlight)
	for i, g := range gates {
		sem <- struct{}{}
		start := make(chan struct{})
		var gateWG sync.WaitGroup
		for j, p := range approvers {
			clicks := 1 + (i+j)%2 // every other approver clicks twice
			for range clicks {
				gateWG.Go(func() {
					<-start
					_, out, err := e.store.Decide(ctx, g.ID, p, true, "", "conv")
					switch {
					case errors.Is(err, ErrAlreadyVoted):
						already.Add(1)
					case errors.Is(err, ErrNotPending):
						notPending.Add(1)
					case err != nil:
						t.Errorf("gate %s, %s: %v", g.ID, p.UPN, err)
					case out == OutcomeApproved:
						approvedOutcomes.Add(1)
					case out == OutcomeRecorded:
						recorded.Add(1)
					default:
						t.Errorf("unexpected outcome %q", out)
					}
				})
			}
		}
		close(start)
		wg.Go(func() {
			gateWG.Wait()
			<-sem
		})
	}
	wg.Wait()
	t.Logf("decided in %v", time.Since(t0))

	counts := triggerCounts(t, e)
	var lost, extra int
	for _, g := range gates {
		switch c := counts[g.ID]; {
		case c == 0:
			lost++
		case c > 1:
			extra += c - 1
		}
		delete(counts, g.ID)
	}
	extra += len(counts) // triggers for gates we never opened
	if lost != 0 || extra != 0 {
		t.Errorf("triggers: %d gates lost, %d extra", lost, extra)
	}
	if got := e.rdb.XLen(ctx, e.store.triggerKey("deploy-api")).Val(); got != int64(n) {
		t.Errorf("trigger stream length = %d, want %d", got, n)
	}
	if got := approvedOutcomes.Load(); got != int64(n) {
		t.Errorf("OutcomeApproved returned %d times, want %d", got, n)
	}
	// Every gate is approved with exactly its quorum of distinct votes.
	wantRecorded := int64(0)
	for _, g := range gates {
		got, err := e.store.Get(ctx, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != StateApproved || len(got.Votes) != got.Policy.Required {
			t.Errorf("gate %s: %s with %d votes (required %d)", g.ID, got.State, len(got.Votes), got.Policy.Required)
		}
		wantRecorded += int64(got.Policy.Required - 1)
	}
	if got := recorded.Load(); got != wantRecorded {
		t.Errorf("OutcomeRecorded %d times, want %d", got, wantRecorded)
	}
	t.Logf("%d gates: %d approved, %d recorded, %d repeated clicks refused, %d late clicks refused",
		n, approvedOutcomes.Load(), recorded.Load(), already.Load(), notPending.Load())
	if n := e.rdb.ZCard(ctx, e.store.dueKey()).Val(); n != 0 {
		t.Errorf("%d approved gates still on the expiry schedule", n)
	}
	if l, _, err := e.store.List(ctx, ListQuery{State: StateApproved, Limit: 500}); err != nil || len(l) != min(n, 500) {
		t.Errorf("List approved: %d %v", len(l), err)
	}
}
