package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/replicas"
)

// Fleet is what the engine knows of the other replicas. *replicas.Registry
// implements it.
type Fleet interface {
	View() replicas.View
}

// Defaults of the unserved sweep.
const (
	DefaultUnknownPipelineGrace = 10 * time.Minute
	defaultUnservedEvery        = 30 * time.Second
	unservedPage                = 200
	unservedPages               = 10
)

// errUnserved is the trigger error recorded for a pipeline no replica
// serves; only its message (unservedMessage) reaches the card.
var errUnserved = errors.New("no live replica serves the pipeline")

// standby reports whether this replica leaves all work alone because
// another deployment was using the Redis prefix first (replicas.View.Yields):
// its work is that deployment's, not ours.
func (e *Engine) standby() bool {
	return e.opts.Fleet != nil && e.opts.Fleet.View().Yields()
}

// unservedLoop fails the triggers of gates whose pipeline no live replica
// serves, once they have waited UnknownPipelineGrace. During a rolling
// upgrade a replica that lacks a pipeline never claims its triggers (each
// pipeline has its own queue), so they wait for a replica that has it;
// only when none has it for the whole grace — the pipeline was removed
// from the config — does the gate end, with a message saying so and a
// Retry for when it is back.
//
// It decides only on a fresh registry view: a replica that cannot read the
// registry cannot tell "no one serves it" from "I cannot see them".
func (e *Engine) unservedLoop(ctx context.Context) {
	if e.opts.Fleet == nil {
		return
	}
	for sleep(ctx, e.opts.UnservedEvery) {
		v := e.opts.Fleet.View()
		if !v.Fresh(e.opts.Now()) || v.Yields() {
			continue
		}
		for _, st := range []approvals.State{approvals.StateApproved, approvals.StateTriggering} {
			e.sweepUnserved(ctx, v, st)
		}
	}
}

// sweepUnserved looks at a bounded number of gates in state st: approved
// and triggering gates are few (they last seconds), so a few pages cover
// them.
func (e *Engine) sweepUnserved(ctx context.Context, v replicas.View, st approvals.State) {
	cursor := ""
	for range unservedPages {
		gates, next, err := e.opts.Store.List(ctx, approvals.ListQuery{State: st, Cursor: cursor, Limit: unservedPage})
		if err != nil {
			e.log.WarnContext(ctx, "cannot list gates waiting for a trigger", "worker", "unserved", "state", string(st), "err", err)
			return
		}
		now := e.opts.Now()
		for _, g := range gates {
			switch {
			case e.opts.Pipelines[g.Pipeline] != nil || v.Serves(g.Pipeline):
			case g.State == approvals.StateTriggering && now.Before(g.TriggerLease):
				// A live worker somewhere is calling the provider.
			case now.Sub(g.UpdatedAt) < e.opts.UnknownPipelineGrace:
			default:
				e.failUnserved(ctx, g, now.Sub(g.UpdatedAt))
			}
		}
		if next == "" {
			return
		}
		cursor = next
	}
}

// failUnserved ends one gate's wait for a replica that serves its
// pipeline, through the same named operations as a failed provider call:
// BeginTriggerAttempt leases it (a second replica doing the same sweep
// gets ErrTriggerBusy) and FinishTrigger records trigger_failed, from
// which Retry re-queues it once the pipeline is configured again.
func (e *Engine) failUnserved(ctx context.Context, g *approvals.Gate, waited time.Duration) {
	log := e.log.With("worker", "unserved", "gate_id", g.ID, "pipeline", g.Pipeline)
	_, attempt, err := e.opts.Store.BeginTriggerAttempt(ctx, g.ID)
	switch {
	case errors.Is(err, approvals.ErrTriggerBusy), errors.Is(err, approvals.ErrNotFound):
		return
	case err != nil:
		log.WarnContext(ctx, "cannot fail a gate no replica serves; trying again later", "err", err)
		return
	case attempt == approvals.AttemptNone:
		return
	}
	msg := unservedMessage(g.Pipeline, waited, attempt == approvals.AttemptResumed)
	if _, err := e.opts.Store.FinishTrigger(ctx, g.ID, pipelines.Run{}, errUnserved, msg, time.Time{}); err != nil {
		log.ErrorContext(ctx, "could not record that no replica serves the pipeline; its trigger lease brings it back", "err", err)
		return
	}
	log.ErrorContext(ctx, "no live replica serves this gate's pipeline; the gate failed to start", "waited", roundWait(waited).String())
}

// unservedMessage is what the card says. A resumed attempt was begun by a
// replica that died, which may have called the provider.
func unservedMessage(pipeline string, waited time.Duration, resumed bool) string {
	msg := fmt.Sprintf("No running gatebot has pipeline %q in its config any more (waited %s for one that does). Add it back and press Retry, or cancel this gate.",
		pipeline, roundWait(waited))
	if resumed {
		msg = "gatebot stopped while starting this run, so it may have started: check the provider first. " + msg
	}
	return msg
}

// roundWait rounds a wait for people: minutes once it is that long.
func roundWait(d time.Duration) time.Duration {
	if d >= time.Minute {
		return d.Round(time.Minute)
	}
	return d.Round(time.Second)
}
