package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.opentelemetry.io/otel/attribute"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/pipelines"
)

// triggerTries bounds the provider calls of one trigger.
const triggerTries = 4

// recordBudget bounds recording a trigger's result, apart from the
// trigger's own budget.
const recordBudget = 10 * time.Second

// errOutcomeUnknown is recorded when a trigger was interrupted after the
// provider may have started a run that gatebot cannot look up.
var errOutcomeUnknown = errors.New("trigger interrupted; the provider cannot tell whether a run started")

// triggerLoop claims triggers only for pipelines whose provider has a free
// slot, so a hanging provider's queue waits in Redis while every other
// pipeline's triggers flow.
func (e *Engine) triggerLoop(ctx context.Context) {
	log := e.log.With("worker", "trigger")
	for ctx.Err() == nil {
		want := e.triggerWants()
		if len(want) == 0 || e.standby() {
			select {
			case <-ctx.Done():
				return
			case <-e.triggers.freed:
			case <-time.After(triggerBlock):
			}
			continue
		}
		// Wait for new triggers only as long as no slot can free up for a
		// pipeline left out now: a Redis call cannot be woken by a slot.
		block := triggerBlock
		if len(want) < len(e.opts.Pipelines) {
			block = shortBlock
		}
		trs, err := e.opts.Store.ClaimTriggers(ctx, e.opts.Instance, want, block)
		if err != nil {
			if ctx.Err() == nil {
				log.WarnContext(ctx, "cannot claim triggers", "err", err)
				sleep(ctx, 2*time.Second)
			}
			continue
		}
		for _, tr := range trs {
			p := e.opts.Pipelines[tr.Pipeline]
			if p == nil {
				continue // not asked for; its redelivery finds a replica that knows it
			}
			e.spawn(func() {
				// Pipelines sharing a provider may together have claimed
				// more than its free slots: the extra ones wait here, in
				// claim order, holding no slot. One still waiting at
				// shutdown has not begun: it goes back to the queue for
				// another replica now, not after the trigger visibility.
				if !e.triggers.acquire(ctx, p.ProviderName) {
					e.releaseTrigger(ctx, tr)
					return
				}
				defer e.triggers.release(p.ProviderName)
				// A trigger once begun runs to its end even while gatebot
				// shuts down: cancelling the provider call midway would
				// leave its outcome unknown.
				tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.opts.TriggerBudget)
				defer cancel()
				e.processTrigger(tctx, p, tr)
			})
		}
	}
}

// releaseTrigger hands a claimed, unbegun trigger back to the queue.
func (e *Engine) releaseTrigger(ctx context.Context, tr approvals.Trigger) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordBudget)
	defer cancel()
	if err := e.opts.Store.ReleaseTrigger(rctx, tr); err != nil {
		e.log.WarnContext(rctx, "could not give back a trigger; another replica takes it after the trigger visibility", "worker", "trigger", "gate_id", tr.GateID, "err", err)
		return
	}
	e.log.InfoContext(rctx, "gave back a trigger not begun before shutdown", "worker", "trigger", "gate_id", tr.GateID)
}

// triggerWants shares the pool's free slots out among the pipelines whose
// provider has free slots. Each pipeline may ask for up to its provider's
// free slots, so that one with an empty queue does not starve a sibling
// on the same provider; what they claim beyond them waits for a slot.
func (e *Engine) triggerWants() map[string]int {
	total := e.triggers.total()
	if total <= 0 {
		return nil
	}
	names := make([]string, 0, len(e.opts.Pipelines))
	for n := range e.opts.Pipelines {
		names = append(names, n)
	}
	sort.Strings(names)
	want := map[string]int{}
	for _, n := range names {
		k := min(e.triggers.free(e.opts.Pipelines[n].ProviderName), total)
		if k <= 0 {
			continue
		}
		want[n] = k
		total -= k
	}
	return want
}

