package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The outbox: what must follow a change of a gate is written in the
// change's own MULTI (see update), so a replica that dies right after the
// change leaves the follow-up work queued for whichever replica is next.
//
// Cards are coalesced: the queue holds one entry per gate, whatever the
// number of changes, and the card syncer always renders the gate's latest
// state. ob:cardver says which version that is, so the syncer can tell
// whether the gate changed again while its update was in flight.
// ob:cardlock keeps one connector call per gate in flight across all
// replicas; ob:cardhold keeps the shared update back while a click's own
// answer (the clicker's card) is being written, so that no older card can
// land after it; ob:cs:<bucket> hold the digest of the card last shown, so
// an identical card is never sent again. The digests are spread over 1024
// small hashes by the last two characters of the gate id (cardSentKey):
// Redis stores a hash of up to 512 short entries as a listpack, at less
// than half the memory of one large hash's entries.

// CardSync is a gate whose shared card must be brought up to date, to
// version Version at least.
type CardSync struct {
	GateID  string
	Version int64
}

// cardClaimScript takes up to ARGV[2] due gates of the card queue. A gate
// held for a click's answer or in flight elsewhere is pushed to when the
// hold or lease ends instead. KEYS: queue, versions, holds, locks.
// ARGV: now (ms), limit, lease end (ms). Answers the id, version pairs
// claimed and the first score left (see claimReply).
var cardClaimScript = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local now = tonumber(ARGV[1])
local out = {}
for _, m in ipairs(due) do
  local h = tonumber(redis.call('HGET', KEYS[3], m))
  local l = tonumber(redis.call('HGET', KEYS[4], m))
  if h and h > now then
    redis.call('ZADD', KEYS[1], h, m)
  elseif l and l > now then
    redis.call('ZADD', KEYS[1], l, m)
  else
    if h then redis.call('HDEL', KEYS[3], m) end
    redis.call('HSET', KEYS[4], m, ARGV[3])
    redis.call('ZADD', KEYS[1], ARGV[3], m)
    table.insert(out, m)
    table.insert(out, redis.call('HGET', KEYS[2], m) or '0')
  end
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {out, first[2] or false}
`)

// cardDoneScript ends the sync of ARGV[1] at version ARGV[2]: it releases
// the lock, records the digest shown (ARGV[4]; "" keeps the old one, "-"
// forgets it) and leaves the queue unless the gate changed meanwhile, in
// which case it is due again at ARGV[3]. KEYS: queue, versions, locks,
// sent.
var cardDoneScript = redis.NewScript(`
redis.call('HDEL', KEYS[3], ARGV[1])
if ARGV[4] == '-' then
  redis.call('HDEL', KEYS[4], ARGV[1])
elseif ARGV[4] ~= '' then
  redis.call('HSET', KEYS[4], ARGV[1], ARGV[4])
