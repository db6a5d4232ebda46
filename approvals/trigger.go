package approvals

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Trigger is one queued request to start an approved gate's run.
// Deliveries counts how often it was handed to a consumer; above 1 it was
// reclaimed from a consumer that did not acknowledge it in time.
type Trigger struct {
	MessageID, GateID string
	Deliveries        int64
}

func (s *Store) ensureGroup(ctx context.Context) error {
	err := s.rdb.XGroupCreateMkStream(ctx, s.triggerKey(), triggerGroup, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return unavailable("create trigger group", err)
	}
	return nil
}

func isNoGroup(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOGROUP")
}

// ClaimTriggers hands consumer up to count triggers: first those another
// consumer left unacknowledged for longer than TriggerVisibility (XAUTOCLAIM),
// then new ones (XREADGROUP), waiting up to block for new ones when there
// was nothing to reclaim (block ≤ 0: no wait). It returns no triggers and
// no error when there is nothing to do. Process each with BeginTrigger and
// FinishTrigger, then AckTrigger.
func (s *Store) ClaimTriggers(ctx context.Context, consumer string, count int, block time.Duration) ([]Trigger, error) {
	if count <= 0 {
		count = 10
	}
	out, err := s.claimTriggers(ctx, consumer, count, block)
	if isNoGroup(err) {
		// The stream was deleted (or never made): recreate and retry once.
		if err := s.ensureGroup(ctx); err != nil {
			return nil, err
		}
		out, err = s.claimTriggers(ctx, consumer, count, block)
	}
	if err != nil {
		return nil, unavailable("claim triggers", err)
	}
	return out, nil
}

func (s *Store) claimTriggers(ctx context.Context, consumer string, count int, block time.Duration) ([]Trigger, error) {
	var out []Trigger
	// XAUTOCLAIM scans a bounded part of the pending list per call; the
	// cursor carries on where the last call stopped, so a long list of
	// young entries cannot hide an old one.
	s.mu.Lock()
	cursor := s.reclaimCursor
	s.mu.Unlock()
	if cursor == "" {
		cursor = "0-0"
	}
	msgs, nextCursor, err := s.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: s.triggerKey(), Group: triggerGroup, Consumer: consumer,
		MinIdle: s.opts.TriggerVisibility, Start: cursor, Count: int64(count),
	}).Result()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.reclaimCursor = nextCursor
	s.mu.Unlock()
	if len(msgs) > 0 {
		deliveries := map[string]int64{}
		pend, err := s.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: s.triggerKey(), Group: triggerGroup, Consumer: consumer,
			Start: msgs[0].ID, End: msgs[len(msgs)-1].ID, Count: int64(len(msgs)) * 4,
		}).Result()
		if err != nil {
			return nil, err
		}
		for _, p := range pend {
			deliveries[p.ID] = p.RetryCount
		}
		for _, m := range msgs {
			t := s.trigger(ctx, m)
			t.Deliveries = max(deliveries[m.ID], 2)
			if t.GateID != "" {
				out = append(out, t)
			}
		}
		s.log.InfoContext(ctx, "reclaimed triggers", "consumer", consumer, "count", len(msgs))
	}
	if len(out) >= count {
		return out, nil
	}
	b := time.Duration(-1)
	if len(out) == 0 && block > 0 {
		b = block
	}
	streams, err := s.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: triggerGroup, Consumer: consumer, Streams: []string{s.triggerKey(), ">"},
		Count: int64(count - len(out)), Block: b,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	for _, st := range streams {
		for _, m := range st.Messages {
			t := s.trigger(ctx, m)
			t.Deliveries = 1
			if t.GateID != "" {
				out = append(out, t)
			}
		}
	}
	return out, nil
}

// trigger reads a stream entry; a malformed one is acknowledged and
// dropped (GateID empty) since no consumer could ever process it.
func (s *Store) trigger(ctx context.Context, m redis.XMessage) Trigger {
	id, _ := m.Values["gate"].(string)
	t := Trigger{MessageID: m.ID, GateID: id}
	if id == "" {
		s.log.WarnContext(ctx, "dropping malformed trigger", "message", m.ID)
		_ = s.AckTrigger(ctx, t)
	}
	return t
}

// AckTrigger acknowledges and deletes a processed trigger.
func (s *Store) AckTrigger(ctx context.Context, t Trigger) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAck(ctx, s.triggerKey(), triggerGroup, t.MessageID)
		p.XDel(ctx, s.triggerKey(), t.MessageID)
		return nil
	})
	if err != nil {
		return unavailable("ack trigger", err)
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
func (s *Store) BeginTrigger(ctx context.Context, id string) (*Gate, bool, error) {
	g, err := s.update(ctx, "begin trigger", id, func(g *Gate, now time.Time) ([]auditNote, error) {
		switch g.State {
		case StateApproved:
			if err := g.Transition(StateTriggering, now); err != nil {
				return nil, err
			}
		case StateTriggering:
			if now.Before(g.TriggerLease) {
				return nil, ErrTriggerBusy
			}
			g.UpdatedAt = now
		default:
			return nil, errSkip
		}
		g.TriggerLease = now.Add(s.opts.TriggerVisibility)
		g.Attempts++
		return nil, nil
	})
	switch {
	case errors.Is(err, errSkip):
		return g, false, nil
	case err != nil:
		return g, false, err
	}
	return g, true, nil
}

// FinishTrigger records the provider call's result on a triggering gate
// and ends its lease: with runErr nil the gate becomes running with run
// (and is scheduled for status polling at once); otherwise it becomes
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
func (s *Store) FinishTrigger(ctx context.Context, id string, run RunInfo, runErr error, userSafeMsg string) (*Gate, error) {
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
		if err := g.Transition(StateRunning, now); err != nil {
			return nil, err
		}
		return []auditNote{{event: string(StateRunning), from: StateTriggering, to: StateRunning, reason: runNote(r)}}, nil
	})
	switch {
	case errors.Is(err, errSkip):
		return g, nil
	case errors.Is(err, errLateRun), err == nil && late:
		return g, fmt.Errorf("gate %s is %s: %w", id, g.State, ErrRunAfterCancel)
	}
	return g, err
}

// errLateRun aborts FinishTrigger for a late run the gate already holds.
var errLateRun = errors.New("late run already recorded")

func runNote(r RunInfo) string {
	if r.ID == "" {
		return ""
	}
	return fmt.Sprintf("run %s", r.ID)
}
