package engine

import (
	"context"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v5"
	"golang.org/x/sync/errgroup"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/pipelines"
)

// noticeParallel bounds the notices sent at once per batch; a notice may
// wait for its conversation's pacing.
const noticeParallel = 8

// RelayRejection tells a provider that waits for the decision (a
// ServiceStage release task at an approval step) that the gate ended
// without approval. Providers that do not wait are not called.
func RelayRejection(ctx context.Context, p *Pipeline, g *approvals.Gate, reason string, timeout time.Duration) error {
	rj, ok := p.Provider.(pipelines.Rejecter)
	if !ok {
		return nil
	}
	by := "gatebot"
	if g.DecidedBy != nil {
		by = g.DecidedBy.Display()
	}
	req := pipelines.Request{GateID: g.ID, Pipeline: g.Pipeline, Target: p.Def.Target, Message: g.Message,
		Requester: g.Requester.Display(), Approvers: []string{by}}
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		err := rj.Reject(cctx, req, reason)
		if err != nil && !pipelines.IsTemporary(err) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithMaxTries(5), backoff.WithMaxElapsedTime(time.Minute))
	return err
}

// eachDue runs step every tick: fetch takes a batch of due gates (claimed
// by the store), and do handles each, at most noticeParallel at once, since
// each may wait for its conversation's pacing.
func (e *Engine) eachDue(ctx context.Context, worker string, every time.Duration,
	fetch func(context.Context) ([]*approvals.Gate, error), do func(context.Context, *slog.Logger, *approvals.Gate)) {
	log := e.log.With("worker", worker)
	for sleep(ctx, every) {
		if e.standby() {
			continue
		}
		gates, err := fetch(ctx)
		if err != nil {
			log.WarnContext(ctx, "cannot read due gates", "err", err)
		}
		var eg errgroup.Group
		eg.SetLimit(noticeParallel)
		for _, g := range gates {
			eg.Go(func() error { do(ctx, log, g); return nil })
		}
		eg.Wait()
	}
}

// expiryLoop expires gates past their deadline. The expiry itself (and the
// card update it queues) is one transaction; the requester's notice and
// the provider's rejection follow, at least once: ExpireDue keeps each
// gate scheduled until AckExpired.
func (e *Engine) expiryLoop(ctx context.Context) {
	fetch := func(ctx context.Context) ([]*approvals.Gate, error) { return e.opts.Store.ExpireDue(ctx, 100) }
	e.eachDue(ctx, "expiry", max(e.opts.Tick, time.Second), fetch, func(ctx context.Context, log *slog.Logger, g *approvals.Gate) {
		log.InfoContext(ctx, "gate expired", "gate_id", g.ID, "pipeline", g.Pipeline)
		e.opts.Teams.NotifyExpired(ctx, g)
		if p := e.opts.Pipelines[g.Pipeline]; p != nil {
			if err := RelayRejection(ctx, p, g, "no decision before the gate expired", e.opts.ProviderTimeout); err != nil {
				log.ErrorContext(ctx, "could not relay the expiry to the provider", "gate_id", g.ID, "err", err)
			}
		}
		if err := e.opts.Store.AckExpired(ctx, g.ID); err != nil {
			log.WarnContext(ctx, "could not acknowledge an expired gate; its notices may repeat", "gate_id", g.ID, "err", err)
		}
	})
}

// remindLoop reminds the approvers of gates still pending shortly before
// their deadline, once each (at least once: a replica that dies before
// acknowledging leaves the reminder to another after its claim lease).
func (e *Engine) remindLoop(ctx context.Context) {
	fetch := func(ctx context.Context) ([]*approvals.Gate, error) { return e.opts.Store.DueReminders(ctx, 100) }
	e.eachDue(ctx, "remind", max(e.opts.Tick, time.Second), fetch, func(ctx context.Context, log *slog.Logger, g *approvals.Gate) {
		if err := e.opts.Teams.RemindApprovers(ctx, g); err != nil {
			log.WarnContext(ctx, "could not remind the approvers; trying again later", "gate_id", g.ID, "err", err)
			return
		}
		if err := e.opts.Store.AckReminder(ctx, g.ID); err != nil {
			log.WarnContext(ctx, "could not acknowledge a reminder; it may repeat", "gate_id", g.ID, "err", err)
		}
	})
}

// unpostedLoop posts the cards of pending gates whose card never went up
// (gatebot stopped between storing a gate and posting it).
func (e *Engine) unpostedLoop(ctx context.Context) {
	fetch := func(ctx context.Context) ([]*approvals.Gate, error) { return e.opts.Store.DueUnposted(ctx, 100) }
	e.eachDue(ctx, "unposted", e.opts.UnpostedEvery, fetch, func(ctx context.Context, log *slog.Logger, g *approvals.Gate) {
		log.WarnContext(ctx, "posting the card of a gate that was never posted", "gate_id", g.ID, "pipeline", g.Pipeline)
		if err := e.opts.Teams.PostCard(ctx, g); err != nil {
			log.ErrorContext(ctx, "could not post an unposted gate's card", "gate_id", g.ID, "err", err)
		}
	})
}
