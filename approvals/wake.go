package approvals

import (
	"strconv"
	"time"
)

// Card updates this Store queues wake its card syncer at once
// (CardsQueued), so a syncer with nothing due can sleep until its next
// entry is due (the claims return it) instead of looking every tick. Work
// queued by another replica wakes that replica's syncer; the others meet
// it on their idle look. Polls need no signal from here: only the engine
// schedules them, and it knows when (engine.pollSoon).

// wakeups are a Store's signals; each holds at most one pending wake.
type wakeups struct {
	cards chan struct{}
}

func newWakeups() wakeups {
	return wakeups{cards: make(chan struct{}, 1)}
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

// wakeFor signals the card update a change of g queued, unless the change
// holds it for a click's answer (ReleaseCard wakes it then).
func (s *Store) wakeFor(g *Gate, notes []auditNote) {
	for _, n := range notes {
		if !n.holdCard.IsZero() {
			return
		}
	}
	if g.Post.ActivityID != "" {
		wake(s.wake.cards)
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
