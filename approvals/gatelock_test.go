package approvals

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestOneChangeOfAGateAtATime: the same vote sent eight times at once
// through one Store is recorded once, by one compare-and-set: the others
// wait their turn and are refused on the record the first wrote, instead
// of racing it and losing.
func TestOneChangeOfAGateAtATime(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		g := mustCreate(t, e.store, newGate("deploy", 2, time.Hour))
		if err := casScript.Load(ctx, e.rdb).Err(); err != nil {
			t.Fatal(err) // so each change below is one call
		}
		var calls []string
		e.rdb.AddHook(commandNames(&calls))
		var (
			wg                sync.WaitGroup
			recorded, refused atomic.Int64
		)
		start := make(chan struct{})
		for range 8 {
			wg.Go(func() {
				<-start
				_, o, err := e.store.Decide(ctx, g.ID, bob, true, "", "")
				switch {
				case err == nil && o == OutcomeRecorded:
					recorded.Add(1)
				case errors.Is(err, ErrAlreadyVoted):
					refused.Add(1)
				default:
					t.Errorf("vote: %v, %v", o, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if recorded.Load() != 1 || refused.Load() != 7 {
			t.Errorf("recorded %d, refused %d; want 1 and 7", recorded.Load(), refused.Load())
		}
		if n := countOf(calls, "evalsha"); n != 1 {
			t.Errorf("%d compare-and-set calls for one vote sent 8 times, want 1 (commands %v)", n, calls)
		}
		if n := e.store.locks.held(); n != 0 {
			t.Errorf("%d gates still locked after every change returned", n)
		}
	})
}

// TestGateLockWaitEndsWithItsContext: a change waiting for its gate's turn
// gives up when its context ends, and leaves nothing behind.
func TestGateLockWaitEndsWithItsContext(t *testing.T) {
	t.Parallel()
	var l gateLocks
	unlock, err := l.lock(context.Background(), "g_1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.lock(ctx, "g_1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting on a held gate: %v, want the context's deadline", err)
	}
	other, err := l.lock(context.Background(), "g_2")
	if err != nil {
		t.Fatalf("another gate: %v", err)
	}
	other()
	unlock()
	if n := l.held(); n != 0 {
		t.Errorf("%d gates locked after every turn was given back", n)
	}
	again, err := l.lock(context.Background(), "g_1")
	if err != nil {
		t.Fatalf("after the turn was given back: %v", err)
	}
	again()
}

func countOf(names []string, name string) int {
	n := 0
	for _, s := range names {
		if s == name {
			n++
		}
	}
	return n
}
