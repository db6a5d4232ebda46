package engine

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/replicas"
)

// fleet is a fake replica registry: the view it holds, read "now" unless
// stale.
type fleet struct {
	mu    sync.Mutex
	v     replicas.View
	stale bool
}

func newFleet(self string, pipelines ...string) *fleet {
	return &fleet{v: replicas.View{Self: replicas.Info{Instance: self, Deployment: "app-1", Pipelines: pipelines}, TTL: 30 * time.Second}}
}

func (f *fleet) View() replicas.View {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.v
	v.Read = time.Now()
	if f.stale {
		v.Read = time.Now().Add(-time.Hour)
	}
	return v
}

func (f *fleet) set(fn func(v *replicas.View)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.v)
}

func unservedOpts(fl *fleet, grace time.Duration) func(*Options) {
	return func(o *Options) {
		o.Fleet, o.UnknownPipelineGrace, o.UnservedEvery = fl, grace, 10*time.Millisecond
	}
}

// approvedGate opens a quorum-1 gate of pipeline and approves it.
func approvedGate(t *testing.T, s *approvals.Store, pipeline string) *approvals.Gate {
	t.Helper()
	g := posted(t, s, pipeline, "conv-1", 1)
	g = approve(t, s, g.ID, bob)
	if g.State != approvals.StateApproved {
		t.Fatalf("gate is %s after its quorum, want approved", g.State)
	}
	return g
}

// During a rolling upgrade the replica running now lacks the pipeline but
// the registry shows a live replica that has it: the gate waits, past the
// grace, and runs once that replica's engine claims it.
func TestUnknownPipelineWaitsForAReplicaThatServesIt(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		s := newStore(t, rdb, prefix)
		tm := newTeams()
		other := newProvider("ci")
		fl := newFleet("old", "keep")
		fl.set(func(v *replicas.View) {
			v.Live = []replicas.Info{v.Self, {Instance: "new", Deployment: "app-1", Pipelines: []string{"keep", "moved"}}}
		})
		runWith(t, s, tm, "old", map[string]*Pipeline{"keep": pipeline(newProvider("ci"), "ci")}, unservedOpts(fl, 50*time.Millisecond))
		g := approvedGate(t, s, "moved")
		time.Sleep(300 * time.Millisecond) // six times the grace, thirty sweeps
		if st := stateOf(t, s, g.ID); st != approvals.StateApproved {
			t.Fatalf("gate of a pipeline another live replica serves is %s, want it left approved", st)
		}
		runWith(t, s, tm, "new", map[string]*Pipeline{"moved": pipeline(other, "ci")}, unservedOpts(newFleet("new", "moved"), time.Minute))
		eventually(t, "the replica that has the pipeline runs it", func() bool { return stateOf(t, s, g.ID) == approvals.StateSucceeded })
		if n := other.count(g.ID); n != 1 {
			t.Errorf("provider called %d times, want once", n)
		}
	})
}

// A pipeline removed from every replica's config: the gate waits out the
// grace, then fails with a message naming the pipeline, and the provider
// is never called. Retry puts it back in the queue.
func TestUnknownPipelineFailsAfterTheGrace(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		s := newStore(t, rdb, prefix)
		tm := newTeams()
		fl := newFleet("only", "keep")
		fl.set(func(v *replicas.View) { v.Live = []replicas.Info{v.Self} })
		const grace = 300 * time.Millisecond
		runWith(t, s, tm, "only", map[string]*Pipeline{"keep": pipeline(newProvider("ci"), "ci")}, unservedOpts(fl, grace))
		g := approvedGate(t, s, "removed")
		eventually(t, "the unserved gate fails", func() bool { return stateOf(t, s, g.ID) == approvals.StateTriggerFailed })
		got, err := s.Get(t.Context(), g.ID)
		if err != nil {
			t.Fatal(err)
		}
		// Both times are the store's: approved, then failed.
		if waited := got.UpdatedAt.Sub(g.UpdatedAt); waited < grace {
			t.Errorf("failed %s after the approval, before the %s grace", waited, grace)
		}
		for _, want := range []string{`pipeline "removed"`, "Retry"} {
			if !strings.Contains(got.Error, want) {
				t.Errorf("gate error %q does not say %s", got.Error, want)
			}
		}
		if _, err := s.Retry(t.Context(), g.ID, alice); err != nil {
			t.Fatalf("Retry of an unserved gate: %v", err)
		}
	})
}

// A replica that cannot read the registry, or that stands back for another
// deployment, fails nothing: it cannot tell that no one serves the
// pipeline.
func TestUnknownPipelineKeptWithoutAFreshView(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		s := newStore(t, rdb, prefix)
		fl := newFleet("blind", "keep")
		fl.stale = true
		runWith(t, s, newTeams(), "blind", map[string]*Pipeline{"keep": pipeline(newProvider("ci"), "ci")}, unservedOpts(fl, 20*time.Millisecond))
		g := approvedGate(t, s, "removed")
		time.Sleep(300 * time.Millisecond)
		if st := stateOf(t, s, g.ID); st != approvals.StateApproved {
			t.Fatalf("with a stale registry view the gate is %s, want approved", st)
		}
	})
}

// A replica whose deployment joined a prefix another deployment was using
// first does no work at all, until that one is gone.
func TestStandbyWhileAnotherDeploymentOwnsThePrefix(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		s := newStore(t, rdb, prefix)
		p := newProvider("ci")
		fl := newFleet("staging-1", "deploy")
		fl.set(func(v *replicas.View) {
			v.Self.Started = time.Now()
			v.Live = []replicas.Info{v.Self, {Instance: "prod-1", Deployment: "app-prod", Started: time.Now().Add(-time.Hour)}}
		})
		runWith(t, s, newTeams(), "staging-1", map[string]*Pipeline{"deploy": pipeline(p, "ci")}, unservedOpts(fl, time.Minute))
		g := approvedGate(t, s, "deploy")
		time.Sleep(300 * time.Millisecond)
		if n := p.count(g.ID); n != 0 || stateOf(t, s, g.ID) != approvals.StateApproved {
			t.Fatalf("a standing-back replica triggered the gate (%d calls, %s)", n, stateOf(t, s, g.ID))
		}
		fl.set(func(v *replicas.View) { v.Live = v.Live[:1] })
		eventually(t, "the gate runs once the other deployment is gone", func() bool { return stateOf(t, s, g.ID) == approvals.StateSucceeded })
	})
}
