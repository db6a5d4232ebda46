package approvals

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultUnpostedAfter is how long after its creation a pending gate whose
// card is not up counts as unposted (DueUnposted): long enough for the
// normal post, paced and retried, to have finished.
const DefaultUnpostedAfter = time.Minute

// SetPost records where g's card was posted and that it is up, taking the
// gate off the unposted schedule in the same transaction. digest is the
// digest of the card posted (see ClaimCardSyncs), so the card syncer does
// not send the same card again; the gate's card is queued for a sync, which
// brings it up to date if the gate changed while it was being posted. It
// may be called again for the same gate (a card re-posted); the latest
// post wins.
func (s *Store) SetPost(ctx context.Context, id string, post Post, digest string) (*Gate, error) {
	return s.update(ctx, "record post", id, func(g *Gate, now time.Time) ([]auditNote, error) {
		post.PostedAt = now
		g.Post = post
		if digest == "" || post.ActivityID == "" {
			return nil, nil
		}
		return []auditNote{{cardDigest: digest}}, nil
	})
}

// ClaimPost takes the right to post g's card for lease, for holder (the
// replica's instance name), so that two replays of the same API request,
// the sweep and the normal path never post one gate twice at the same
// time. false means another holds it: PostHolder says who.
func (s *Store) ClaimPost(ctx context.Context, id, holder string, lease time.Duration) (bool, error) {
	ok, err := s.rdb.SetNX(ctx, s.postingKey(id), holder, lease).Result()
	if err != nil {
		return false, unavailable("claim post", err)
	}
	return ok, nil
}

// PostHolder returns who holds g's post claim, "" when no one does.
func (s *Store) PostHolder(ctx context.Context, id string) (string, error) {
	h, err := s.rdb.Get(ctx, s.postingKey(id)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return "", nil
	case err != nil:
		return "", unavailable("read post claim", err)
	}
	return h, nil
}

// compareAndSet replaces KEYS[1] with ARGV[2] (TTL ARGV[3] ms; deleted
// when ARGV[2] is empty) only while it holds ARGV[1], and always makes the
// unposted schedule (KEYS[2]) due at ARGV[4] for the gate ARGV[5] if it
// is still on it, so the sweep takes it soon.
var compareAndSet = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
if ARGV[4] ~= '' then redis.call('ZADD', KEYS[2], 'XX', ARGV[4], ARGV[5]) end
return 1`)

// ReleasePost gives up holder's claim on g's post and makes the gate due on
// the unposted schedule after dueIn, so a sweep (another replica's, or
// this one's) posts it then instead of waiting for the lease: at once for
// a replica shutting down before its post went out, later for a post the
// Connector failed for now.
func (s *Store) ReleasePost(ctx context.Context, id, holder string, dueIn time.Duration) error {
	_, err := compareAndSet.Run(ctx, s.rdb, []string{s.postingKey(id), s.unpostedKey()},
		holder, "", 0, ms(s.now().Add(dueIn)), id).Result()
	if err != nil {
		return unavailable("release post", err)
	}
	return nil
}

// TakeOverPost moves g's post claim from a holder that is gone (a replica
// killed while posting, no longer in the replica registry) to holder.
// false means the claim is no longer from's.
func (s *Store) TakeOverPost(ctx context.Context, id, from, holder string, lease time.Duration) (bool, error) {
	n, err := compareAndSet.Run(ctx, s.rdb, []string{s.postingKey(id), s.unpostedKey()},
		from, holder, lease.Milliseconds(), "", id).Int()
	if err != nil {
		return false, unavailable("take over post", err)
	}
	return n == 1, nil
}

// DueUnposted returns up to limit pending gates whose card is still not up
// Options.UnpostedAfter after their creation: gatebot stopped between
// storing a gate and posting it. Each is claimed for a lease, so replicas
// share them; gates posted or ended meanwhile leave the schedule.
func (s *Store) DueUnposted(ctx context.Context, limit int) ([]*Gate, error) {
	gates, _, err := s.claimGates(ctx, s.unpostedKey(), limit, scheduleLease, func(g *Gate) bool {
		return g.State == StatePending && g.Post.PostedAt.IsZero()
	})
	return gates, err
}

// scheduleUnposted queues the unposted check of a new gate.
func (s *Store) scheduleUnposted(ctx context.Context, p redis.Pipeliner, g *Gate) {
	if g.Post.PostedAt.IsZero() {
		p.ZAdd(ctx, s.unpostedKey(), redis.Z{Score: ms(g.CreatedAt.Add(s.opts.UnpostedAfter)), Member: g.ID})
	}
}
