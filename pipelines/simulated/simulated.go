// Package simulated is gatebot's demo provider: runs that exist only as
// arithmetic on a start time, so that `gatebot serve` with no configuration
// shows the whole gate → run → card lifecycle without any CI system.
//
// A simulated run keeps no state in the process. Everything Status needs (the
// start time and the timings and outcome in force when it started) travels in
// Run.Ref, which gatebot persists with the gate, so a run survives restarts
// and can be polled by any replica.
//
// Provider does not implement pipelines.Canceler. Cancel's signature returns
// only an error, so a stateless provider has nowhere to record that a run
// was cancelled; keeping a cancelled set in memory would be lost on restart
// and invisible to other replicas. Callers that type-assert for Canceler
// therefore offer no Cancel button for simulated runs, which is the truth.
// Set Outcome to "cancelled" to see how a cancelled run renders, and
// TriggerError to see a run that cannot start (the gate's Retry button).
//
// Like every provider sub-package it imports only pipelines and the standard
// library.
package simulated

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gatebot/gatebot/pipelines"
)

// ProviderType is the provider `type` in gatebot's configuration.
const ProviderType = "simulated"

// Defaults applied by New to zero Config fields.
const (
	DefaultQueuedFor = 2 * time.Second
	DefaultRunFor    = 4 * time.Second
	DefaultOutcome   = string(pipelines.StatusSucceeded)
)

// maxTriggerError bounds TriggerError: it is shown on the gate card.
const maxTriggerError = 200

// Keys of Run.Ref written by Trigger and read by Status.
const (
	RefStartedAt = "started_at" // RFC 3339 with nanoseconds, UTC
	RefQueuedFor = "queued_for" // Go duration
	RefRunFor    = "run_for"    // Go duration
	RefOutcome   = "outcome"    // succeeded | failed | cancelled
)

// Config shapes every simulated run. Zero fields take the defaults.
type Config struct {
	// QueuedFor is how long a run stays queued (default 2s).
	QueuedFor time.Duration `yaml:"queued_for"`
	// RunFor is how long it then runs (default 4s).
	RunFor time.Duration `yaml:"run_for"`
	// Outcome is the final state: succeeded (default), failed or cancelled.
	Outcome string `yaml:"outcome"`
	// TriggerError, when set, makes every Trigger fail at once with this
	// message, as a provider refusing the run (HTTP 422) would: the gate
	// ends in trigger_failed and offers Retry. For demos and end-to-end
	// tests of that path; empty (the default) starts runs normally.
	TriggerError string `yaml:"trigger_error"`
}

// Validate reports every problem with the configuration.
func (c Config) Validate() []error {
	var errs []error
	if c.QueuedFor < 0 {
		errs = append(errs, fmt.Errorf("queued_for: %s is negative", c.QueuedFor))
	}
	if c.RunFor < 0 {
		errs = append(errs, fmt.Errorf("run_for: %s is negative", c.RunFor))
	}
	if len(c.TriggerError) > maxTriggerError {
		errs = append(errs, fmt.Errorf("trigger_error: longer than %d bytes", maxTriggerError))
	}
	switch pipelines.Status(c.Outcome) {
	case "", pipelines.StatusSucceeded, pipelines.StatusFailed, pipelines.StatusCancelled:
	default:
		errs = append(errs, fmt.Errorf("outcome: %q is not one of succeeded, failed, cancelled", c.Outcome))
	}
	return errs
}

func (c Config) withDefaults() Config {
	if c.QueuedFor == 0 {
		c.QueuedFor = DefaultQueuedFor
	}
	if c.RunFor == 0 {
		c.RunFor = DefaultRunFor
	}
	if c.Outcome == "" {
		c.Outcome = DefaultOutcome
	}
	return c
}

// Option adjusts a Provider built by New.
type Option func(*Provider) error

// WithNow replaces the clock, for tests.
func WithNow(now func() time.Time) Option {
	return func(p *Provider) error {
		if now == nil {
			return errors.New("simulated: WithNow: nil clock")
		}
		p.now = now
		return nil
	}
}

// Provider simulates runs. It is safe for concurrent use: it holds only its
// configuration and clock.
type Provider struct {
	cfg Config
	now func() time.Time
}

var _ pipelines.Provider = (*Provider)(nil)

