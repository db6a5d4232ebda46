package approvals

import (
	"strconv"
	"time"
)

// Work this Store queues wakes its own workers at once (CardsQueued,
// PollsQueued), so a worker with nothing due can sleep until its next
// entry is due (the claims return it) instead of looking every tick. Work
// queued by another replica wakes that replica's workers; the others meet
// it on their idle look.

// wakeups are a Store's signals; each holds at most one pending wake.
type wakeups struct {
	cards, polls chan struct{}
}

func newWakeups() wakeups {
	return wakeups{cards: make(chan struct{}, 1), polls: make(chan struct{}, 1)}
}

func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default: // a wake is already pending
	}
}

// CardsQueued receives a value after this Store queued a card update, or
// moved one, that may be due before the syncer's next claim would see it.
func (s *Store) CardsQueued() <-chan struct{} { return s.wake.cards }

// PollsQueued receives a value after this Store scheduled a run-status
// poll, or moved one.
func (s *Store) PollsQueued() <-chan struct{} { return s.wake.polls }

// wakeFor signals what a change of g from state old queued: a card update
// unless the change holds it for a click's answer (ReleaseCard wakes it
// then), a poll when the gate became running or a poll was rescheduled.
func (s *Store) wakeFor(g *Gate, old State, notes []auditNote) {
	held, polled := false, false
	for _, n := range notes {
		held = held || !n.holdCard.IsZero()
		polled = polled || !n.pollAt.IsZero()
	}
	if g.Post.ActivityID != "" && !held {
		wake(s.wake.cards)
	}
	if g.State == StateRunning && (old != StateRunning || polled) {
		wake(s.wake.polls)
	}
}

// claimReply reads a claim script's answer: the claimed members, then the
// score of the schedule's first entry after the claim (false when it is
// empty), which is when the next claim can find something.
func claimReply(v any) (claimed []string, next time.Time) {
	parts, _ := v.([]any)
	if len(parts) != 2 {
		return nil, time.Time{}
	}
	items, _ := parts[0].([]any)
	claimed = make([]string, 0, len(items))
	for _, it := range items {
		if s, ok := it.(string); ok {
			claimed = append(claimed, s)
		}
	}
	if sc, ok := parts[1].(string); ok {
		if f, err := strconv.ParseFloat(sc, 64); err == nil {
			next = time.UnixMilli(int64(f))
		}
	}
	return claimed, next
}
