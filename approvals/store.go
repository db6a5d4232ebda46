package approvals

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/redis/go-redis/v9"
)

// Options configure a Store. The zero value is usable: every field has a
// default.
type Options struct {
	// Prefix starts every key, default "gatebot:". Redis Cluster needs a
	// hash-tagged prefix such as "{gatebot}:" because transactions span keys.
	Prefix string
	// Retention is how long ended gates are kept, default 30 days.
	Retention time.Duration
	// AuditMaxLen caps the audit stream approximately (XADD MAXLEN ~),
	// default 100000 entries.
	AuditMaxLen int64
	// AuditMaxAge, when set, also trims audit entries older than this.
	AuditMaxAge time.Duration
	// TriggerVisibility is how long a claimed trigger may stay unacknowledged
	// before another consumer reclaims it, default 1 minute. It must exceed
	// the longest provider call.
	TriggerVisibility time.Duration
	// UnpostedAfter is when a pending gate whose card is not up counts as
	// unposted, default DefaultUnpostedAfter.
	UnpostedAfter time.Duration
	// Now is the clock, default time.Now.
	Now func() time.Time
	// Logger receives refused votes and recoverable oddities; nil discards.
	Logger *slog.Logger
	// OnTransition, when set, is told of every state change once it is
	// stored (for metrics); it must not block.
	OnTransition func(pipeline string, from, to State)
}

// Defaults applied by NewStore.
const (
	DefaultPrefix            = "gatebot:"
	DefaultRetention         = 30 * 24 * time.Hour
	DefaultAuditMaxLen       = 100000
	DefaultTriggerVisibility = time.Minute

	triggerGroup = "triggers"
	// scheduleLease is how far a claimed expiry or poll is pushed forward so
	// other replicas skip it while this one works on it; a replica dying
	// mid-way only delays the gate by this much.
	scheduleLease = 30 * time.Second
	// pruneBatch bounds the ended gates one ExpireDue call takes off the
	// list indexes.
	pruneBatch = 100
	// maxTxTries bounds optimistic retries on a contended gate.
	maxTxTries = 64
)

// Store keeps gates and their queues in Redis. It is safe for concurrent
// use by many goroutines and many replicas sharing one Redis.
type Store struct {
	rdb   redis.UniversalClient
	opts  Options
	log   *slog.Logger
	dicts learnedDicts
	mode  layoutMode

	recent recentRecords
	locks  gateLocks
	wake   wakeups
	// checkRecent makes remember verify that a remembered gate equals its
	// record decoded (tests).
	checkRecent bool

	mu            sync.Mutex
	reclaimCursor map[string]string    // per pipeline: XAUTOCLAIM position in the pending list
	reclaimedAt   map[string]time.Time // per pipeline: last XAUTOCLAIM
}

// NewStore returns a Store on rdb. It does not talk to Redis: trigger
// consumers call PrepareTriggers, and everything else works on first use.
func NewStore(rdb redis.UniversalClient, opts Options) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("approvals: nil redis client")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.AuditMaxLen <= 0 {
		opts.AuditMaxLen = DefaultAuditMaxLen
	}
	if opts.AuditMaxAge < 0 {
		return nil, errors.New("approvals: negative AuditMaxAge")
	}
	if opts.TriggerVisibility <= 0 {
		opts.TriggerVisibility = DefaultTriggerVisibility
	}
	if opts.UnpostedAfter <= 0 {
		opts.UnpostedAfter = DefaultUnpostedAfter
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{rdb: rdb, opts: opts, log: log, wake: newWakeups(), reclaimCursor: map[string]string{}, reclaimedAt: map[string]time.Time{}}, nil
}

// now is the store clock at millisecond precision, in UTC, which keeps the
// JSON timestamps short.
func (s *Store) now() time.Time { return s.opts.Now().UTC().Truncate(time.Millisecond) }

