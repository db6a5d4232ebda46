package approvals

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatebot/gatebot/pipelines"
)

// Trigger is one queued request to start an approved gate's run.
// Deliveries counts how often it was handed to a consumer; above 1 it was
// reclaimed from a consumer that did not acknowledge it in time.
type Trigger struct {
	MessageID, GateID, Pipeline string
	Deliveries                  int64
}

// Each pipeline has its own trigger stream, so that a consumer takes work
// only for the pipelines it can serve now: one whose provider hangs (all
// its slots busy) or that this replica does not know (a rolling upgrade)
// leaves its triggers queued without holding up anyone else's.

func (s *Store) ensureGroup(ctx context.Context, pipeline string) error {
	err := s.rdb.XGroupCreateMkStream(ctx, s.triggerKey(pipeline), triggerGroup, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return unavailable("create trigger group", err)
	}
	return nil
}

func isNoGroup(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOGROUP")
}

// PrepareTriggers creates the trigger streams and consumer groups of
// these pipelines, and moves triggers left in the single stream of
// earlier gatebot versions (P triggers) to their pipeline's stream.
// Consumers call it once at start; ClaimTriggers also creates a missing
// group on first use.
func (s *Store) PrepareTriggers(ctx context.Context, pipelines []string) error {
	var errs []error
	for _, p := range pipelines {
		if err := s.ensureGroup(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.migrateLegacyTriggers(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// migrateLegacyTriggers re-queues every entry of the pre-0.2 single trigger
// stream on its gate's pipeline stream. An entry a live old replica is
// still working on is harmless to repeat: BeginTrigger's lease and the
// redelivery rules hold for the copy as for the original.
func (s *Store) migrateLegacyTriggers(ctx context.Context) error {
	legacy := s.opts.Prefix + "triggers"
	for {
		msgs, err := s.rdb.XRangeN(ctx, legacy, "-", "+", 100).Result()
		if err != nil {
			return unavailable("migrate triggers", err)
		}
		if len(msgs) == 0 {
			return nil
		}
		for _, m := range msgs {
			id, _ := m.Values["gate"].(string)
			g, err := s.Get(ctx, id)
			switch {
			case errors.Is(err, ErrNotFound), err == nil && g.State != StateApproved && g.State != StateTriggering:
			case err != nil:
				return err
			default:
				if err := s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.triggerKey(g.Pipeline), Values: []string{"gate", id}}).Err(); err != nil {
					return unavailable("migrate triggers", err)
				}
				s.log.InfoContext(ctx, "moved a trigger to its pipeline's stream", "gate", id, "pipeline", g.Pipeline)
			}
			if err := s.rdb.XDel(ctx, legacy, m.ID).Err(); err != nil {
				return unavailable("migrate triggers", err)
			}
		}
	}
}

// ClaimTriggers hands consumer up to want[p] triggers of each pipeline p:
// first those another consumer left unacknowledged for longer than
// TriggerVisibility (XAUTOCLAIM), then new ones (XREADGROUP). When there
// is nothing at all it waits up to block for a new one (block ≤ 0: no
// wait) and returns no triggers and no error if none came. Process each
// with BeginTrigger and FinishTrigger, then AckTrigger.
func (s *Store) ClaimTriggers(ctx context.Context, consumer string, want map[string]int, block time.Duration) ([]Trigger, error) {
	lanes := make([]string, 0, len(want))
	for p, n := range want {
		if n > 0 {
			lanes = append(lanes, p)
		}
	}
	if len(lanes) == 0 {
		return nil, nil
	}
	slices.Sort(lanes)
	out, err := s.claimTriggers(ctx, consumer, lanes, want, block)
	if isNoGroup(err) {
		// A stream was deleted (or never made): recreate and retry once.
		for _, p := range lanes {
			if err := s.ensureGroup(ctx, p); err != nil {
				return nil, err
			}
		}
		out, err = s.claimTriggers(ctx, consumer, lanes, want, block)
	}
	if err != nil {
		return nil, unavailable("claim triggers", err)
	}
	return out, nil
}

func (s *Store) claimTriggers(ctx context.Context, consumer string, lanes []string, want map[string]int, block time.Duration) ([]Trigger, error) {
	out, err := s.reclaimTriggers(ctx, consumer, lanes, want)
	if err != nil {
		return nil, err
	}
	got := map[string]int{}
	for _, t := range out {
		got[t.Pipeline]++
	}
	// New entries, each lane with its own count, in one round trip.
	p := s.rdb.Pipeline()
	cmds := map[string]*redis.XStreamSliceCmd{}
	for _, l := range lanes {
		if n := want[l] - got[l]; n > 0 {
			cmds[l] = p.XReadGroup(ctx, &redis.XReadGroupArgs{
				Group: triggerGroup, Consumer: consumer, Streams: []string{s.triggerKey(l), ">"},
				Count: int64(n), Block: -1,
			})
		}
	}
	if len(cmds) > 0 {
		if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, err
		}
		for _, l := range lanes {
			if c := cmds[l]; c != nil {
				out = append(out, s.newTriggers(ctx, l, c.Val())...)
			}
		}
	}
	if len(out) > 0 || block <= 0 || len(cmds) == 0 {
		return out, nil
	}
	// Nothing anywhere: wait for the first new entry on any lane.
	streams := make([]string, 0, 2*len(cmds))
	var names []string
	for _, l := range lanes {
		if cmds[l] != nil {
			streams = append(streams, s.triggerKey(l))
			names = append(names, l)
		}
	}
	for range names {
		streams = append(streams, ">")
	}
	res, err := s.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: triggerGroup, Consumer: consumer, Streams: streams, Count: 1, Block: block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	for _, st := range res {
		out = append(out, s.newTriggers(ctx, strings.TrimPrefix(st.Stream, s.opts.Prefix+"t:"), []redis.XStream{st})...)
	}
	return out, nil
}

func (s *Store) newTriggers(ctx context.Context, pipeline string, streams []redis.XStream) []Trigger {
	var out []Trigger
	for _, st := range streams {
		for _, m := range st.Messages {
			t := s.trigger(ctx, pipeline, m)
			t.Deliveries = 1
			if t.GateID != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

// reclaimTriggers takes over entries idle past the visibility timeout.
// XAUTOCLAIM scans a bounded part of the pending list per call; the cursor
// of each lane carries on where the last call stopped, so a long list of
// young entries cannot hide an old one.
func (s *Store) reclaimTriggers(ctx context.Context, consumer string, lanes []string, want map[string]int) ([]Trigger, error) {
	p := s.rdb.Pipeline()
	cmds := make([]*redis.XAutoClaimCmd, len(lanes))
	now := time.Now()
	s.mu.Lock()
	for i, l := range lanes {
		// Entries become reclaimable only after TriggerVisibility: looking
		// a few times per visibility period is enough, and keeps the
		// claim loop's round trips down.
		if last, ok := s.reclaimedAt[l]; ok && now.Sub(last) < s.opts.TriggerVisibility/8 {
			continue
		}
		s.reclaimedAt[l] = now
		cursor := s.reclaimCursor[l]
		if cursor == "" {
			cursor = "0-0"
		}
		cmds[i] = p.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: s.triggerKey(l), Group: triggerGroup, Consumer: consumer,
			MinIdle: s.opts.TriggerVisibility, Start: cursor, Count: int64(want[l]),
		})
	}
	s.mu.Unlock()
	if p.Len() == 0 {
		return nil, nil
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	var out []Trigger
	for i, l := range lanes {
		if cmds[i] == nil {
			continue
		}
		msgs, next, err := cmds[i].Result()
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.reclaimCursor[l] = next
		s.mu.Unlock()
		if len(msgs) == 0 {
			continue
		}
		deliveries := map[string]int64{}
		pend, err := s.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: s.triggerKey(l), Group: triggerGroup, Consumer: consumer,
			Start: msgs[0].ID, End: msgs[len(msgs)-1].ID, Count: int64(len(msgs)) * 4,
		}).Result()
		if err != nil {
			return nil, err
		}
		for _, p := range pend {
			deliveries[p.ID] = p.RetryCount
		}
		for _, m := range msgs {
			t := s.trigger(ctx, l, m)
			t.Deliveries = max(deliveries[m.ID], 2)
			if t.GateID != "" {
				out = append(out, t)
			}
		}
		s.log.InfoContext(ctx, "reclaimed triggers", "consumer", consumer, "pipeline", l, "count", len(msgs))
	}
	return out, nil
}

// trigger reads a stream entry; a malformed one is acknowledged and
// dropped (GateID empty) since no consumer could ever process it.
func (s *Store) trigger(ctx context.Context, pipeline string, m redis.XMessage) Trigger {
	id, _ := m.Values["gate"].(string)
	t := Trigger{MessageID: m.ID, GateID: id, Pipeline: pipeline}
	if id == "" {
		s.log.WarnContext(ctx, "dropping malformed trigger", "message", m.ID)
		_ = s.AckTrigger(ctx, t)
	}
	return t
}

// AckTrigger acknowledges and deletes a processed trigger.
func (s *Store) AckTrigger(ctx context.Context, t Trigger) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAck(ctx, s.triggerKey(t.Pipeline), triggerGroup, t.MessageID)
		p.XDel(ctx, s.triggerKey(t.Pipeline), t.MessageID)
		return nil
	})
	if err != nil {
		return unavailable("ack trigger", err)
	}
	return nil
}

