package approvals

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestOpenStatesAreTheNonFinalOnes(t *testing.T) {
	t.Parallel()
	var want []State
	for from := range transitions {
		want = append(want, from)
	}
	got := OpenStates()
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("OpenStates() = %v, want the states with transitions %v", got, want)
	}
}

func TestCountByState(t *testing.T) {
	t.Parallel()
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		empty, err := e.store.CountByState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range OpenStates() {
			if n, ok := empty[st]; !ok || n != 0 {
				t.Errorf("empty store: %s = %d (present %v), want 0", st, n, ok)
			}
		}
		mustCreate(t, e.store, newGate("deploy", 1, time.Hour))
		mustCreate(t, e.store, newGate("deploy", 2, time.Hour))
		g := mustCreate(t, e.store, newGate("deploy", 1, time.Hour))
		if _, _, err := e.store.Decide(ctx, g.ID, bob, true, "", ""); err != nil {
			t.Fatal(err)
		}
		r := mustCreate(t, e.store, newGate("deploy", 1, time.Hour))
		if _, _, err := e.store.Decide(ctx, r.ID, bob, false, "no", ""); err != nil {
			t.Fatal(err)
		}
		got, err := e.store.CountByState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got[StatePending] != 2 || got[StateApproved] != 1 || got[StateRunning] != 0 {
			t.Errorf("counts = %v, want pending 2, approved 1, running 0", got)
		}
		if _, ok := got[StateRejected]; ok {
			t.Errorf("counts = %v: a final state is not an open gate", got)
		}
	})
}

func TestCountByStateUnavailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false, Options{})
	e.mr.Close()
	if _, err := e.store.CountByState(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("err = %v, want ErrUnavailable", err)
	}
}
