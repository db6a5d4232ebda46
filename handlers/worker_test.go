package handlers

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/bot"
	"github.com/gatebot/gatebot/pipelines"
)

// scriptedProvider answers Trigger with the errors it is given, then a run.
type scriptedProvider struct {
	mu    sync.Mutex
	errs  []error
	calls int
}

func (p *scriptedProvider) Trigger(ctx context.Context, req pipelines.Request) (pipelines.Run, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if len(p.errs) > 0 {
		err := p.errs[0]
		p.errs = p.errs[1:]
		return pipelines.Run{}, err
	}
	return pipelines.Run{ID: "run-1", Status: pipelines.StatusRunning}, nil
}

func (p *scriptedProvider) Status(ctx context.Context, run pipelines.Run) (pipelines.Run, error) {
	return run, nil
}

func (p *scriptedProvider) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// idempotentProvider is scriptedProvider that may be repeated safely.
type idempotentProvider struct{ scriptedProvider }

func (*idempotentProvider) RepeatableTrigger(context.Context, pipelines.Request) bool { return true }

// approvedTrigger opens a gate, approves it and claims its trigger.
func approvedTrigger(t *testing.T, prov pipelines.Provider) (*Server, *approvals.Store, approvals.Trigger) {
	t.Helper()
	mr := miniredis.RunT(t)
	store, err := approvals.NewStore(redis.NewClient(&redis.Options{Addr: mr.Addr()}), approvals.Options{})
	if err != nil {
		t.Fatal(err)
	}
	conn, _ := bot.NewConnector(bot.ConnectorConfig{Trust: bot.ServiceURLPolicy{AllowLoopback: true}})
	def := &pipelines.Definition{Name: "demo"}
	s, err := New(Options{Connector: conn, Store: store, Trust: bot.ServiceURLPolicy{AllowLoopback: true},
		Pipelines: map[string]*Pipeline{"demo": {Def: def, Provider: prov, ProviderType: "fake"}}})
	if err != nil {
		t.Fatal(err)
	}
	pol := approvals.Policy{Required: 1, Timeout: time.Hour}
	g, _, err := store.Create(t.Context(), &approvals.Gate{Pipeline: "demo", Requester: approvals.Person{ID: "29:a"}, Policy: pol}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.Decide(t.Context(), g.ID, approvals.Person{ID: "29:b"}, true, "", "c"); err != nil {
		t.Fatal(err)
	}
	trs, err := store.ClaimTriggers(t.Context(), "w1", 1, 10*time.Millisecond)
	if err != nil || len(trs) != 1 {
		t.Fatalf("claim: %v %v", trs, err)
	}
	return s, store, trs[0]
}

func TestTriggerRetries(t *testing.T) {
	apiErr := func(status int) error {
		return &pipelines.APIError{Provider: "fake", Op: "trigger run", StatusCode: status}
	}
	cases := []struct {
		name       string
		idempotent bool
		errs       []error
		wantCalls  int
		wantState  approvals.State
	}{
		{"a 502 is not repeated: the run may have started", false, []error{apiErr(502)}, 1, approvals.StateTriggerFailed},
		{"a timeout is not repeated", false, []error{&pipelines.APIError{Provider: "fake", Op: "trigger run", Err: context.DeadlineExceeded}}, 1, approvals.StateTriggerFailed},
		{"429 is repeated: nothing started", false, []error{apiErr(429)}, 2, approvals.StateRunning},
		{"an idempotent provider is repeated after a 502", true, []error{apiErr(502)}, 2, approvals.StateRunning},
		{"400 is final", true, []error{apiErr(400)}, 1, approvals.StateTriggerFailed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var prov pipelines.Provider
			var count func() int
			if c.idempotent {
				p := &idempotentProvider{scriptedProvider{errs: c.errs}}
				prov, count = p, p.count
			} else {
				p := &scriptedProvider{errs: c.errs}
				prov, count = p, p.count
			}
			s, store, tr := approvedTrigger(t, prov)
			s.processTrigger(t.Context(), tr)
			if n := count(); n != c.wantCalls {
				t.Errorf("provider called %d times, want %d", n, c.wantCalls)
			}
			g, err := store.Get(t.Context(), tr.GateID)
			if err != nil {
				t.Fatal(err)
			}
			if g.State != c.wantState {
				t.Errorf("gate %s, want %s (error %q)", g.State, c.wantState, g.Error)
			}
		})
	}
}

// TestRedeliveredTriggerNeverRunsTwice: a trigger delivered again (its
// worker died mid-call) calls a provider that cannot recognise the earlier
// call only never; the gate asks a person to check instead.
func TestRedeliveredTriggerNeverRunsTwice(t *testing.T) {
	for _, idempotent := range []bool{false, true} {
		var prov pipelines.Provider
		var count func() int
		if idempotent {
			p := &idempotentProvider{}
			prov, count = p, p.count
		} else {
			p := &scriptedProvider{}
			prov, count = p, p.count
		}
		s, store, tr := approvedTrigger(t, prov)
		tr.Deliveries = 2
		s.processTrigger(t.Context(), tr)
		g, err := store.Get(t.Context(), tr.GateID)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case idempotent && (count() != 1 || g.State != approvals.StateRunning):
			t.Errorf("idempotent provider: %d calls, gate %s; want the trigger repeated once", count(), g.State)
		case !idempotent && (count() != 0 || g.State != approvals.StateTriggerFailed):
			t.Errorf("non-idempotent provider: %d calls, gate %s; want no call and trigger_failed", count(), g.State)
		case !idempotent && g.Error == "":
			t.Error("trigger_failed without a message saying what to check")
		}
	}
}