// ReleaseTrigger hands a claimed trigger that was never begun back to its
// queue as a new entry, in one transaction with acknowledging the claimed
// one: any consumer reads it at once, rather than reclaiming it after
// TriggerVisibility. For a replica shutting down with triggers still
// waiting for a provider slot. (The gate is still approved, so whoever
// takes it begins the grant's first attempt.)
func (s *Store) ReleaseTrigger(ctx context.Context, t Trigger) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAdd(ctx, &redis.XAddArgs{Stream: s.triggerKey(t.Pipeline), Values: []string{"gate", t.GateID}})
		p.XAck(ctx, s.triggerKey(t.Pipeline), triggerGroup, t.MessageID)
		p.XDel(ctx, s.triggerKey(t.Pipeline), t.MessageID)
		return nil
	})
	if err != nil {
		return unavailable("release trigger", err)
	}
	return nil
}

// BeginTrigger marks the gate as being triggered and reports whether the
// caller should call the provider now:
//   - approved → triggering, Attempts+1, with a lease of TriggerVisibility
//     (TriggerLease): call.
//   - triggering under a live lease (another consumer is calling the
//     provider; its trigger was reclaimed because it is slow): the gate
//     and ErrTriggerBusy, no call. Do not acknowledge the trigger: it is
//     handed out again after the visibility timeout.
//   - triggering with the lease run out (its consumer died, possibly after
//     the provider call): a new lease, Attempts+1, call. Calling again is
//     right because the provider call carries the gate id as its
//     idempotency key.
//   - any other state (running, final, trigger_failed): no call, no error;
//     the trigger is stale and only needs acknowledging.
//
// BeginTriggerAttempt says which of the first and third it was.
func (s *Store) BeginTrigger(ctx context.Context, id string) (*Gate, bool, error) {
	g, a, err := s.BeginTriggerAttempt(ctx, id)
	return g, a != AttemptNone, err
}

