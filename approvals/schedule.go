package approvals

import (
	"context"
	"errors"
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
// of them per call, and returns the gates this call expired so the caller
// can update their cards and tell the requesters. Its cost is proportional
// to the gates due, and many replicas may call it at once: each due gate is
// claimed for a lease first, and the state change itself is atomic, so a
// gate is expired, and returned, by exactly one call. Gates decided in the
// meantime just leave the schedule. When some gates fail (Redis trouble),
// the others are still returned, with the joined errors; the failed ones
// are retried once their lease runs out.
func (s *Store) ExpireDue(ctx context.Context, limit int) ([]*Gate, error) {
	ids, err := s.claim(ctx, s.dueKey(), limit, scheduleLease)
	if err != nil {
		return nil, err
	}
	var out []*Gate
	var errs []error
	for _, id := range ids {
		var reschedule time.Time
		g, err := s.update(ctx, "expire gate", id, func(g *Gate, now time.Time) ([]auditNote, error) {
			if g.State != StatePending {
				return nil, errSkip
			}
			if g.Deadline.IsZero() || now.Before(g.Deadline) {
				reschedule = g.Deadline
				return nil, errSkip
			}
			if err := g.Transition(StateExpired, now); err != nil {
				return nil, err
			}
			return nil, nil
		})
		switch {
		case err == nil:
			out = append(out, g)
		case errors.Is(err, errSkip) && !reschedule.IsZero():
			// Clock skew between replicas: put it back at its deadline.
			err = s.rdb.ZAdd(ctx, s.dueKey(), redis.Z{Score: ms(reschedule), Member: id}).Err()
		case errors.Is(err, errSkip), errors.Is(err, ErrNotFound):
			err = s.rdb.ZRem(ctx, s.dueKey(), id).Err()
		}
		if err != nil && !errors.Is(err, errSkip) {
			if !errors.Is(err, ErrUnavailable) {
				err = unavailable("expire gate", err)
			}
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// SchedulePoll asks for the gate's run status to be polled at at, by
// whichever replica claims it first (ClaimPolls).
func (s *Store) SchedulePoll(ctx context.Context, id string, at time.Time) error {
	if err := s.rdb.ZAdd(ctx, s.pollKey(), redis.Z{Score: ms(at), Member: id}).Err(); err != nil {
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
