package approvals

import (
	"context"
	"testing"
	"time"

	"github.com/gatebot/gatebot/pipelines"
)

// woken reports whether c holds a wake, and takes it.
func woken(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// TestQueuedWorkWakesAndClaimsSayWhatIsNext: each change that queues a
// card update wakes the card worker (a vote held for the click's answer
// wakes it only at the release), and the card and poll claims say when the
// first entry they left is due, so the workers can sleep until then.
func TestQueuedWorkWakesAndClaimsSayWhatIsNext(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		s := e.store
		g := mustCreate(t, s, newGate("deploy", 2, time.Hour))
		if woken(s.CardsQueued()) {
			t.Errorf("a gate with no card woke the card worker")
		}
		if _, err := s.SetPost(ctx, g.ID, Post{ActivityID: "act-1"}, ""); err != nil {
			t.Fatal(err)
		}
		if !woken(s.CardsQueued()) {
			t.Errorf("posting the card did not wake the card worker")
		}
		if _, _, err := s.DecideHeld(ctx, g.ID, bob, true, "", "19:c", 8*time.Second); err != nil {
			t.Fatal(err)
		}
		if woken(s.CardsQueued()) {
			t.Errorf("a vote held for its answer woke the card worker")
		}
		syncs, next, err := s.ClaimCardSyncs(ctx, 10, time.Minute)
		if err != nil || len(syncs) != 0 {
			t.Fatalf("claim while held: %+v, %v", syncs, err)
		}
		if want := e.clock.Now().Add(8 * time.Second).Truncate(time.Millisecond); !next.Equal(want) {
			t.Errorf("next card update due %v while held, want the hold's end %v", next, want)
		}
		if err := s.ReleaseCard(ctx, g.ID); err != nil {
			t.Fatal(err)
		}
		if !woken(s.CardsQueued()) {
			t.Errorf("the release did not wake the card worker")
		}
		syncs, next, err = s.ClaimCardSyncs(ctx, 10, time.Minute)
		if err != nil || len(syncs) != 1 {
			t.Fatalf("claim after the release: %+v, %v", syncs, err)
		}
		if want := e.clock.Now().Add(time.Minute).Truncate(time.Millisecond); !next.Equal(want) {
			t.Errorf("next card update due %v, want the claim's lease end %v", next, want)
		}

		// Polls: a gate that starts running is due for one at once.
		r := mustCreate(t, s, newGate("deploy", 1, time.Hour))
		if _, _, err := s.Decide(ctx, r.ID, bob, true, "", ""); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.BeginTriggerAttempt(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.FinishTrigger(ctx, r.ID, pipelines.Run{ID: "run-1", Status: pipelines.StatusRunning}, nil, "", time.Time{}); err != nil {
			t.Fatal(err)
		}
		polls, next, err := s.ClaimPolls(ctx, 10, time.Minute)
		if err != nil || len(polls) != 1 {
			t.Fatalf("claim polls: %d, %v", len(polls), err)
		}
		if want := e.clock.Now().Add(time.Minute).Truncate(time.Millisecond); !next.Equal(want) {
			t.Errorf("next poll due %v, want the claim's lease end %v", next, want)
		}
		at := e.clock.Now().Add(3 * time.Second)
		if err := s.DeferPoll(ctx, r.ID, at); err != nil {
			t.Fatal(err)
		}
		if polls, next, err := s.ClaimPolls(ctx, 10, time.Minute); err != nil || len(polls) != 0 || !next.Equal(at.Truncate(time.Millisecond)) {
			t.Errorf("claim before the deferred poll: %d, next %v, %v; want none, next %v", len(polls), next, err, at)
		}
		if _, err := s.RecordRun(ctx, r.ID, pipelines.Run{ID: "run-1", Status: pipelines.StatusSucceeded}, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if polls, next, err := s.ClaimPolls(ctx, 10, time.Minute); err != nil || len(polls) != 0 || !next.IsZero() {
			t.Errorf("claim with no polls left: %d, next %v, %v; want none and no next", len(polls), next, err)
		}
	})
}