end
local v = tonumber(redis.call('HGET', KEYS[2], ARGV[1]))
if v and v > tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 0
`)

func (s *Store) cardQueueKey() string { return s.opts.Prefix + "ob:card" }
func (s *Store) cardVerKey() string   { return s.opts.Prefix + "ob:cardver" }
func (s *Store) cardHoldKey() string  { return s.opts.Prefix + "ob:cardhold" }
func (s *Store) cardLockKey() string  { return s.opts.Prefix + "ob:cardlock" }

// cardSentKey is the hash holding the digest of gate id's card (in
// layout 2, one hash for all).
func (s *Store) cardSentKey(id string) string {
	if s.isLegacy() {
		return s.opts.Prefix + "ob:cardsent"
	}
	return s.cardSentKeyV3(id)
}

// cardSentKeyV3 is cardSentKey in layout 3, whatever the Store writes.
func (s *Store) cardSentKeyV3(id string) string {
	return s.opts.Prefix + "ob:cs:" + id[max(len(id)-2, 0):]
}

// queueCard records, inside a change's MULTI, that g's card must show
// version g.Version. ZADD NX keeps an entry that is held, leased or paced
// where it is: the syncer renders the latest version whenever it runs.
func (s *Store) queueCard(ctx context.Context, p redis.Pipeliner, g *Gate, now time.Time) {
	p.ZAddNX(ctx, s.cardQueueKey(), redis.Z{Score: ms(now), Member: g.ID})
	p.HSet(ctx, s.cardVerKey(), g.ID, g.Version)
}

// ClaimCardSyncs takes up to limit gates whose card is due for an update,
// each under a lease: until FinishCardSync, DeferCardSync or the lease's
// end no other caller gets the same gate. LoadCardSync reads what the sync
// needs. next is when the first update left is due (zero: none), held and
// leased ones included; CardsQueued tells of updates this Store queues
// meanwhile.
func (s *Store) ClaimCardSyncs(ctx context.Context, limit int, lease time.Duration) (_ []CardSync, next time.Time, _ error) {
	now := s.opts.Now()
	res, err := cardClaimScript.Run(ctx, s.rdb,
		[]string{s.cardQueueKey(), s.cardVerKey(), s.cardHoldKey(), s.cardLockKey()},
		now.UnixMilli(), limit, now.Add(lease).UnixMilli()).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, time.Time{}, unavailable("claim card syncs", err)
	}
	pairs, next := claimReply(res)
	out := make([]CardSync, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		v, _ := strconv.ParseInt(pairs[i+1], 10, 64)
		out = append(out, CardSync{GateID: pairs[i], Version: v})
	}
	return out, next, nil
}

// CardState is what a claimed card sync works from.
type CardState struct {
	// Gate is the gate as stored.
	Gate *Gate
	// HeldUntil is when a click's hold on the shared update ends
	// (HoldCard), zero when there is none.
	HeldUntil time.Time
	// LastDigest is the digest of the card last shown ("" when unknown).
	LastDigest string
}

// LoadCardSync reads, in one round trip, the gate whose card sync was
// claimed, then its hold, then the digest of the card shown. The order
// matters: a click that changed the gate after the gate was read holds
// the card until its own answer is written, and a sync that ignored the
// hold would send the click's state before the click's answer, which then
// overwrites it with an older card. The digest changes only when a sync
// finishes, which the claim excludes, or when the card is posted anew,
// which shows it. ErrNotFound when the gate is gone.
func (s *Store) LoadCardSync(ctx context.Context, id string) (CardState, error) {
	s.legacy(ctx) // where the digests are
	p := s.rdb.Pipeline()
	rec := p.Get(ctx, s.gateKey(id))
	hold := p.HGet(ctx, s.cardHoldKey(), id)
	digest := p.HGet(ctx, s.cardSentKey(id), id)
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return CardState{}, unavailable("load card sync", err)
	}
	raw, err := rec.Bytes()
	if errors.Is(err, redis.Nil) {
		return CardState{}, fmt.Errorf("gate %s: %w", id, ErrNotFound)
	}
	g, err := s.decodeFor(ctx, id, raw)
	if err != nil {
		return CardState{}, err
	}
	st := CardState{Gate: g, LastDigest: digest.Val()}
	if v, err := hold.Int64(); err == nil {
		if until := time.UnixMilli(v); until.After(s.opts.Now()) {
			st.HeldUntil = until
		}
	}
	return st, nil
}

// FinishCardSync ends a claimed sync: the card now shows version (digest
// is what was shown, "" when nothing was sent). If the gate changed
// meanwhile it is due again at once; a gate that is final is forgotten
// with its digest, since its card will not change again.
func (s *Store) FinishCardSync(ctx context.Context, id string, version int64, digest string, final bool) error {
	if final {
		digest = "-"
	}
	s.legacy(ctx) // where the digests are
	again, err := cardDoneScript.Run(ctx, s.rdb, []string{s.cardQueueKey(), s.cardVerKey(), s.cardLockKey(), s.cardSentKey(id)},
		id, version, s.opts.Now().UnixMilli(), digest).Int()
	if err != nil && !errors.Is(err, redis.Nil) {
		return unavailable("finish card sync", err)
	}
	if again == 1 {
		wake(s.wake.cards)
	}
	return nil
}

// DeferCardSync gives a claimed sync back, due at at: the conversation is
// paced, throttled or unreachable.
func (s *Store) DeferCardSync(ctx context.Context, id string, at time.Time) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HDel(ctx, s.cardLockKey(), id)
		p.ZAddXX(ctx, s.cardQueueKey(), redis.Z{Score: ms(at), Member: id})
		return nil
	})
	if err != nil {
		return unavailable("defer card sync", err)
	}
	wake(s.wake.cards)
	return nil
}

// HoldCard keeps the shared update of a gate's card back for up to d,
// while the caller writes a card of its own (a click's answer, which
// Teams shows in place of the shared card). Call ReleaseCard once it is
// written; a caller that dies only delays the shared update by d.
func (s *Store) HoldCard(ctx context.Context, id string, d time.Duration) error {
	if err := s.rdb.HSet(ctx, s.cardHoldKey(), id, s.opts.Now().Add(d).UnixMilli()).Err(); err != nil {
		return unavailable("hold card", err)
	}
	return nil
}

// ReleaseCard ends HoldCard: a shared update queued meanwhile is due now.
func (s *Store) ReleaseCard(ctx context.Context, id string) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HDel(ctx, s.cardHoldKey(), id)
		p.ZAddXX(ctx, s.cardQueueKey(), redis.Z{Score: ms(s.opts.Now()), Member: id})
		return nil
	})
	if err != nil {
		return unavailable("release card", err)
	}
	wake(s.wake.cards)
	return nil
}

// CallbackEvent is one queued delivery of a gate's state change to its API
// caller's callback_url. Gate is the gate as it was at Version, so every
// attempt sends the same state whenever it is made.
type CallbackEvent struct {
	ID        string    `json:"id"`
	GateID    string    `json:"gate"`
	Version   int64     `json:"ver"`
	URL       string    `json:"url"`
	Gate      *Gate     `json:"snap"`
	Attempts  int       `json:"att"`
	First     time.Time `json:"first"`
	LastError string    `json:"lerr,omitempty"`
}

// Callback event lifetimes.
const (
	callbackEventTTL = 3 * 24 * time.Hour
)

func (s *Store) cbDueKey() string            { return s.opts.Prefix + "cb:due" }
func (s *Store) cbEventKey(id string) string { return s.opts.Prefix + "cb:ev:" + id }
func (s *Store) cbDeadKey() string           { return s.opts.Prefix + "cb:dead" }

// callbackEventID is the webhook-id: stable for one gate version.
func callbackEventID(g *Gate) string {
	return "evt_" + g.ID + "_v" + strconv.FormatInt(g.Version, 10)
}

// queueCallback records, inside a change's MULTI, the callback for a state
// change of a gate that has a callback URL. Pending, the state a gate is
// created in, is never sent: the caller got it in the create response.
func (s *Store) queueCallback(ctx context.Context, p redis.Pipeliner, g *Gate, now time.Time) error {
	ev := CallbackEvent{ID: callbackEventID(g), GateID: g.ID, Version: g.Version, URL: g.CallbackURL, Gate: g, First: now}
	raw, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode callback event: %w", err)
	}
	p.Set(ctx, s.cbEventKey(ev.ID), raw, callbackEventTTL)
	p.ZAdd(ctx, s.cbDueKey(), redis.Z{Score: ms(now), Member: ev.ID})
	return nil
}

// ClaimCallbacks takes up to limit due callback events, each for lease.
// Events whose record is gone (given up, expired) leave the queue.
func (s *Store) ClaimCallbacks(ctx context.Context, limit int, lease time.Duration) ([]CallbackEvent, error) {
	ids, _, err := s.claim(ctx, s.cbDueKey(), limit, lease)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	p := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = p.Get(ctx, s.cbEventKey(id))
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable("claim callbacks", err)
	}
	var out []CallbackEvent
	for i, c := range cmds {
		raw, err := c.Bytes()
		if errors.Is(err, redis.Nil) {
			s.rdb.ZRem(ctx, s.cbDueKey(), ids[i])
			continue
		}
		var ev CallbackEvent
		if err := json.Unmarshal(raw, &ev); err != nil || ev.Gate == nil {
			s.log.ErrorContext(ctx, "dropping unreadable callback event", "event_id", ids[i], "err", err)
			s.GiveUpCallback(ctx, ids[i])
			continue
		}
		out = append(out, ev)
	}
	return out, nil
}

// CallbackDelivered removes a delivered event.
func (s *Store) CallbackDelivered(ctx context.Context, id string) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.cbEventKey(id))
		p.ZRem(ctx, s.cbDueKey(), id)
		return nil
	})
	if err != nil {
		return unavailable("callback delivered", err)
	}
	return nil
}

// RetryCallback stores ev (its Attempts and LastError updated by the
// caller) and makes it due again at at. An event another replica has
// delivered or given up meanwhile (this caller's lease ran out) stays
// finished: both writes are XX, so neither its record (which would lose
// its expiry) nor its queue entry comes back.
func (s *Store) RetryCallback(ctx context.Context, ev CallbackEvent, at time.Time) error {
	raw, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode callback event: %w", err)
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SetArgs(ctx, s.cbEventKey(ev.ID), raw, redis.SetArgs{Mode: "XX", KeepTTL: true})
		p.ZAddXX(ctx, s.cbDueKey(), redis.Z{Score: ms(at), Member: ev.ID})
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) { // Nil: the record is gone
		return unavailable("retry callback", err)
	}
	return nil
}

// GiveUpCallback moves an event to the dead letters, which keep an event's
// id only as long as the event itself lives.
func (s *Store) GiveUpCallback(ctx context.Context, id string) error {
	now := s.opts.Now()
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, s.cbDueKey(), id)
		p.ZAdd(ctx, s.cbDeadKey(), redis.Z{Score: ms(now), Member: id})
		p.ZRemRangeByScore(ctx, s.cbDeadKey(), "-inf", "("+strconv.FormatInt(now.Add(-callbackEventTTL).UnixMilli(), 10))
		return nil
	})
	if err != nil {
		return unavailable("give up callback", err)
	}
	return nil
}

// OutboxStats is the depth and the age of the oldest due entry of each
// kind of queued work, for metrics.
type OutboxStats struct {
	Kind   string
	Depth  int64
	Oldest time.Duration
}

// Outbox reports the card and callback queues' depth and the age of their
// oldest due entry (0 when nothing is overdue).
func (s *Store) Outbox(ctx context.Context) ([]OutboxStats, error) {
	now := s.opts.Now()
	p := s.rdb.Pipeline()
	kinds := []struct {
		kind, key string
	}{{"card", s.cardQueueKey()}, {"callback", s.cbDueKey()}, {"poll", s.pollKey()}, {"expiry", s.dueKey()}}
	cards := make([]*redis.IntCmd, len(kinds))
	firsts := make([]*redis.ZSliceCmd, len(kinds))
	for i, k := range kinds {
		cards[i] = p.ZCard(ctx, k.key)
		firsts[i] = p.ZRangeWithScores(ctx, k.key, 0, 0)
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable("outbox stats", err)
	}
	out := make([]OutboxStats, len(kinds))
	for i, k := range kinds {
		out[i] = OutboxStats{Kind: k.kind, Depth: cards[i].Val()}
		if z := firsts[i].Val(); len(z) > 0 {
			if at := time.UnixMilli(int64(z[0].Score)); at.Before(now) {
				out[i].Oldest = now.Sub(at)
			}
		}
	}
	return out, nil
}