// New returns a Provider for cfg after validating it.
func New(cfg Config, opts ...Option) (*Provider, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("simulated: config: %w", errors.Join(errs...))
	}
	p := &Provider{cfg: cfg.withDefaults(), now: time.Now}
	for _, o := range opts {
		if err := o(p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// RunID is the run id Trigger returns for a gate: the same gate always gets
// the same id, so a retried Trigger after a crash names the same run.
func RunID(gateID string) string {
	sum := sha256.Sum256([]byte(gateID))
	return "sim-" + hex.EncodeToString(sum[:6])
}

// Trigger starts a simulated run now. Calling it again for the same gate
// returns the same run id; the start time is that of the latest call, which
// is harmless because a simulated run has no side effects to duplicate.
func (p *Provider) Trigger(ctx context.Context, req pipelines.Request) (pipelines.Run, error) {
	if err := ctx.Err(); err != nil {
		return pipelines.Run{}, fmt.Errorf("simulated: trigger run: %w", err)
	}
	if req.GateID == "" {
		return pipelines.Run{}, errors.New("simulated: trigger run: empty gate id")
	}
	if p.cfg.TriggerError != "" {
		// Permanent (not Temporary): the engine records it at once rather
		// than backing off, like a provider refusing the request.
		return pipelines.Run{}, &pipelines.APIError{Provider: ProviderType, Op: "trigger run",
			StatusCode: 422, Message: p.cfg.TriggerError}
	}
	start := p.now().UTC()
	run := pipelines.Run{
		ID: RunID(req.GateID),
		Ref: map[string]string{
			RefStartedAt: start.Format(time.RFC3339Nano),
			RefQueuedFor: p.cfg.QueuedFor.String(),
			RefRunFor:    p.cfg.RunFor.String(),
			RefOutcome:   p.cfg.Outcome,
		},
	}
	return p.Status(ctx, run)
}

// Status derives the run's state from the time elapsed since it started:
// queued for queued_for, then running for run_for, then the outcome. It uses
// the timings recorded in the run, not the current configuration, so a
// configuration change does not rewrite runs already started.
func (p *Provider) Status(ctx context.Context, run pipelines.Run) (pipelines.Run, error) {
	if err := ctx.Err(); err != nil {
		return run, fmt.Errorf("simulated: run status: %w", err)
	}
	sp, err := parseRef(run.Ref)
	if err != nil {
		return run, fmt.Errorf("simulated: run %s: %w", run.ID, err)
	}
	elapsed := max(p.now().Sub(sp.start), 0)
	var st pipelines.Status
	switch {
	case elapsed < sp.queuedFor:
		st = pipelines.StatusQueued
	case elapsed < sp.queuedFor+sp.runFor:
		st = pipelines.StatusRunning
	default:
		st = sp.outcome
		elapsed = sp.queuedFor + sp.runFor
	}
	out := run
	out.URL = ""
	out.Status = st
	out.Detail = fmt.Sprintf("simulated: %s (%s)", st, elapsed.Truncate(time.Second))
	return out, nil
}

type spec struct {
	start             time.Time
	queuedFor, runFor time.Duration
	outcome           pipelines.Status
}

// ErrBadRef reports a Run whose Ref was not written by Trigger.
var ErrBadRef = errors.New("simulated: run ref is missing or malformed")

func parseRef(ref map[string]string) (spec, error) {
	var s spec
	var err error
	if s.start, err = time.Parse(time.RFC3339Nano, ref[RefStartedAt]); err != nil {
		return s, fmt.Errorf("%w: %s: %q", ErrBadRef, RefStartedAt, ref[RefStartedAt])
	}
	if s.queuedFor, err = parseDur(ref[RefQueuedFor]); err != nil {
		return s, fmt.Errorf("%w: %s: %q", ErrBadRef, RefQueuedFor, ref[RefQueuedFor])
	}
	if s.runFor, err = parseDur(ref[RefRunFor]); err != nil {
		return s, fmt.Errorf("%w: %s: %q", ErrBadRef, RefRunFor, ref[RefRunFor])
	}
	s.outcome = pipelines.Status(ref[RefOutcome])
	if !s.outcome.Terminal() {
		return s, fmt.Errorf("%w: %s: %s", ErrBadRef, RefOutcome, strconv.Quote(ref[RefOutcome]))
	}
	return s, nil
}

func parseDur(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err == nil && d < 0 {
		err = errors.New("negative")
	}
	return d, err
}

// RepeatableTrigger is always true: the run id derives from the gate id, so
// a repeated Trigger returns the same run.
func (p *Provider) RepeatableTrigger(context.Context, pipelines.Request) bool { return true }

var _ pipelines.Idempotent = (*Provider)(nil)
