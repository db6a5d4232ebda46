package handlers

import (
	"context"
	"errors"
	"fmt"
	"maps"
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
)

// Run runs the background workers until ctx ends: the trigger consumer,
// the run poller and the expiry sweeper.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	loops := []func(context.Context){s.triggerLoop, s.pollLoop, s.expiryLoop}
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
		trs, err := s.opt.Store.ClaimTriggers(ctx, s.opt.Instance, 8, triggerBlock)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("cannot claim triggers", "err", err)
				sleep(ctx, 2*time.Second)
			}
			continue
		}
		for _, tr := range trs {
			s.processTrigger(ctx, tr)
		}
	}
}

// processTrigger starts the pipeline run of one granted gate, at most once:
// BeginTrigger refuses a gate that already has its run, and the provider
// call carries the gate id as idempotency key for the crash window between
// the call and FinishTrigger.
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
	case err != nil:
		log.Warn("cannot begin trigger; leaving it for redelivery", "err", err)
		return
	case !call:
		ack()
		return
	}
	s.changed(ctx, g)
	p, ok := s.opt.Pipelines[g.Pipeline]
	var run pipelines.Run
	if !ok {
		err = fmt.Errorf("pipeline %q is no longer configured", g.Pipeline)
	} else {
		run, err = s.trigger(ctx, p, g)
	}
	msg := ""
	if err != nil {
		msg = safeProviderMessage(err)
		if !ok {
			msg = err.Error()
		}
		log.Error("trigger failed", "err", err)
	} else {
		log.Info("pipeline run started", "run_id", run.ID, "status", run.Status)
	}
	ng, ferr := s.opt.Store.FinishTrigger(ctx, g.ID, fromRun(run), err, msg)
	if ferr != nil {
		log.Error("could not record the trigger's result; it will be redelivered", "err", ferr)
		return
	}
	if err == nil {
		if run.Status.Terminal() {
			ng = s.recordRun(ctx, ng, run)
		} else if serr := s.opt.Store.SchedulePoll(ctx, ng.ID, s.opt.Now().Add(pollEvery(p))); serr != nil {
			log.Error("could not schedule run polling", "err", serr)
		}
	}
	ack()
	s.changed(ctx, ng)
}

// trigger calls the provider, repeating only transient failures.
func (s *Server) trigger(ctx context.Context, p *Pipeline, g *approvals.Gate) (pipelines.Run, error) {
	req := pipelines.Request{
		GateID: g.ID, Pipeline: g.Pipeline, Target: p.Def.Target, Inputs: g.Inputs,
		Message: g.Message, Requester: g.Requester.Display(), Approvers: g.Approvers(),
	}
	op := func() (pipelines.Run, error) {
		cctx, cancel := context.WithTimeout(ctx, providerTimeout)
		defer cancel()
		run, err := p.Provider.Trigger(cctx, req)
		if err == nil {
			return run, nil
		}
		var ae *pipelines.APIError
		if errors.As(err, &ae) && (ae.Temporary() || ae.RetryAfter > 0) {
			if ae.RetryAfter > 0 {
				return run, backoff.RetryAfter(int(max(ae.RetryAfter/time.Second, 1)))
			}
			return run, err
		}
		return run, backoff.Permanent(err)
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
		ng := s.recordRun(ctx, g, run)
		if ng != g {
			s.changed(ctx, ng)
		}
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
// when the run ended. It returns the gate as stored, or g unchanged.
func (s *Server) recordRun(ctx context.Context, g *approvals.Gate, run pipelines.Run) *approvals.Gate {
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
		return g
	}
	return ng
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
		gates, err := s.opt.Store.ExpireDue(ctx, 100)
		if err != nil {
			log.Warn("cannot expire gates", "err", err)
			continue
		}
		for _, g := range gates {
			log.Info("gate expired", "gate_id", g.ID, "pipeline", g.Pipeline)
			s.changed(ctx, g)
			s.relayRejection(ctx, g, "no decision before the gate expired")
			s.notifyRequester(ctx, g, fmt.Sprintf("Your request to run %s expired: it got no decision in time.", g.Pipeline))
		}
	}
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