// Key names; see the package doc for the layout.
func (s *Store) gateKey(id string) string   { return s.opts.Prefix + "g:" + id }
func (s *Store) idemKey(k string) string    { return s.opts.Prefix + "idem:" + k }
func (s *Store) dueKey() string             { return s.opts.Prefix + "due" }
func (s *Store) pollKey() string            { return s.opts.Prefix + "poll" }
func (s *Store) endedKey() string           { return s.opts.Prefix + "ended" }
func (s *Store) triggerKey(p string) string { return s.opts.Prefix + "t:" + p }
func (s *Store) auditKey() string           { return s.opts.Prefix + "audit" }
func (s *Store) seenKey(k string) string    { return s.opts.Prefix + "seen:" + k }
func (s *Store) convKey(k string) string    { return s.opts.Prefix + "conv:" + k }
func (s *Store) unpostedKey() string        { return s.opts.Prefix + "unposted" }
func (s *Store) remindKey() string          { return s.opts.Prefix + "remind" }
func (s *Store) postingKey(id string) string {
	return s.opts.Prefix + "posting:" + id
}

// unavailable marks a Redis failure so that callers can answer "try again"
// (errors.Is(err, ErrUnavailable)) while the cause stays in the chain.
func unavailable(op string, err error) error {
	return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return unavailable("ping", err)
	}
	return nil
}

// Get returns the gate with this id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*Gate, error) {
	raw, err := s.rdb.Get(ctx, s.gateKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("gate %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, unavailable("get gate", err)
	}
	return s.decodeFor(ctx, id, raw)
}

// newGateID returns "g_" and 20 lowercase base32 characters (100 random bits).
func newGateID() string {
	var b [13]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	enc := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
	return "g_" + strings.ToLower(enc[:20])
}

// fingerprint identifies a create request for idempotency: the same key
// must come with the same pipeline, inputs, message and requester (by
// identity; a changed display name does not make it another request).
func fingerprint(g *Gate) string {
	r := g.Requester
	r.Name = ""
	b, _ := json.Marshal(struct {
		P string         `json:"p"`
		I map[string]any `json:"i"`
		M string         `json:"m"`
		R Person         `json:"r"`
	}{g.Pipeline, g.Inputs, g.Message, r})
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:18])
}

func ms(t time.Time) float64 { return float64(t.UnixMilli()) }

