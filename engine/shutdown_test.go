package engine

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/pipelines"
)

// A replica stopping with a trigger claimed but not begun (waiting for its
// provider's slot) hands it back: another replica starts it at once, not
// after the trigger visibility (10 s here), and the provider is called
// once for it.
func TestShutdownGivesBackUnbegunTriggers(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		s := newStore(t, rdb, prefix)
		hung := newProvider("ci")
		hung.gate = make(chan struct{})
		defer close(hung.gate)
		ga, gb := approvedGate(t, s, "a"), approvedGate(t, s, "b")
		e, err := New(Options{
			Store: s, Teams: newTeams(), Instance: "stopping",
			Pipelines:      map[string]*Pipeline{"a": pipeline(hung, "ci"), "b": pipeline(hung, "ci")},
			TriggerWorkers: 2, PerProvider: 1, Tick: 10 * time.Millisecond,
			TriggerVisibility: 10 * time.Second, TriggerBudget: 5 * time.Second, ProviderTimeout: 4 * time.Second, CardLease: time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { e.Run(ctx); close(done) }()
		var begun string
		select {
		case begun = <-hung.started:
		case <-time.After(5 * time.Second):
			t.Fatal("no trigger began")
		}
		waiting := ga.ID
		if begun == ga.ID {
			waiting = gb.ID
		}
		time.Sleep(100 * time.Millisecond) // the other trigger is claimed and waits for the slot
		cancel()
		ok := newProvider("ci")
		start := time.Now()
		runWith(t, s, newTeams(), "next", map[string]*Pipeline{"a": pipeline(ok, "ci"), "b": pipeline(ok, "ci")}, nil)
		eventually(t, "the next replica runs the given-back trigger", func() bool { return ok.count(waiting) == 1 })
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("the given-back trigger started after %s, want well before the 10 s visibility", d)
		}
		if hung.count(waiting) != 0 || ok.count(begun) != 0 {
			t.Errorf("calls: stopping replica %d for the waiting gate, next replica %d for the begun one; want 0 and 0", hung.count(waiting), ok.count(begun))
		}
		hung.gate <- struct{}{}
		<-done
	})
}

// blipStore is a Store whose first fails FinishTrigger calls answer as an
// unavailable Redis does (a restart under way).
type blipStore struct {
	Store
	mu    sync.Mutex
	fails int
	calls int
}

func (b *blipStore) FinishTrigger(ctx context.Context, id string, run pipelines.Run, runErr error, msg string, pollAt time.Time) (*approvals.Gate, error) {
	b.mu.Lock()
	b.calls++
	fail := b.calls <= b.fails
	b.mu.Unlock()
	if fail {
		return nil, fmt.Errorf("finish trigger: %w", approvals.ErrUnavailable)
	}
	return b.Store.FinishTrigger(ctx, id, run, runErr, msg, pollAt)
}

// A run the provider started while Redis was restarting is recorded once
// Redis is back (within the worker's lease), not left to a redelivery that
// would call it "may have started" and leave the deploy unwatched.
func TestTriggerResultOutlivesAStoreBlip(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		s := newStore(t, rdb, prefix)
		bs := &blipStore{Store: s, fails: 3}
		p := newProvider("ci")
		runWith(t, s, newTeams(), "blip", map[string]*Pipeline{"deploy": pipeline(p, "ci")}, func(o *Options) { o.Store = bs })
		g := approvedGate(t, s, "deploy")
		eventually(t, "the run to be recorded and followed", func() bool { return stateOf(t, s, g.ID) == approvals.StateSucceeded })
		if n := p.count(g.ID); n != 1 {
			t.Errorf("provider called %d times, want once", n)
		}
		bs.mu.Lock()
		defer bs.mu.Unlock()
		if bs.calls != 4 {
			t.Errorf("FinishTrigger called %d times, want 3 refused and 1 recorded", bs.calls)
		}
	})
}