// processTrigger starts the pipeline run of one granted gate, at most once:
// BeginTrigger leases the gate to this worker (a live lease elsewhere makes
// it ErrTriggerBusy), refuses a gate that already has its run, and an
// attempt that takes over one a dead worker began calls the provider again
// only if the provider can recognise the earlier call
// (pipelines.Idempotent).
func (e *Engine) processTrigger(ctx context.Context, p *Pipeline, tr approvals.Trigger) {
	ctx, span := e.span(ctx, "engine.trigger", append(gateAttrs(tr.GateID, tr.Pipeline), attribute.Int64("gatebot.deliveries", tr.Deliveries))...)
	defer span.End()
	log := e.log.With("worker", "trigger", "gate_id", tr.GateID, "deliveries", tr.Deliveries)
	ack := func() {
		if err := e.opts.Store.AckTrigger(ctx, tr); err != nil {
			log.WarnContext(ctx, "could not ack trigger; it will be redelivered and recognised", "err", err)
		}
	}
	g, attempt, err := e.opts.Store.BeginTriggerAttempt(ctx, tr.GateID)
	switch {
	case errors.Is(err, approvals.ErrNotFound):
		ack()
		return
	case errors.Is(err, approvals.ErrTriggerBusy):
		log.InfoContext(ctx, "another worker holds this trigger; leaving it")
		return
	case err != nil:
		log.WarnContext(ctx, "cannot begin trigger; leaving it for redelivery", "err", err)
		return
	case attempt == approvals.AttemptNone:
		ack()
		return
	}
	req := pipelines.Request{
		GateID: g.ID, Pipeline: g.Pipeline, Target: p.Def.Target, Inputs: g.Inputs,
		Message: g.Message, Requester: g.Requester.Display(), Approvers: g.Approvers(),
		Since: g.CreatedAt, // no run for this gate can be older than the gate
	}
	idem, idempotent := p.Provider.(pipelines.Idempotent)
	idempotent = idempotent && idem.RepeatableTrigger(ctx, req)
	var run pipelines.Run
	if attempt == approvals.AttemptResumed && !idempotent {
		// A worker stopped while this trigger was in flight, after it
		// began it. This provider cannot say whether that call started a
		// run, so a person checks before pressing Retry: never a second
		// run. (A redelivery alone says nothing: the worker may have died
		// before beginning, waiting for a provider slot.)
		err = errOutcomeUnknown
	} else {
		run, err = e.trigger(ctx, p, req, idempotent)
	}
	msg := ""
	switch {
	case err == nil:
		log.InfoContext(ctx, "pipeline run started", "run_id", run.ID, "status", run.Status)
	case errors.Is(err, errOutcomeUnknown):
		msg = "gatebot stopped while starting this run, so it may have started. Check " + p.ProviderType + " before pressing Retry."
		log.ErrorContext(ctx, "trigger outcome unknown after a redelivery; not calling the provider again", "provider", p.ProviderType)
	default:
		msg = SafeProviderMessage(err)
		log.ErrorContext(ctx, "trigger failed", "err", err)
	}
	// The result is recorded even when the budget ran out during the call:
	// a trigger that was made must not be left for a redelivery that
	// cannot tell whether it started a run.
	// While the store is unavailable the result is retried for as long as
	// this worker holds the gate (finishTrigger).
	deadline := e.opts.Now().Add(recordBudget)
	if lease := g.TriggerLease.Add(-time.Second); lease.After(deadline) {
		deadline = lease
	}
	rctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	ctx = rctx
	ferr := e.finishTrigger(ctx, g, run, err, msg, pollEvery(p))
	switch {
	case errors.Is(ferr, approvals.ErrRunAfterCancel):
		// The gate was cancelled while the provider started the run:
		// stop it rather than let an unwatched deploy go on.
		log.WarnContext(ctx, "run started after the gate was cancelled; cancelling it at the provider", "run_id", run.ID)
		if c, can := p.Provider.(pipelines.Canceler); can {
			if cerr := c.Cancel(ctx, run); cerr != nil {
				log.ErrorContext(ctx, "could not cancel the run at the provider", "err", cerr)
			}
		}
	case ferr != nil:
		log.ErrorContext(ctx, "could not record the trigger's result; it will be redelivered", "err", ferr)
		return
	}
	ack()
}

