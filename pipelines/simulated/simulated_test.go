package simulated_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/simulated"
	"gopkg.in/yaml.v3"
)

// clock is a settable time source shared by a test and the provider.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func newProvider(t *testing.T, cfg simulated.Config) (*simulated.Provider, *clock) {
	t.Helper()
	c := &clock{t: t0}
	p, err := simulated.New(cfg, simulated.WithNow(c.Now))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p, c
}

func TestLifecycle(t *testing.T) {
	tests := []struct {
		name  string
		cfg   simulated.Config
		at    time.Duration
		want  pipelines.Status
		wantD string
	}{
		{"defaults: just started", simulated.Config{}, 0, pipelines.StatusQueued, "simulated: queued (0s)"},
		{"defaults: last queued instant", simulated.Config{}, 2*time.Second - time.Nanosecond, pipelines.StatusQueued, "simulated: queued (1s)"},
		{"defaults: running", simulated.Config{}, 2 * time.Second, pipelines.StatusRunning, "simulated: running (2s)"},
		{"defaults: running later", simulated.Config{}, 5*time.Second + 500*time.Millisecond, pipelines.StatusRunning, "simulated: running (5s)"},
		{"defaults: done", simulated.Config{}, 6 * time.Second, pipelines.StatusSucceeded, "simulated: succeeded (6s)"},
		{"defaults: long after", simulated.Config{}, time.Hour, pipelines.StatusSucceeded, "simulated: succeeded (6s)"},
		{"failed outcome", simulated.Config{QueuedFor: time.Second, RunFor: time.Second, Outcome: "failed"}, 2 * time.Second, pipelines.StatusFailed, "simulated: failed (2s)"},
		{"failed outcome still running", simulated.Config{QueuedFor: time.Second, RunFor: time.Second, Outcome: "failed"}, 1500 * time.Millisecond, pipelines.StatusRunning, "simulated: running (1s)"},
		{"cancelled outcome", simulated.Config{Outcome: "cancelled"}, 10 * time.Second, pipelines.StatusCancelled, "simulated: cancelled (6s)"},
		{"clock behind start", simulated.Config{}, -time.Minute, pipelines.StatusQueued, "simulated: queued (0s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, c := newProvider(t, tt.cfg)
			run, err := p.Trigger(t.Context(), pipelines.Request{GateID: "g-123", Pipeline: "deploy-api"})
			if err != nil {
				t.Fatalf("Trigger: %v", err)
			}
			if run.Status != pipelines.StatusQueued {
				t.Errorf("Trigger status = %q, want queued", run.Status)
			}
			c.Set(t0.Add(tt.at))
			got, err := p.Status(t.Context(), run)
			if err != nil {
				t.Fatalf("Status: %v", err)
			}
			if got.Status != tt.want || got.Detail != tt.wantD {
				t.Errorf("Status = %q %q, want %q %q", got.Status, got.Detail, tt.want, tt.wantD)
			}
			if got.ID != run.ID || got.URL != "" {
				t.Errorf("Status changed identity: id %q→%q url %q", run.ID, got.ID, got.URL)
			}
		})
	}
}

