package approvals

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/redis/go-redis/v9"
)

// txBackOff paces retries of a contended gate.
func txBackOff() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{
		InitialInterval:     time.Millisecond,
		RandomizationFactor: 0.5,
		Multiplier:          1.6,
		MaxInterval:         50 * time.Millisecond,
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// prepareChange completes a change fn made to g (version, time, lease) and
// encodes the record.
func (s *Store) prepareChange(ctx context.Context, g *Gate, now time.Time) ([]byte, error) {
	g.Version++
	g.UpdatedAt = now
	if g.State != StateTriggering {
		g.TriggerLease = time.Time{} // a lease only guards a trigger in flight
	}
	return s.encodeGate(ctx, g)
}

// stateNotes adds the audit note of a state change when fn's notes do not
// cover it.
func stateNotes(notes []auditNote, old, nw State) []auditNote {
	if old == nw {
		return notes
	}
	for _, n := range notes {
		if n.event != "" && n.to == nw {
			return notes
		}
	}
	return append(notes, auditNote{event: string(nw), from: old, to: nw})
}

// queueChange queues in p every write a change of g from state old makes,
// enc being its new record.
func (s *Store) queueChange(ctx context.Context, p redis.Pipeliner, g *Gate, old State, wasPosted bool, enc []byte, now time.Time, notes []auditNote, legacy bool) error {
	id, nw := g.ID, g.State
	notes = stateNotes(notes, old, nw)
	// The outbox: what must follow this change, in the same script.
	if g.Post.ActivityID != "" {
		s.queueCard(ctx, p, g, now)
	}
	if g.CallbackURL != "" && old != nw {
		if err := s.queueCallback(ctx, p, g, now); err != nil {
			return err
		}
	}
	var ttl time.Duration
	if nw.Final() {
		ttl = s.opts.Retention
		// Every write of a final gate renews its TTL, and so its
		// index entries' end of life.
		p.ZAdd(ctx, s.endedKey(), redis.Z{Score: ms(now.Add(ttl)), Member: endedMember(g)})
	}
	p.Set(ctx, s.gateKey(id), enc, ttl)
	if !wasPosted && (!g.Post.PostedAt.IsZero() || (nw.Final() && !old.Final())) {
		p.ZRem(ctx, s.unpostedKey(), id)
	}
	if old != nw {
		s.queueMove(ctx, p, g, old, legacy, now)
	}
	for _, n := range notes {
		if !n.holdCard.IsZero() && g.Post.ActivityID != "" {
			p.HSet(ctx, s.cardHoldKey(), id, n.holdCard.UnixMilli())
		}
		if n.cardDigest != "" {
			p.HSet(ctx, s.cardSentKey(id), id, n.cardDigest)
		}
		if !n.pollAt.IsZero() && nw == StateRunning {
			p.ZAdd(ctx, s.pollKey(), redis.Z{Score: ms(n.pollAt), Member: id})
		}
		if n.event != "" {
			s.audit(ctx, p, g, n)
		}
	}
	return nil
}

// queueMove queues the index and schedule moves of g's change from state
// old to its state.
func (s *Store) queueMove(ctx context.Context, p redis.Pipeliner, g *Gate, old State, legacy bool, now time.Time) {
	id, nw := g.ID, g.State
	p.ZRem(ctx, s.ixPipelineState(g.Pipeline, old), id)
	p.ZAdd(ctx, s.ixPipelineState(g.Pipeline, nw), redis.Z{Score: ms(g.CreatedAt), Member: id})
	if legacy {
		p.ZRem(ctx, s.ixStateV2(old), id)
		p.ZAdd(ctx, s.ixStateV2(nw), redis.Z{Score: ms(g.CreatedAt), Member: id})
	}
	// An expired gate stays on the expiry schedule (at the claim lease
	// ExpireDue gave it) until AckExpired: its card and requester are told
	// at least once.
	if (old == StatePending || nw.Final()) && nw != StateExpired {
		p.ZRem(ctx, s.dueKey(), id)
	}
	if old == StatePending {
		p.ZRem(ctx, s.remindKey(), id)
	}
	if nw.Final() {
		p.ZRem(ctx, s.pollKey(), id)
		if g.IdempotencyKey != "" {
			p.Expire(ctx, s.idemKey(g.IdempotencyKey), s.opts.Retention)
		}
	}
	switch nw {
	case StateApproved:
		p.XAdd(ctx, &redis.XAddArgs{Stream: s.triggerKey(g.Pipeline), Values: []string{"gate", id}})
	case StateRunning:
		p.ZAdd(ctx, s.pollKey(), redis.Z{Score: ms(now), Member: id})
	}
}
