package handlers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/pipelines"
)

// Worker tuning. The trigger and poll queues live in Redis, so any replica
// may do any piece of work, and a replica that dies mid-way has its work
// reclaimed by another.
const (
	defaultPollEvery = 10 * time.Second
	maxPollEvery     = 2 * time.Minute
	pollLease        = time.Minute
	triggerBlock     = 2 * time.Second
	tickEvery        = time.Second
	triggerTries     = 4
	providerTimeout  = 30 * time.Second
	// triggerBudget bounds one trigger, provider retries included; it
	// stays under the store's trigger lease and visibility (3 minutes).
	triggerBudget = 150 * time.Second
)

// Run runs the background workers until ctx ends: the trigger consumer,
// the run poller and the expiry sweeper.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	loops := []func(context.Context){s.triggerLoop, s.pollLoop, s.expiryLoop, s.unpostedLoop}
	for _, loop := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(ctx)
		}()
	}
	wg.Wait()
	return nil
}

func (s *Server) workerContext(ctx context.Context, worker string) context.Context {
	return withLogger(ctx, s.log.With("worker", worker, "instance", s.opt.Instance))
}

// sleep waits d or until ctx ends; it reports whether to go on.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (s *Server) triggerLoop(ctx context.Context) {
	ctx = s.workerContext(ctx, "trigger")
	log := loggerFrom(ctx)
	for ctx.Err() == nil {
		// One at a time: a claimed trigger waiting behind slow provider
		// calls would go idle past the visibility timeout and be reclaimed
		// by another replica.
		trs, err := s.opt.Store.ClaimTriggers(ctx, s.opt.Instance, 1, triggerBlock)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("cannot claim triggers", "err", err)
				sleep(ctx, 2*time.Second)
			}
			continue
		}
		for _, tr := range trs {
			// A trigger once begun runs to its end even while gatebot
			// shuts down: cancelling the provider call midway would leave
			// its outcome unknown.
			tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), triggerBudget)
			s.processTrigger(tctx, tr)
			cancel()
		}
	}
}

// errOutcomeUnknown is recorded when a trigger was interrupted after the
// provider may have started a run that gatebot cannot look up.
var errOutcomeUnknown = errors.New("trigger interrupted; the provider cannot tell whether a run started")

// processTrigger starts the pipeline run of one granted gate, at most once:
// BeginTrigger leases the gate to this worker (a live lease elsewhere makes
// it ErrTriggerBusy), refuses a gate that already has its run, and a
// redelivered trigger calls the provider again only if the provider can
// recognise the earlier call (pipelines.Idempotent).
func (s *Server) processTrigger(ctx context.Context, tr approvals.Trigger) {
	log := loggerFrom(ctx).With("gate_id", tr.GateID, "deliveries", tr.Deliveries)
	ctx = withLogger(ctx, log)
	ack := func() {
		if err := s.opt.Store.AckTrigger(ctx, tr); err != nil {
			log.Warn("could not ack trigger; it will be redelivered and recognised", "err", err)
		}
	}
	g, call, err := s.opt.Store.BeginTrigger(ctx, tr.GateID)
	switch {
	case errors.Is(err, approvals.ErrNotFound):
		ack()
		return
	case errors.Is(err, approvals.ErrTriggerBusy):
		log.Info("another worker holds this trigger; leaving it")
		return
	case err != nil:
		log.Warn("cannot begin trigger; leaving it for redelivery", "err", err)
		return
	case !call:
		ack()
		return
	}
	p, ok := s.opt.Pipelines[g.Pipeline]
	idem, idempotent := p.providerOrNil().(pipelines.Idempotent)
	idempotent = idempotent && idem.RepeatableTrigger(ctx, pipelines.Request{GateID: g.ID, Pipeline: g.Pipeline, Target: p.Def.Target, Inputs: g.Inputs})
	var run pipelines.Run
	switch {
	case !ok:
		err = fmt.Errorf("pipeline %q is no longer configured", g.Pipeline)
	case tr.Deliveries > 1 && !idempotent:
		// A worker stopped while this trigger was in flight. This
		// provider cannot say whether that call started a run, so a
		// person checks before pressing Retry: never a second run.
		err = errOutcomeUnknown
	default:
		s.changedAsync(ctx, g)
		run, err = s.trigger(ctx, p, g, idempotent)
	}
	msg := ""
	switch {
	case err == nil:
		log.Info("pipeline run started", "run_id", run.ID, "status", run.Status)
	case errors.Is(err, errOutcomeUnknown):
		msg = "gatebot stopped while starting this run, so it may have started. Check " + p.ProviderType + " before pressing Retry."
		log.Error("trigger outcome unknown after a redelivery; not calling the provider again", "provider", p.ProviderType)
	case !ok:
		msg = err.Error()
		log.Error("trigger failed", "err", err)
	default:
		msg = safeProviderMessage(err)
		log.Error("trigger failed", "err", err)
	}
	ng, ferr := s.opt.Store.FinishTrigger(ctx, g.ID, fromRun(run), err, msg)
	switch {
	case errors.Is(ferr, approvals.ErrRunAfterCancel):
		// The gate was cancelled while the provider started the run:
		// stop it rather than let an unwatched deploy go on.
		log.Warn("run started after the gate was cancelled; cancelling it at the provider", "run_id", run.ID)
		if c, can := providerCanceler(p); can {
			if cerr := c.Cancel(ctx, run); cerr != nil {
				log.Error("could not cancel the run at the provider", "err", cerr)
			}
		}
		ack()
		s.changed(ctx, ng)
		return
	case ferr != nil:
		log.Error("could not record the trigger's result; it will be redelivered", "err", ferr)
		return
	}
	if err == nil {
		if run.Status.Terminal() {
			if rg, rerr := s.recordRun(ctx, ng, run); rerr == nil {
				ng = rg
			}
		} else if serr := s.opt.Store.SchedulePoll(ctx, ng.ID, s.opt.Now().Add(pollEvery(p))); serr != nil {
			log.Error("could not schedule run polling", "err", serr)
		}
	}
	ack()
	s.changed(ctx, ng)
}

