package simulated_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/pipelinestest"
	"github.com/gatebot/gatebot/pipelines/simulated"
)

// flaky starts the simulated run and then reports the first call as a
// timeout, the ambiguous failure; it records every run id started.
type flaky struct {
	*simulated.Provider
	mu      sync.Mutex
	started map[string]int
	calls   int
}

func (f *flaky) Trigger(ctx context.Context, req pipelines.Request) (pipelines.Run, error) {
	run, err := f.Provider.Trigger(ctx, req)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if err == nil {
		f.started[run.ID]++
	}
	if f.calls == 1 {
		return pipelines.Run{}, &pipelines.APIError{Provider: "simulated", Op: "trigger run", Err: context.DeadlineExceeded}
	}
	return run, err
}

func TestAmbiguousFailureThenRedelivery(t *testing.T) {
	t.Parallel()
	p, err := simulated.New(simulated.Config{})
	if err != nil {
		t.Fatal(err)
	}
	f := &flaky{Provider: p, started: map[string]int{}}
	req := pipelines.Request{GateID: "g-1", Pipeline: "demo"}
	run, calls, err := pipelinestest.Redeliver(t.Context(), f, req, 3)
	if err != nil || calls != 2 || run.ID != simulated.RunID("g-1") {
		t.Fatalf("run %+v, calls %d, err %v", run, calls, err)
	}
	if len(f.started) != 1 {
		t.Errorf("distinct runs = %v, want one", f.started)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Error("the ambiguous error survived the redelivery")
	}
}