// Attempt is what BeginTriggerAttempt began.
type Attempt int

// Attempts.
const (
	// AttemptNone: no call (the gate is past triggering, or an error).
	AttemptNone Attempt = iota
	// AttemptFirst: the gate went approved → triggering, so no provider
	// call has been made for this grant yet, however often its trigger
	// was delivered (a consumer may have died after claiming it, before
	// beginning it).
	AttemptFirst
	// AttemptResumed: the gate was triggering and its lease had run out:
	// the consumer that began it died and may have called the provider.
	AttemptResumed
)

// BeginTriggerAttempt is BeginTrigger, and says whether the attempt is
// the grant's first or takes over one that may have called the provider:
// only the provider can tell the latter apart from a second run, so only
// then is the stream's delivery count no guide.
func (s *Store) BeginTriggerAttempt(ctx context.Context, id string) (*Gate, Attempt, error) {
	attempt := AttemptNone
	g, err := s.update(ctx, "begin trigger", id, func(g *Gate, now time.Time) ([]auditNote, error) {
		switch g.State {
		case StateApproved:
			if err := g.Transition(StateTriggering, now); err != nil {
				return nil, err
			}
			attempt = AttemptFirst
		case StateTriggering:
			if now.Before(g.TriggerLease) {
				return nil, ErrTriggerBusy
			}
			g.UpdatedAt = now
			attempt = AttemptResumed
		default:
			return nil, errSkip
		}
		g.TriggerLease = now.Add(s.opts.TriggerVisibility)
		g.Attempts++
		return nil, nil
	})
	switch {
	case errors.Is(err, errSkip):
		return g, AttemptNone, nil
	case err != nil:
		return g, AttemptNone, err
	}
	return g, attempt, nil
}