// finishTrigger records a trigger's result, retrying while the store is
// unavailable for as long as this worker's lease on the gate lasts: a run
// the provider started must not be left to a redelivery, which could only
// say "may have started" and leave the run unwatched. Past the lease
// another replica may take the gate over, so it stops.
func (e *Engine) finishTrigger(ctx context.Context, g *approvals.Gate, run pipelines.Run, runErr error, msg string, every time.Duration) error {
	return e.whileUnavailable(ctx, g.TriggerLease.Add(-time.Second), "record the trigger's result", g.ID, func() error {
		next := e.opts.Now().Add(every)
		ng, err := e.opts.Store.FinishTrigger(ctx, g.ID, run, runErr, msg, next)
		if err == nil && ng != nil && ng.State == approvals.StateRunning {
			e.pollSoon(next)
		}
		return err
	})
}

// retryAfter carries a provider error and the wait it asked for, so the
// backoff honours the wait and the final error still names the provider's.
type retryAfter struct {
	err   error
	after *backoff.RetryAfterError
}

func (e *retryAfter) Error() string   { return e.err.Error() }
func (e *retryAfter) Unwrap() []error { return []error{e.err, e.after} }

// trigger calls the provider, repeating only calls that cannot have started
// a run (429, 408), or any transient failure when the provider is
// idempotent.
func (e *Engine) trigger(ctx context.Context, p *Pipeline, req pipelines.Request, idempotent bool) (pipelines.Run, error) {
	op := func() (pipelines.Run, error) {
		cctx, cancel := context.WithTimeout(ctx, e.opts.ProviderTimeout)
		defer cancel()
		cctx, span := e.span(cctx, "provider.trigger", attribute.String("gatebot.provider", p.ProviderName), attribute.String("gatebot.provider_type", p.ProviderType))
		start := e.opts.Now()
		run, err := p.Provider.Trigger(cctx, req)
		e.observe(p, "trigger", err, start)
		endSpan(span, err)
		if err == nil {
			return run, nil
		}
		var ae *pipelines.APIError
		if !errors.As(err, &ae) {
			return run, backoff.Permanent(err)
		}
		refused := ae.StatusCode == 429 || ae.StatusCode == 408 || ae.RateLimited // Too Many Requests, Request Timeout
		if !refused && !(idempotent && ae.Temporary()) {
			return run, backoff.Permanent(err)
		}
		if ae.RetryAfter > 0 {
			return run, &retryAfter{err: err, after: &backoff.RetryAfterError{Duration: ae.RetryAfter}}
		}
		return run, err
	}
	return backoff.Retry(ctx, op,
		backoff.WithBackOff(backoff.NewExponentialBackOff()),
		backoff.WithMaxTries(triggerTries),
		backoff.WithMaxElapsedTime(e.opts.TriggerBudget-e.opts.ProviderTimeout/2))
}

// SafeProviderMessage is what of a provider error may be shown in Teams:
// the provider's own code and message, never request details.
func SafeProviderMessage(err error) string {
	var ae *pipelines.APIError
	if errors.As(err, &ae) {
		msg := ae.Message
		if msg == "" && ae.StatusCode != 0 {
			msg = fmt.Sprintf("HTTP %d", ae.StatusCode)
		}
		if ae.Code != "" {
			msg = ae.Code + ": " + msg
		}
		if msg == "" {
			msg = "the provider could not be reached"
		}
		return truncate(msg, 300)
	}
	if errors.Is(err, pipelines.ErrNoRun) {
		return "the provider accepted the request but started no run"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "the provider did not answer in time"
	}
	return "the provider call failed"
}

// truncate shortens s to at most n runes.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
