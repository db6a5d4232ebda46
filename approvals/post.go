package approvals

import (
	"context"
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

// ClaimPost takes the right to post g's card for lease, so that two
// replays of the same API request, the sweep and the normal path never
// post one gate twice at the same time. false means another holds it.
func (s *Store) ClaimPost(ctx context.Context, id string, lease time.Duration) (bool, error) {
	ok, err := s.rdb.SetNX(ctx, s.postingKey(id), "1", lease).Result()
	if err != nil {
		return false, unavailable("claim post", err)
	}
	return ok, nil
}

// DueUnposted returns up to limit pending gates whose card is still not up
// Options.UnpostedAfter after their creation: gatebot stopped between
// storing a gate and posting it. Each is claimed for a lease, so replicas
// share them; gates posted or ended meanwhile leave the schedule.
func (s *Store) DueUnposted(ctx context.Context, limit int) ([]*Gate, error) {
	return s.claimGates(ctx, s.unpostedKey(), limit, scheduleLease, func(g *Gate) bool {
		return g.State == StatePending && g.Post.PostedAt.IsZero()
	})
}

// scheduleUnposted queues the unposted check of a new gate.
func (s *Store) scheduleUnposted(ctx context.Context, p redis.Pipeliner, g *Gate) {
	if g.Post.PostedAt.IsZero() {
		p.ZAdd(ctx, s.unpostedKey(), redis.Z{Score: ms(g.CreatedAt.Add(s.opts.UnpostedAfter)), Member: g.ID})
	}
}