// Create stores a new pending gate. It assigns the ID when empty, sets
// CreatedAt, UpdatedAt, Deadline (CreatedAt + Policy.Timeout, none when 0),
// State and Version, schedules expiry, indexes the gate and audits
// "opened". With an idempotency key, a repeat of the same request returns
// the gate created first (created false) and a different request under the
// same key fails with ErrIdempotencyKey. The caller's g is not modified.
func (s *Store) Create(ctx context.Context, g *Gate, idempotencyKey string) (*Gate, bool, error) {
	if g == nil || g.Pipeline == "" {
		return nil, false, errors.New("create gate: pipeline required")
	}
	ng := *g
	if ng.ID == "" {
		ng.ID = newGateID()
	}
	fp := ""
	keys := []string{s.gateKey(ng.ID)}
	if idempotencyKey != "" {
		fp = fingerprint(&ng)
		keys = append(keys, s.idemKey(idempotencyKey))
	}
	var (
		out     *Gate
		created bool
		rec     []byte
	)
	legacy := s.legacy(ctx)
	err := s.retryTx(ctx, "create gate", func(tx *redis.Tx) error {
		if idempotencyKey != "" {
			prev, err := tx.Get(ctx, s.idemKey(idempotencyKey)).Result()
			switch {
			case errors.Is(err, redis.Nil):
			case err != nil:
				return unavailable("create gate", err)
			default:
				pfp, pid, _ := strings.Cut(prev, " ")
				if pfp != fp {
					return backoff.Permanent(ErrIdempotencyKey)
				}
				existing, err := s.Get(ctx, pid)
				if err == nil {
					out, created = existing, false
					return nil
				}
				if !errors.Is(err, ErrNotFound) {
					return err
				}
				// The gate it named is gone (retention over): start afresh.
			}
		}
		n, err := tx.Exists(ctx, s.gateKey(ng.ID)).Result()
		if err != nil {
			return unavailable("create gate", err)
		}
		if n > 0 {
			return backoff.Permanent(fmt.Errorf("gate %s already exists: %w", ng.ID, ErrConflict))
		}
		now := s.now()
		ng.State = StatePending
		ng.CreatedAt, ng.UpdatedAt = now, now
		ng.Deadline = time.Time{}
		if ng.Policy.Timeout > 0 {
			ng.Deadline = now.Add(ng.Policy.Timeout)
		}
		ng.Version = 1
		ng.IdempotencyKey = idempotencyKey
		raw, err := s.encodeGate(ctx, &ng)
		if err != nil {
			return backoff.Permanent(err)
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, s.gateKey(ng.ID), raw, 0)
			if idempotencyKey != "" {
				// Without a timeout the gate may stay pending for ever, and
				// so must its key; update shortens it to Retention at the end.
				var ttl time.Duration
				if ng.Policy.Timeout > 0 {
					ttl = ng.Policy.Timeout + s.opts.Retention
				}
				p.Set(ctx, s.idemKey(idempotencyKey), fp+" "+ng.ID, ttl)
			}
			if !ng.Deadline.IsZero() {
				// A gate to be reminded waits on the reminder schedule only,
				// and moves to the expiry schedule once reminded
				// (AckReminder): one schedule member at a time. Layout-2
				// replicas ack a reminder without that move, so for them it
				// is on both.
				r := ng.Policy.RemindBefore
				remind := r > 0 && r < ng.Policy.Timeout
				if !remind || legacy {
					p.ZAdd(ctx, s.dueKey(), redis.Z{Score: ms(ng.Deadline), Member: ng.ID})
				}
				if remind {
					p.ZAdd(ctx, s.remindKey(), redis.Z{Score: ms(ng.Deadline.Add(-r)), Member: ng.ID})
				}
			}
			s.indexAdd(ctx, p, &ng, ng.State, legacy)
			s.scheduleUnposted(ctx, p, &ng)
			s.audit(ctx, p, &ng, auditNote{event: "opened", actor: &ng.Requester, to: StatePending, where: ng.Origin})
			return nil
		})
		if err != nil {
			return err
		}
		out, created, rec = &ng, true, raw
		return nil
	}, keys...)
	if err != nil {
		return nil, false, err
	}
	if created {
		// Remember what a reader decodes, not ng: callers' inputs may hold
		// types JSON does not give back. A record that does not decode is
		// just not remembered; the next read reports it.
		_, _ = s.sharedFor(ctx, out.ID, rec)
	}
	if created && s.opts.OnTransition != nil {
		s.opts.OnTransition(out.Pipeline, "", StatePending)
	}
	return out, created, nil
}

// retryTx runs fn under WATCH keys and retries it when a watched key
// changed before EXEC. fn returns backoff.Permanent for errors that must
// not be retried; Redis errors come back wrapped with ErrUnavailable, a
// stored record that does not decode as a permanent error.
func (s *Store) retryTx(ctx context.Context, op string, fn func(tx *redis.Tx) error, keys ...string) error {
	b := txBackOff()
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := s.rdb.Watch(ctx, fn, keys...)
		switch {
		case err == nil:
			return struct{}{}, nil
		case errors.Is(err, redis.TxFailedErr):
			return struct{}{}, err // retried
		case errors.Is(err, ErrUnavailable), errors.Is(err, errCorrupt):
			return struct{}{}, backoff.Permanent(err)
		}
		var perm *backoff.PermanentError
		if errors.As(err, &perm) {
			return struct{}{}, err
		}
		return struct{}{}, backoff.Permanent(unavailable(op, err))
	}, backoff.WithBackOff(b), backoff.WithMaxTries(maxTxTries), backoff.WithMaxElapsedTime(0))
	if errors.Is(err, redis.TxFailedErr) {
		return fmt.Errorf("%s: %w", op, ErrConflict)
	}
	if err != nil && ctx.Err() != nil && !errors.Is(err, ErrUnavailable) {
		return unavailable(op, err)
	}
	return err
}