// FinishTrigger records the provider call's result on a triggering gate
// and ends its lease: with runErr nil the gate becomes running with run,
// its first status poll at pollAt (zero: at once), or goes straight to
// succeeded or failed when the run already ended; otherwise it becomes
// trigger_failed with userSafeMsg as its Error (runErr itself is logged,
// never stored, because it may carry provider details).
//
// When the gate is no longer triggering (another consumer took over after
// this one's lease ran out, and the gate was then cancelled, say):
//   - the run it already holds (two consumers raced on one run, recognised
//     by its id): the gate, no error;
//   - another run: the gate's state is kept, the run is recorded as g.Run
//     unless the gate already tracks one, an audit entry
//     "run_after_cancel" is written, and the gate comes back with
//     ErrRunAfterCancel so the caller cancels the run at the provider;
//   - a failed call: the gate and a *TransitionError (nothing started).
func (s *Store) FinishTrigger(ctx context.Context, id string, run pipelines.Run, runErr error, userSafeMsg string, pollAt time.Time) (*Gate, error) {
	if runErr != nil {
		s.log.WarnContext(ctx, "trigger failed", "gate", id, "err", runErr)
	}
	late := false
	g, err := s.update(ctx, "finish trigger", id, func(g *Gate, now time.Time) ([]auditNote, error) {
		late = false
		if g.State != StateTriggering {
			if runErr != nil {
				return nil, &TransitionError{From: g.State, To: StateTriggerFailed}
			}
			sameRun := g.Run != nil && g.Run.ID == run.ID
			switch {
			case sameRun && (g.State == StateRunning || g.State == StateSucceeded || g.State == StateFailed):
				return nil, errSkip // the gate went on with this very run
			case sameRun:
				return nil, errLateRun // already recorded as late
			}
			late = true
			if g.Run == nil {
				r := run
				g.Run = &r
			}
			return []auditNote{{event: "run_after_cancel", reason: runNote(run), from: g.State}}, nil
		}
		if runErr != nil {
			if userSafeMsg == "" {
				userSafeMsg = "the pipeline could not be started"
			}
			g.Error = userSafeMsg
			if err := g.Transition(StateTriggerFailed, now); err != nil {
				return nil, err
			}
			return []auditNote{{event: string(StateTriggerFailed), from: StateTriggering, to: StateTriggerFailed, reason: userSafeMsg}}, nil
		}
		r := run
		g.Run = &r
		g.Error = ""
		to := StateRunning
		if st, ok := finalState(run.Status); ok && CanTransition(StateTriggering, st) {
			to = st
		}
		if err := g.Transition(to, now); err != nil {
			return nil, err
		}
		return []auditNote{{event: string(to), from: StateTriggering, to: to, reason: runNote(r)}, {pollAt: pollAt}}, nil
	})
	switch {
	case errors.Is(err, errSkip):
		return g, nil
	case errors.Is(err, errLateRun), err == nil && late:
		return g, fmt.Errorf("gate %s is %s: %w", id, g.State, ErrRunAfterCancel)
	}
	return g, err
}

// finalState is the gate state a terminal run status ends the gate in.
func finalState(st pipelines.Status) (State, bool) {
	switch st {
	case pipelines.StatusSucceeded:
		return StateSucceeded, true
	case pipelines.StatusFailed:
		return StateFailed, true
	case pipelines.StatusCancelled:
		return StateCancelled, true
	}
	return "", false
}

// errLateRun aborts FinishTrigger for a late run the gate already holds.
var errLateRun = errors.New("late run already recorded")

func runNote(r pipelines.Run) string {
	if r.ID == "" {
		return ""
	}
	return fmt.Sprintf("run %s", r.ID)
}
