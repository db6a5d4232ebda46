package approvals

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// claimScript takes up to ARGV[2] members of the schedule KEYS[1] whose
// score is at most ARGV[1] (now) and moves them to ARGV[3] (now + lease) in
// one step, so concurrent replicas never claim the same member twice
// within a lease.
var claimScript = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[3], m)
end
return due
`)

func (s *Store) claim(ctx context.Context, key string, limit int, lease time.Duration) ([]string, error) {
	if limit <= 0 {
		limit = 100
	}
	now := s.opts.Now()
	ids, err := claimScript.Run(ctx, s.rdb, []string{key},
		strconv.FormatInt(now.UnixMilli(), 10), limit, strconv.FormatInt(now.Add(lease).UnixMilli(), 10)).StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable("claim schedule", err)
	}
	return ids, nil
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
	ids, err := s.claim(ctx, s.dueKey(), limit, scheduleLease)
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

// SchedulePoll moves the gate's next run-status poll to at, to be taken
// by whichever replica claims it first (ClaimPolls). It only reschedules
// (ZADD XX): a gate enters the poll schedule when FinishTrigger makes it
// running and leaves it when it ends or is unscheduled, so a poll that was
// in flight meanwhile does not bring it back.
func (s *Store) SchedulePoll(ctx context.Context, id string, at time.Time) error {
	if err := s.rdb.ZAddXX(ctx, s.pollKey(), redis.Z{Score: ms(at), Member: id}).Err(); err != nil {
		return unavailable("schedule poll", err)
	}
	return nil
}

// ClaimPolls returns up to limit gate ids whose poll is due and pushes each
// forward by lease, so other replicas skip them meanwhile. The caller polls
// the run and then calls SchedulePoll for the next time, or lets the gate
// reach a final state, which unschedules it.
func (s *Store) ClaimPolls(ctx context.Context, limit int, lease time.Duration) ([]string, error) {
	if lease <= 0 {
		lease = scheduleLease
	}
	return s.claim(ctx, s.pollKey(), limit, lease)
}

// UnschedulePoll stops polling the gate's run.
func (s *Store) UnschedulePoll(ctx context.Context, id string) error {
	if err := s.rdb.ZRem(ctx, s.pollKey(), id).Err(); err != nil {
		return unavailable("unschedule poll", err)
	}
	return nil
}