func TestTriggerIsDeterministicPerGate(t *testing.T) {
	p, c := newProvider(t, simulated.Config{})
	a, err := p.Trigger(t.Context(), pipelines.Request{GateID: "g-1"})
	if err != nil {
		t.Fatal(err)
	}
	c.Set(t0.Add(time.Minute))
	again, err := p.Trigger(t.Context(), pipelines.Request{GateID: "g-1"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := p.Trigger(t.Context(), pipelines.Request{GateID: "g-2"})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != again.ID {
		t.Errorf("same gate, ids %q and %q", a.ID, again.ID)
	}
	if a.ID == other.ID {
		t.Errorf("different gates share id %q", a.ID)
	}
	if a.ID != simulated.RunID("g-1") || !strings.HasPrefix(a.ID, "sim-") {
		t.Errorf("id %q, want RunID(g-1) = %q", a.ID, simulated.RunID("g-1"))
	}
}

// A run started under one configuration keeps its timings when the provider
// is rebuilt with another (a restart after a config change, or a replica
// with a different clock-only instance): everything is in Run.Ref.
func TestStatusSurvivesRestartAndConfigChange(t *testing.T) {
	p1, _ := newProvider(t, simulated.Config{QueuedFor: time.Second, RunFor: time.Second, Outcome: "failed"})
	run, err := p1.Trigger(t.Context(), pipelines.Request{GateID: "g-9"})
	if err != nil {
		t.Fatal(err)
	}
	p2, c2 := newProvider(t, simulated.Config{QueuedFor: time.Hour, RunFor: time.Hour})
	c2.Set(t0.Add(3 * time.Second))
	got, err := p2.Status(t.Context(), run)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != pipelines.StatusFailed {
		t.Errorf("status on fresh provider = %q, want failed (from the run's own ref)", got.Status)
	}
}

func TestStatusBadRef(t *testing.T) {
	p, _ := newProvider(t, simulated.Config{})
	good, err := p.Trigger(t.Context(), pipelines.Request{GateID: "g"})
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(k, v string) pipelines.Run {
		r := good
		r.Ref = map[string]string{}
		for kk, vv := range good.Ref {
			r.Ref[kk] = vv
		}
		if v == "" {
			delete(r.Ref, k)
		} else {
			r.Ref[k] = v
		}
		return r
	}
	tests := []struct {
		name string
		run  pipelines.Run
	}{
		{"no ref", pipelines.Run{ID: "sim-x"}},
		{"missing start", mutate(simulated.RefStartedAt, "")},
		{"bad start", mutate(simulated.RefStartedAt, "yesterday")},
		{"bad queued_for", mutate(simulated.RefQueuedFor, "2 seconds")},
		{"negative run_for", mutate(simulated.RefRunFor, "-1s")},
		{"non-terminal outcome", mutate(simulated.RefOutcome, "running")},
		{"missing outcome", mutate(simulated.RefOutcome, "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.Status(t.Context(), tt.run)
			if !errors.Is(err, simulated.ErrBadRef) {
				t.Errorf("err = %v, want ErrBadRef", err)
			}
		})
	}
}

func TestTriggerErrors(t *testing.T) {
	p, _ := newProvider(t, simulated.Config{})
	if _, err := p.Trigger(t.Context(), pipelines.Request{}); err == nil {
		t.Error("empty gate id accepted")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := p.Trigger(ctx, pipelines.Request{GateID: "g"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: err = %v", err)
	}
}

func TestNotCanceler(t *testing.T) {
	var p pipelines.Provider
	p, _ = newProvider(t, simulated.Config{})
	if _, ok := p.(pipelines.Canceler); ok {
		t.Error("simulated.Provider implements Canceler, but it has nowhere durable to record a cancellation")
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		want    simulated.Config
		wantErr int
	}{
		{"empty", `{}`, simulated.Config{}, 0},
		{"all", "queued_for: 1s\nrun_for: 1m30s\noutcome: failed\n", simulated.Config{QueuedFor: time.Second, RunFor: 90 * time.Second, Outcome: "failed"}, 0},
		{"bad outcome", "outcome: maybe\n", simulated.Config{Outcome: "maybe"}, 1},
		{"negative", "queued_for: -1s\nrun_for: -2s\noutcome: running\n", simulated.Config{QueuedFor: -time.Second, RunFor: -2 * time.Second, Outcome: "running"}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c simulated.Config
			if err := yaml.Unmarshal([]byte(tt.yaml), &c); err != nil {
				t.Fatal(err)
			}
			if c != tt.want {
				t.Errorf("decoded %+v, want %+v", c, tt.want)
			}
			if errs := c.Validate(); len(errs) != tt.wantErr {
				t.Errorf("Validate = %v, want %d errors", errs, tt.wantErr)
			}
			_, err := simulated.New(c)
			if (err != nil) != (tt.wantErr > 0) {
				t.Errorf("New err = %v", err)
			}
		})
	}
	if _, err := simulated.New(simulated.Config{}, simulated.WithNow(nil)); err == nil {
		t.Error("WithNow(nil) accepted")
	}
}

func TestTriggerError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     simulated.Config
		wantErr string // "" = the run starts
	}{
		{"unset: the run starts", simulated.Config{}, ""},
		{"set: refused at once", simulated.Config{TriggerError: "quota exceeded for demo"}, "quota exceeded for demo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, _ := newProvider(t, tt.cfg)
			run, err := p.Trigger(t.Context(), pipelines.Request{GateID: "g-123", Pipeline: "deploy-api"})
			if tt.wantErr == "" {
				if err != nil || run.Status != pipelines.StatusQueued {
					t.Fatalf("Trigger = %+v, %v; want a queued run", run, err)
				}
				return
			}
			var ae *pipelines.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("Trigger error = %v; want a *pipelines.APIError", err)
			}
			if ae.Message != tt.wantErr || ae.StatusCode != 422 || ae.Temporary() {
				t.Errorf("APIError = %+v; want message %q, status 422, not temporary (the engine must not back off)", ae, tt.wantErr)
			}
			if run.ID != "" {
				t.Errorf("a refused trigger returned run %q", run.ID)
			}
		})
	}
}

func TestTriggerErrorFromYAML(t *testing.T) {
	t.Parallel()
	var cfg simulated.Config
	if err := yaml.Unmarshal([]byte("trigger_error: refused by the simulator\n"), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.TriggerError != "refused by the simulator" {
		t.Fatalf("trigger_error decoded as %q", cfg.TriggerError)
	}
	if errs := (simulated.Config{TriggerError: strings.Repeat("x", 201)}).Validate(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "trigger_error") {
		t.Errorf("Validate of a 201-byte trigger_error = %v; want one trigger_error problem", errs)
	}
}