// auditNote describes one audit entry a change produces, or (event "")
// another consequence the change's MULTI must write.
type auditNote struct {
	event    string
	actor    *Person
	where    string
	reason   string
	from, to State
	// pollAt, when set on a running gate, is its next run-status poll.
	pollAt time.Time
	// cardDigest, when set, is the digest of the card just posted.
	cardDigest string
	// holdCard, when set on a gate with a card, holds its shared update
	// until then (see HoldCard), in the change's own script.
	holdCard time.Time
}

// change is the mutation a caller makes to a gate inside a transaction; it
// returns audit notes for what it did beyond a plain state change. An error
// aborts the transaction and is returned unretried.
type change func(g *Gate, now time.Time) ([]auditNote, error)

// update applies fn to the gate atomically and writes the consequences of a
// state change in the same script: index moves, leaving the expiry
// schedule, the TTL and schedule removal of a final gate, the trigger of an
// approved gate, the poll schedule of a running one and audit entries. On
// an error from fn it returns the gate as stored together with the error.
//
// The change is computed from the record this Store saw last (recent), or
// read, and written by compareAndSet: one round trip when no one else
// wrote the gate meanwhile, and when someone did, fn runs again on what
// they wrote. Changes of one gate through this Store run one at a time
// (gateLocks), so a replica never races itself.
func (s *Store) update(ctx context.Context, op, id string, fn change) (*Gate, error) {
	unlock, err := s.locks.lock(ctx, id)
	if err != nil {
		return nil, unavailable(op, err)
	}
	defer unlock()
	legacy := s.legacy(ctx)
	key := s.gateKey(id)
	rec, base, known := s.recent.known(id)
	fresh := false // rec was read by this call, not remembered
	b := txBackOff()
	for try := 1; ; try++ {
		if !known {
			raw, err := s.rdb.Get(ctx, key).Bytes()
			if errors.Is(err, redis.Nil) {
				return nil, fmt.Errorf("gate %s: %w", id, ErrNotFound)
			}
			if err != nil {
				return nil, unavailable(op, err)
			}
			if base, err = s.sharedFor(ctx, id, raw); err != nil {
				return nil, err
			}
			rec, known, fresh = string(raw), true, true
		}
		g := base.clone()
		now := s.now()
		old, wasPosted := g.State, !g.Post.PostedAt.IsZero()
		notes, err := fn(g, now)
		if err != nil {
			if !fresh { // refuse only on the record as stored
				known = false
				continue
			}
			return base.clone(), err
		}
		enc, err := s.prepareChange(ctx, g, now)
		if err != nil {
			return nil, err
		}
		p := s.rdb.Pipeline()
		if err := s.queueChange(ctx, p, g, old, wasPosted, enc, now, notes, legacy); err != nil {
			return nil, err
		}
		err = s.compareAndSet(ctx, key, rec, p)
		var stale *errStale
		switch {
		case err == nil:
			s.remember(ctx, id, enc, g)
			s.wakeFor(g, notes)
			if s.opts.OnTransition != nil && old != g.State {
				s.opts.OnTransition(g.Pipeline, old, g.State)
			}
			return g, nil
		case errors.Is(err, errNotCAS):
			return nil, fmt.Errorf("%s: %w", op, err)
		case !errors.As(err, &stale):
			s.recent.forget(id)
			return nil, unavailable(op, err)
		case stale.current == nil:
			s.recent.forget(id)
			return nil, fmt.Errorf("gate %s: %w", id, ErrNotFound)
		case try >= maxTxTries:
			return nil, fmt.Errorf("%s: %w", op, ErrConflict)
		}
		if base, err = s.sharedFor(ctx, id, stale.current); err != nil {
			return nil, err
		}
		// A remembered record gone stale (another replica wrote) is
		// retried at once; a race lost on a record just read backs off.
		if fresh {
			if err := sleepCtx(ctx, b.NextBackOff()); err != nil {
				return nil, unavailable(op, err)
			}
		}
		rec, fresh = string(stale.current), true
	}
}

