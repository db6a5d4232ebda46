package engine

import (
	"context"
	"errors"
	"maps"
	"math"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/pipelines"
)

// pollLoop claims due polls as slots allow. A poll this replica cannot do
// now (its provider's slots are busy, or it does not know the pipeline,
// as during a rolling upgrade) goes back to the schedule for another turn
// or another replica.
func (e *Engine) pollLoop(ctx context.Context) {
	log := e.log.With("worker", "poll")
	wait := e.opts.Tick
	for {
		e.pollPlanned.Store(e.opts.Now().Add(wait).UnixMilli())
		if goOn, _ := sleepOrWake(ctx, wait, e.pollWake); !goOn {
			return
		}
		// Awake, the worker's next look is not known yet: a poll
		// scheduled meanwhile leaves a wake, so the sleep that follows
		// cannot outlast it.
		e.pollPlanned.Store(math.MaxInt64)
		wait = e.opts.Tick // busy, standing by or failing: look again at the tick
		for ctx.Err() == nil && !e.standby() {
			n := e.polls.total()
			if n == 0 {
				break
			}
			gates, next, err := e.opts.Store.ClaimPolls(ctx, n, e.opts.PollLease)
			if err != nil {
				log.WarnContext(ctx, "cannot claim some polls", "err", err)
			}
			for _, g := range gates {
				p := e.opts.Pipelines[g.Pipeline]
				switch {
				case p == nil:
					e.deferPoll(ctx, g.ID, e.unknownPollDefer(g.Pipeline))
				case !e.polls.tryAcquire(p.ProviderName):
					e.deferPoll(ctx, g.ID, e.opts.Tick)
				default:
					e.spawn(func() {
						defer e.polls.release(p.ProviderName)
						e.poll(ctx, p, g)
					})
				}
			}
			if len(gates) < n && err == nil {
				wait = e.untilNext(next, pollFloor)
			}
			if len(gates) < n {
				break
			}
		}
	}
}

// pollFloor is the shortest sleep of the poll worker after a short claim.
const pollFloor = 10 * time.Millisecond

// pollSoon tells the poll worker of a poll this engine scheduled at at: a
// worker sleeping past it is woken to look again. Only the engine
// schedules polls, so a worker that sleeps until its next entry misses
// none of this replica's; another replica's are that one's.
func (e *Engine) pollSoon(at time.Time) {
	if at.UnixMilli() < e.pollPlanned.Load() {
		select {
		case e.pollWake <- struct{}{}:
		default:
		}
	}
}

// unknownPollDefer is how long a poll this replica cannot do waits: about
// a tick when a live replica serves its pipeline (a rolling upgrade: let
// that one's next claim take it), else long, since no one may be able to.
// The short wait is jittered: put back for exactly one tick, a poll would
// be due again just as this replica's own next tick came, and this
// replica — not the one that serves it — would claim it every time (the
// rolling bench run caught cards stuck on "running" that way).
func (e *Engine) unknownPollDefer(pipeline string) time.Duration {
	if e.opts.Fleet != nil {
		if v := e.opts.Fleet.View(); v.Fresh(e.opts.Now()) && v.Serves(pipeline) {
			return e.opts.Tick/2 + rand.N(e.opts.Tick)
		}
	}
	return e.opts.PollLease / 2
}

func (e *Engine) deferPoll(ctx context.Context, id string, d time.Duration) {
	at := e.opts.Now().Add(d)
	if err := e.opts.Store.DeferPoll(ctx, id, at); err != nil {
		e.log.WarnContext(ctx, "could not reschedule a poll; its lease brings it back", "gate_id", id, "err", err)
		return
	}
	e.pollSoon(at)
}

// poll fetches one run's status and records it when it changed.
func (e *Engine) poll(ctx context.Context, p *Pipeline, g *approvals.Gate) {
	ctx, span := e.span(ctx, "engine.poll", gateAttrs(g.ID, g.Pipeline)...)
	defer span.End()
	log := e.log.With("worker", "poll", "gate_id", g.ID)
	cctx, cancel := context.WithTimeout(ctx, e.opts.ProviderTimeout)
	cctx, pspan := e.span(cctx, "provider.status", attribute.String("gatebot.provider", p.ProviderName), attribute.String("gatebot.provider_type", p.ProviderType))
	start := e.opts.Now()
	run, err := p.Provider.Status(cctx, *g.Run)
	endSpan(pspan, err)
	cancel()
	if ctx.Err() != nil {
		// Shutting down: a status read is safe to drop, so the poll goes
		// back to the schedule now for another replica, rather than hold
		// up the exit or wait out its lease.
		e.deferPoll(context.WithoutCancel(ctx), g.ID, 0)
		return
	}
	ctx = context.WithoutCancel(ctx) // what was read is recorded in full
	e.observe(p, "status", err, start)
	if errors.Is(err, pipelines.ErrRunLost) {
		log.ErrorContext(ctx, "run lost at the provider; failing the gate", "err", err)
		run = *g.Run
		run.Status, run.Detail = pipelines.StatusFailed, "the provider no longer knows this run"
		err = nil
	}
	every := pollEvery(p)
	if err != nil {
		next := 2 * every
		var ae *pipelines.APIError
		if errors.As(err, &ae) && ae.RetryAfter > next {
			next = ae.RetryAfter
		}
		next = min(next, maxPollEvery)
		log.WarnContext(ctx, "run status unavailable", "err", err, "retry_in", next.String())
		e.deferPoll(ctx, g.ID, next)
		return
	}
	if !runChanged(*g.Run, run) {
		e.deferPoll(ctx, g.ID, every)
		return
	}
	err = e.whileUnavailable(ctx, start.Add(e.opts.PollLease/2), "record the run's status", g.ID, func() error {
		next := e.opts.Now().Add(every)
		ng, err := e.opts.Store.RecordRun(ctx, g.ID, run, next)
		if err == nil && ng != nil && ng.State == approvals.StateRunning {
			e.pollSoon(next)
		}
		return err
	})
	if err != nil {
		// Not recorded: its lease brings it back rather than lose a
		// final status.
		log.WarnContext(ctx, "could not record run status", "err", err)
	}
}

// runChanged reports whether a polled run differs from what the gate holds,
// including coordinates (a queue item that became a build, a late run id).
func runChanged(old, run pipelines.Run) bool {
	if run.Status != old.Status || run.Detail != old.Detail || run.URL != old.URL || run.ID != old.ID {
		return true
	}
	return run.Ref != nil && !maps.Equal(run.Ref, old.Ref)
}
