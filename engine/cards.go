package engine

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/gatebot/gatebot/approvals"
)

// Card sync tuning.
const (
	cardBatch       = 32
	maxCardFailures = 8
	maxCardBackoff  = 2 * time.Minute
)

// cardLoop keeps shared cards current. One logical updater per gate (the
// store's claim lock): each sync renders the gate's latest state, so
// changes that came in while a conversation was paced are coalesced into
// one update. A sync the conversation's pacing or a 429 does not allow now
// goes back to the queue for later, freeing its worker at once.
func (e *Engine) cardLoop(ctx context.Context) {
	log := e.log.With("worker", "cards")
	tick := max(e.opts.Tick/2, 10*time.Millisecond)
	wait := tick
	for {
		goOn, woken := sleepOrWake(ctx, wait, e.opts.Store.CardsQueued())
		// A wake comes with the change that queued the update. What often
		// follows it at once (the trigger an approval starts, the run it
		// reports) is given a moment to join the same update: sent
		// alone, each state would spend one of the conversation's paced
		// sends and hold the next state back by a second.
		if !goOn || (woken && !sleep(ctx, min(e.opts.Tick/4, maxCardSettle))) {
			return
		}
		wait = tick // busy, standing by or failing: look again at the tick
		for ctx.Err() == nil && !e.standby() {
			n := min(cap(e.cards)-len(e.cards), cardBatch)
			if n == 0 {
				break
			}
			syncs, next, err := e.opts.Store.ClaimCardSyncs(ctx, n, e.opts.CardLease)
			if err != nil {
				log.WarnContext(ctx, "cannot claim card updates", "err", err)
				break
			}
			for _, cs := range syncs {
				e.cards <- struct{}{}
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.opts.CardLease)
				e.spawn(func() {
					defer func() { <-e.cards }()
					defer cancel()
					e.syncCard(sctx, cs)
				})
			}
			if len(syncs) < n {
				wait = e.untilNext(next, cardFloor)
				break
			}
		}
	}
}

const (
	// cardFloor is the shortest sleep of the card worker after a short
	// claim.
	cardFloor = 5 * time.Millisecond
	// maxCardSettle bounds the moment a wake waits for what follows it
	// (Tick/4, 62 ms by default).
	maxCardSettle = 100 * time.Millisecond
)

// retryAfterer is an error that says how long to wait before trying again
// (bot.PacedError: pacing or a 429).
type retryAfterer interface{ RetryAfter() time.Duration }

func (e *Engine) syncCard(ctx context.Context, cs approvals.CardSync) {
	ctx, span := e.span(ctx, "engine.card_sync", attribute.String("gatebot.gate_id", cs.GateID))
	defer span.End()
	log := e.log.With("worker", "cards", "gate_id", cs.GateID)
	st, err := e.opts.Store.LoadCardSync(ctx, cs.GateID)
	switch {
	case errors.Is(err, approvals.ErrNotFound):
		e.finishCard(ctx, cs.GateID, cs.Version, "", true)
		return
	case err != nil:
		log.WarnContext(ctx, "cannot load gate for its card; the lease brings it back", "err", err)
		return
	}
	// A click that changed the gate after this sync was claimed holds its
	// card until its own answer is written, and this sync must not show
	// the click's state before it (LoadCardSync reads the hold after the
	// gate).
	g := st.Gate
	if !st.HeldUntil.IsZero() {
		e.deferCard(ctx, g.ID, st.HeldUntil.Sub(e.opts.Now()))
		return
	}
	digest, err := e.opts.Teams.SyncCard(ctx, g, st.LastDigest)
	var ra retryAfterer
	switch {
	case err == nil:
		e.cardOK(g.ID)
		e.finishCard(ctx, g.ID, g.Version, digest, g.State.Final())
	case errors.As(err, &ra):
		e.deferCard(ctx, g.ID, ra.RetryAfter())
	case errors.Is(err, ErrCardGone):
		log.WarnContext(ctx, "the gate's card can no longer be updated", "err", err)
		e.finishCard(ctx, g.ID, g.Version, "", true)
	default:
		n := e.cardFailed(g.ID)
		if n > maxCardFailures {
			log.ErrorContext(ctx, "giving up updating the gate's card", "attempts", n, "err", err)
			e.cardOK(g.ID)
			e.finishCard(ctx, g.ID, g.Version, "", false)
			return
		}
		wait := min(time.Second<<(n-1), maxCardBackoff)
		log.WarnContext(ctx, "could not update the gate's card; will retry", "attempt", n, "retry_in", wait.String(), "err", err)
		e.deferCard(ctx, g.ID, wait)
	}
}

func (e *Engine) finishCard(ctx context.Context, id string, version int64, digest string, final bool) {
	err := e.whileUnavailable(ctx, e.opts.Now().Add(e.opts.CardLease/2), "finish a card update", id, func() error {
		return e.opts.Store.FinishCardSync(ctx, id, version, digest, final)
	})
	if err != nil {
		e.log.WarnContext(ctx, "could not finish a card update; its lease brings it back", "gate_id", id, "err", err)
	}
}

func (e *Engine) deferCard(ctx context.Context, id string, d time.Duration) {
	if err := e.opts.Store.DeferCardSync(ctx, id, e.opts.Now().Add(max(d, 10*time.Millisecond))); err != nil {
		e.log.WarnContext(ctx, "could not reschedule a card update; its lease brings it back", "gate_id", id, "err", err)
	}
}

func (e *Engine) cardFailed(id string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cardErrors[id]++
	return e.cardErrors[id]
}

func (e *Engine) cardOK(id string) {
	e.mu.Lock()
	delete(e.cardErrors, id)
	e.mu.Unlock()
}