// updateWith applies fn to the gate atomically, retrying on concurrent changes
// (fn may run more than once and must only mutate g). fn usually calls
// g.Transition. If fn returns an error nothing is written and the stored
// gate is returned with that error. A state change the transition table
// does not allow, or pending → approved (only Decide may approve, by
// quorum), is refused the same way with a *TransitionError. Version is incremented; a state change
// is audited (actor: g.DecidedBy and reason: g.Reason when fn changed them),
// a final state gets the retention TTL and leaves the schedules, and
// becoming Approved again (a retry from trigger_failed) enqueues a trigger,
// all in the same transaction.
func (s *Store) updateWith(ctx context.Context, id string, fn func(g *Gate) error) (*Gate, error) {
	return s.update(ctx, "update gate", id, func(g *Gate, now time.Time) ([]auditNote, error) {
		old, oldBy, oldReason := g.State, g.DecidedBy, g.Reason
		var oldByV Person
		if oldBy != nil {
			oldByV = *oldBy
		}
		if err := fn(g); err != nil {
			return nil, err
		}
		if g.State == old {
			return nil, nil
		}
		// fn may set g.State directly: hold it to the transition table,
		// and leave approving a pending gate to Decide, which counts the
		// quorum.
		if !CanTransition(old, g.State) || (old == StatePending && g.State == StateApproved) {
			return nil, &TransitionError{From: old, To: g.State}
		}
		n := auditNote{event: string(g.State), from: old, to: g.State}
		if g.DecidedBy != nil && (oldBy == nil || *g.DecidedBy != oldByV) {
			n.actor = g.DecidedBy
		}
		if g.Reason != oldReason {
			n.reason = g.Reason
		}
		return []auditNote{n}, nil
	})
}

// Decide records p's vote atomically (see Gate.Decide for the rules). At
// OutcomeApproved the trigger is enqueued in the same transaction, so a
// gate is enqueued once however many approvers click at the same time. A
// refused vote (ErrAlreadyVoted, ErrNotPending, ErrExpired,
// ErrSelfApproval, ErrNotEligible) returns the stored gate with the error
// so the caller can re-render it; it is logged, not audited. where is the
// conversation the vote came from, for the audit log.
func (s *Store) Decide(ctx context.Context, id string, p Person, approve bool, reason, where string) (*Gate, Outcome, error) {
	return s.decide(ctx, id, p, approve, reason, where, 0)
}

// DecideHeld is Decide for a click whose answer is the gate's card: a vote
// that changes a posted gate also holds the shared update of its card for
// up to hold (see HoldCard), in the vote's own script, so the shared card
// cannot land before the clicker's answer, and a refused vote holds
// nothing. Call ReleaseCard once the answer is written.
func (s *Store) DecideHeld(ctx context.Context, id string, p Person, approve bool, reason, where string, hold time.Duration) (*Gate, Outcome, error) {
	if hold <= 0 {
		return nil, "", fmt.Errorf("decide gate %s: hold %v is not positive", id, hold)
	}
	return s.decide(ctx, id, p, approve, reason, where, hold)
}

func (s *Store) decide(ctx context.Context, id string, p Person, approve bool, reason, where string, hold time.Duration) (*Gate, Outcome, error) {
	var outcome Outcome
	g, err := s.update(ctx, "decide gate", id, func(g *Gate, now time.Time) ([]auditNote, error) {
		old := g.State
		o, err := g.Decide(p, approve, reason, now)
		if err != nil {
			return nil, err
		}
		outcome = o
		n := auditNote{event: "approve", actor: &p, where: where, reason: reason}
		if !approve {
			n.event = "reject"
		}
		if g.State != old {
			n.from, n.to = old, g.State
		}
		if hold > 0 {
			n.holdCard = now.Add(hold)
		}
		return []auditNote{n}, nil
	})
	if err != nil {
		if g != nil {
			s.log.InfoContext(ctx, "vote refused", "gate", id, "user", p.Display(), "approve", approve, "err", err)
		}
		return g, "", err
	}
	return g, outcome, nil
}

// parseMs reads a millisecond timestamp such as a stream id's first part.
func parseMs(s string) (time.Time, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(n).UTC(), true
}