// providerOrNil tolerates a pipeline that is no longer configured.
func (p *Pipeline) providerOrNil() pipelines.Provider {
	if p == nil {
		return nil
	}
	return p.Provider
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
func (s *Server) trigger(ctx context.Context, p *Pipeline, g *approvals.Gate, idempotent bool) (pipelines.Run, error) {
	req := pipelines.Request{
		GateID: g.ID, Pipeline: g.Pipeline, Target: p.Def.Target, Inputs: g.Inputs,
		Message: g.Message, Requester: g.Requester.Display(), Approvers: g.Approvers(),
		Since: g.CreatedAt, // no run for this gate can be older than the gate
	}
	op := func() (pipelines.Run, error) {
		cctx, cancel := context.WithTimeout(ctx, providerTimeout)
		defer cancel()
		run, err := p.Provider.Trigger(cctx, req)
		if err == nil {
			return run, nil
		}
		var ae *pipelines.APIError
		if !errors.As(err, &ae) {
			return run, backoff.Permanent(err)
		}
		refused := ae.StatusCode == http.StatusTooManyRequests || ae.StatusCode == http.StatusRequestTimeout || ae.RateLimited
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
		backoff.WithMaxElapsedTime(2*time.Minute))
}

func pollEvery(p *Pipeline) time.Duration {
	if p != nil && p.PollEvery > 0 {
		return p.PollEvery
	}
	return defaultPollEvery
}

func (s *Server) pollLoop(ctx context.Context) {
	ctx = s.workerContext(ctx, "poll")
	log := loggerFrom(ctx)
	for sleep(ctx, tickEvery) {
		ids, err := s.opt.Store.ClaimPolls(ctx, 32, pollLease)
		if err != nil {
			log.Warn("cannot claim polls", "err", err)
			continue
		}
		for _, id := range ids {
			s.poll(ctx, id)
		}
	}
}

// poll fetches one run's status and moves its gate along.
func (s *Server) poll(ctx context.Context, id string) {
	log := loggerFrom(ctx).With("gate_id", id)
	ctx = withLogger(ctx, log)
	g, err := s.opt.Store.Get(ctx, id)
	if errors.Is(err, approvals.ErrNotFound) || (err == nil && (g.State.Final() || g.Run == nil)) {
		s.opt.Store.UnschedulePoll(ctx, id)
		return
	}
	if err != nil {
		log.Warn("cannot load gate to poll", "err", err)
		return // the lease expires and the poll is claimed again
	}
	p := s.opt.Pipelines[g.Pipeline]
	if p == nil {
		log.Error("pipeline no longer configured; not polling its run", "pipeline", g.Pipeline)
		s.opt.Store.UnschedulePoll(ctx, id)
		return
	}
	cctx, cancel := context.WithTimeout(ctx, providerTimeout)
	run, err := p.Provider.Status(cctx, toRun(g.Run))
	cancel()
	if errors.Is(err, pipelines.ErrRunLost) {
		log.Error("run lost at the provider; failing the gate", "err", err)
		run = toRun(g.Run)
		run.Status, run.Detail = pipelines.StatusFailed, "the provider no longer knows this run"
		err = nil
	}
	if err != nil {
		next := 2 * pollEvery(p)
		var ae *pipelines.APIError
		if errors.As(err, &ae) && ae.RetryAfter > next {
			next = ae.RetryAfter
		}
		log.Warn("run status unavailable", "err", err, "retry_in", next.String())
		s.opt.Store.SchedulePoll(ctx, id, s.opt.Now().Add(min(next, maxPollEvery)))
		return
	}
	if runChanged(g.Run, run) {
		ng, err := s.recordRun(ctx, g, run)
		if err != nil {
			// Not recorded: look again soon rather than lose a final status.
			s.opt.Store.SchedulePoll(ctx, id, s.opt.Now().Add(pollEvery(p)))
			return
		}
		s.changed(ctx, ng)
	}
	if run.Status.Terminal() {
		s.opt.Store.UnschedulePoll(ctx, id)
		return
	}
	s.opt.Store.SchedulePoll(ctx, id, s.opt.Now().Add(pollEvery(p)))
}

// runChanged reports whether a polled run differs from what the gate holds,
// including coordinates (a queue item that became a build, a late run id).
func runChanged(old *approvals.RunInfo, run pipelines.Run) bool {
	if run.Status != pipelines.Status(old.Status) || run.Detail != old.Detail || run.URL != old.URL || run.ID != old.ID {
		return true
	}
	return run.Ref != nil && !maps.Equal(run.Ref, old.Ref)
}

// recordRun stores the run's latest state on the gate, ending the gate
// when the run ended, and returns the gate as stored.
func (s *Server) recordRun(ctx context.Context, g *approvals.Gate, run pipelines.Run) (*approvals.Gate, error) {
	ng, err := s.opt.Store.Update(ctx, g.ID, func(g *approvals.Gate) error {
		if g.Run == nil {
			g.Run = &approvals.RunInfo{}
		}
		ref := g.Run.Ref
		*g.Run = fromRun(run)
		if run.Ref == nil {
			g.Run.Ref = ref
		}
		g.UpdatedAt = s.opt.Now()
		if to, ok := finalState(run.Status); ok && g.State != to {
			return g.Transition(to, s.opt.Now())
		}
		return nil
	})
	if err != nil {
		loggerFrom(ctx).Warn("could not record run status", "err", err)
		return g, err
	}
	return ng, nil
}

func finalState(st pipelines.Status) (approvals.State, bool) {
	switch st {
	case pipelines.StatusSucceeded:
		return approvals.StateSucceeded, true
	case pipelines.StatusFailed:
		return approvals.StateFailed, true
	case pipelines.StatusCancelled:
		return approvals.StateCancelled, true
	}
	return "", false
}

func (s *Server) expiryLoop(ctx context.Context) {
	ctx = s.workerContext(ctx, "expiry")
	log := loggerFrom(ctx)
	for sleep(ctx, tickEvery) {
		// ExpireDue returns what it expired even when part of the batch
		// failed, and keeps each gate scheduled until AckExpired, so a
		// replica that dies here leaves the notices to another.
		gates, err := s.opt.Store.ExpireDue(ctx, 100)
		if err != nil {
			log.Warn("cannot expire some gates", "err", err)
		}
		for _, g := range gates {
			log.Info("gate expired", "gate_id", g.ID, "pipeline", g.Pipeline)
			s.changed(ctx, g)
			s.relayRejection(ctx, g, "no decision before the gate expired")
			s.notifyRequester(ctx, g, fmt.Sprintf("Your request to run %s expired: it got no decision in time.", g.Pipeline))
			if err := s.opt.Store.AckExpired(ctx, g.ID); err != nil {
				log.Warn("could not acknowledge an expired gate; its notices may repeat", "gate_id", g.ID, "err", err)
			}
		}
	}
}

// changedAsync is changed after the current step, off its critical path.
func (s *Server) changedAsync(ctx context.Context, g *approvals.Gate) {
	s.goAsync(ctx, asyncBudget, func(ctx context.Context) { s.changed(ctx, g) })
}

// changed propagates a gate's new state to everyone watching it: the
// shared card now, and (for API gates) the caller's callback.
func (s *Server) changed(ctx context.Context, g *approvals.Gate) {
	if g == nil {
		return
	}
	s.refreshCard(ctx, g)
	s.enqueueCallback(ctx, g)
}
