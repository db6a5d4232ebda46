package approvals

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatebot/gatebot/pipelines"
)

// claimScript takes up to ARGV[2] members of the schedule KEYS[1] whose
// score is at most ARGV[1] (now) and moves them to ARGV[3] (now + lease) in
// one step, so concurrent replicas never claim the same member twice
// within a lease. It answers the members claimed and the first score left
// (see claimReply).
var claimScript = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[3], m)
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {due, first[2] or false}
`)

// claim claims up to limit due members of schedule key for lease; next is
// when its first entry left is due (zero: none left).
func (s *Store) claim(ctx context.Context, key string, limit int, lease time.Duration) (ids []string, next time.Time, err error) {
	if limit <= 0 {
		limit = 100
	}
	now := s.opts.Now()
	res, err := claimScript.Run(ctx, s.rdb, []string{key},
		strconv.FormatInt(now.UnixMilli(), 10), limit, strconv.FormatInt(now.Add(lease).UnixMilli(), 10)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, time.Time{}, unavailable("claim schedule", err)
	}
	ids, next = claimReply(res)
	return ids, next, nil
}

// claimGates claims up to limit due members of the schedule key for lease
// and returns the gates keep accepts; the others (ended, decided, gone)
// leave the schedule. Gates that could not be read stay claimed, to come
// back when the lease ends, and their errors are joined. next is as for
// claim.
func (s *Store) claimGates(ctx context.Context, key string, limit int, lease time.Duration, keep func(*Gate) bool) (_ []*Gate, next time.Time, _ error) {
	ids, next, err := s.claim(ctx, key, limit, lease)
	if err != nil || len(ids) == 0 {
		return nil, next, err
	}
	var out []*Gate
	var errs []error
	for _, id := range ids {
		g, err := s.Get(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			errs = append(errs, err)
			continue
		case keep(g):
			out = append(out, g)
			continue
		}
		if err := s.rdb.ZRem(ctx, key, id).Err(); err != nil {
			errs = append(errs, unavailable("leave schedule", err))
		}
	}
	return out, next, errors.Join(errs...)
}

// errSkip aborts an update that found nothing to do.
var errSkip = errors.New("nothing to do")

// ExpireDue expires pending gates whose deadline has passed, at most limit
// of them per call, and returns them so the caller can update their cards
// and tell the requesters; the caller then calls AckExpired for each. Its
// cost is proportional to the gates due, and many replicas may call it at
// once: each due gate is claimed for a lease first, and the state change
// itself is atomic. Delivery is at least once: an expired gate stays on
// the schedule until AckExpired, so one whose replica died before
// acknowledging it is returned again (already expired, unchanged) once its
// claim lease runs out. Gates decided in the meantime just leave the
// schedule.
//
// Each call also takes up to pruneBatch gates whose retention is over off
// the list indexes.
//
// When some gates fail (Redis trouble, a corrupt record) the others are
// still expired and returned, together with the joined errors: callers
// must process the returned gates even when the error is not nil. Failed
// gates are retried once their lease runs out.
func (s *Store) ExpireDue(ctx context.Context, limit int) ([]*Gate, error) {
	ids, _, err := s.claim(ctx, s.dueKey(), limit, scheduleLease)
	if err != nil {
		return nil, err
	}
	var out []*Gate
	var errs []error
	for _, id := range ids {
		var reschedule time.Time
		unacked := false
		g, err := s.update(ctx, "expire gate", id, func(g *Gate, now time.Time) ([]auditNote, error) {
			unacked = false
			switch {
			case g.State == StateExpired:
				unacked = true // expired by a replica that did not acknowledge it
				return nil, errSkip
			case g.State != StatePending:
				return nil, errSkip
			case g.Deadline.IsZero() || now.Before(g.Deadline):
				reschedule = g.Deadline
				return nil, errSkip
			}
			if err := g.Transition(StateExpired, now); err != nil {
				return nil, err
			}
			return nil, nil
		})
		switch {
		case err == nil, unacked && errors.Is(err, errSkip):
			out = append(out, g)
			err = nil
		case errors.Is(err, errSkip) && !reschedule.IsZero():
			// Clock skew between replicas: put it back at its deadline.
			err = s.rdb.ZAdd(ctx, s.dueKey(), redis.Z{Score: ms(reschedule), Member: id}).Err()
			if err != nil {
				err = unavailable("expire gate", err)
			}
		case errors.Is(err, errSkip), errors.Is(err, ErrNotFound):
			err = s.rdb.ZRem(ctx, s.dueKey(), id).Err()
			if err != nil {
				err = unavailable("expire gate", err)
			}
		default:
			err = fmt.Errorf("expire gate %s: %w", id, err)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.pruneEnded(ctx, pruneBatch); err != nil {
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

// AckExpired takes an expired gate off the expiry schedule once the caller
// has updated its card and told the requester; until then ExpireDue hands
// it out again after each claim lease, so a replica dying in between does
// not lose the notification. Acknowledging an unknown gate is not an error.
func (s *Store) AckExpired(ctx context.Context, id string) error {
	if err := s.rdb.ZRem(ctx, s.dueKey(), id).Err(); err != nil {
		return unavailable("ack expired gate", err)
	}
	return nil
}

// DeferPoll moves the gate's next run-status poll to at, to be taken by
// whichever replica claims it first (ClaimPolls): the status was not
// available, or this replica cannot poll it now. It only reschedules (ZADD
// XX): a gate enters the poll schedule when it becomes running and leaves
// it when it ends, so a poll in flight meanwhile does not bring it back.
func (s *Store) DeferPoll(ctx context.Context, id string, at time.Time) error {
	if err := s.rdb.ZAddXX(ctx, s.pollKey(), redis.Z{Score: ms(at), Member: id}).Err(); err != nil {
		return unavailable("defer poll", err)
	}
	return nil
}

// ClaimPolls returns up to limit running gates whose poll is due, each
// pushed forward by lease so other replicas skip it meanwhile. Gates that
// are no longer running, or have no run, leave the schedule. The caller
// polls each run and calls RecordRun (or DeferPoll when nothing changed or
// the status is unavailable). next is when the first poll left is due
// (zero: none).
func (s *Store) ClaimPolls(ctx context.Context, limit int, lease time.Duration) (_ []*Gate, next time.Time, _ error) {
	if lease <= 0 {
		lease = scheduleLease
	}
	return s.claimGates(ctx, s.pollKey(), limit, lease, func(g *Gate) bool { return g.State == StateRunning && g.Run != nil })
}

// RecordRun stores a polled run's latest state on a running gate, ends the
// gate when the run ended, and otherwise schedules its next poll at next,
// in one transaction. A gate that is no longer running comes back
// unchanged, with no error.
func (s *Store) RecordRun(ctx context.Context, id string, run pipelines.Run, next time.Time) (*Gate, error) {
	g, err := s.update(ctx, "record run", id, func(g *Gate, now time.Time) ([]auditNote, error) {
		if g.State != StateRunning {
			return nil, errSkip
		}
		ref := map[string]string(nil)
		if g.Run != nil {
			ref = g.Run.Ref
		}
		r := run
		if r.Ref == nil {
			r.Ref = ref // providers report coordinates once, at the trigger
		}
		g.Run = &r
		if to, ok := finalState(run.Status); ok {
			if err := g.Transition(to, now); err != nil {
				return nil, err
			}
			return []auditNote{{event: string(to), from: StateRunning, to: to, actor: runEndedBy(g, to), reason: g.reasonIf(to)}}, nil
		}
		return []auditNote{{pollAt: next}}, nil
	})
	if errors.Is(err, errSkip) {
		return g, nil
	}
	return g, err
}

// runEndedBy names who ended a run that ended cancelled after someone
// asked the provider to stop it (RunCancelRequested recorded them).
func runEndedBy(g *Gate, to State) *Person {
	if to == StateCancelled && g.DecidedBy != nil {
		return g.DecidedBy
	}
	return nil
}

// reasonIf is the cancel request's reason for a run that ended cancelled.
func (g *Gate) reasonIf(to State) string {
	if to == StateCancelled {
		return g.Reason
	}
	return ""
}

// DueReminders returns up to limit pending gates whose reminder time
// (deadline − Policy.RemindBefore) has come, each claimed for a lease so
// replicas share them; call AckReminder once the approvers were reminded.
// Gates decided meanwhile have left the schedule with their decision. A
// gate still unreminded at its deadline (its reminder kept failing) is
// not returned but moved to the expiry schedule, so it expires on time.
func (s *Store) DueReminders(ctx context.Context, limit int) ([]*Gate, error) {
	gates, _, err := s.claimGates(ctx, s.remindKey(), limit, scheduleLease, func(g *Gate) bool { return g.State == StatePending })
	now := s.now()
	out := gates[:0]
	var errs []error
	for _, g := range gates {
		if !g.Deadline.IsZero() && !now.Before(g.Deadline) {
			if merr := s.remindedOrLate(ctx, g); merr != nil {
				errs = append(errs, merr)
			}
			continue
		}
		out = append(out, g)
	}
	return out, errors.Join(append(errs, err)...)
}

// AckReminder takes a gate off the reminder schedule, one reminder each,
// and puts it on the expiry schedule (a gate with a reminder is on one of
// the two at a time).
func (s *Store) AckReminder(ctx context.Context, id string) error {
	g, err := s.Get(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		g = &Gate{ID: id} // gone: just leave the schedule
	case err != nil:
		return err
	}
	return s.remindedOrLate(ctx, g)
}

// remindedOrLate moves g from the reminder schedule to the expiry schedule
// at its deadline (NX: a member already there, from a layout-2 replica,
// keeps its score). A gate decided meanwhile only leaves; if it was
// decided between the read and this write, the expiry sweep drops it.
func (s *Store) remindedOrLate(ctx context.Context, g *Gate) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if g.State == StatePending && !g.Deadline.IsZero() {
			p.ZAddNX(ctx, s.dueKey(), redis.Z{Score: ms(g.Deadline), Member: g.ID})
		}
		p.ZRem(ctx, s.remindKey(), g.ID)
		return nil
	})
	if err != nil {
		return unavailable("ack reminder", err)
	}
	return nil
}
