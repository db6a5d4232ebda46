package approvals

import (
	"context"
	"errors"
	"github.com/gatebot/gatebot/pipelines"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// approvedGate creates a gate and approves it (one approver needed).
func approvedGate(t *testing.T, e *env) *Gate {
	t.Helper()
	g := mustCreate(t, e.store, newGate("deploy-api", 1, time.Hour))
	if _, out, err := e.store.Decide(context.Background(), g.ID, bob, true, "", ""); err != nil || out != OutcomeApproved {
		t.Fatalf("approve: %v %v", out, err)
	}
	return g
}

// TestBeginTriggerLease: a trigger reclaimed while its first consumer still
// holds the lease must not call the provider again; once the lease ran out
// (the holder died) the next consumer takes over.
func TestBeginTriggerLease(t *testing.T) {
	const vis = time.Minute
	backends(t, Options{TriggerVisibility: vis}, func(t *testing.T, e *env) {
		ctx := context.Background()
		g := approvedGate(t, e)
		got, call, err := e.store.BeginTrigger(ctx, g.ID)
		if err != nil || !call || got.State != StateTriggering || got.Attempts != 1 ||
			!got.TriggerLease.Equal(e.clock.Now().Add(vis)) {
			t.Fatalf("first BeginTrigger: call=%v err=%v gate=%+v", call, err, got)
		}
		// A reclaim within the lease: busy, no call, gate unchanged.
		e.clock.Advance(vis - time.Second)
		busy, call, err := e.store.BeginTrigger(ctx, g.ID)
		if !errors.Is(err, ErrTriggerBusy) || call || busy == nil || busy.Attempts != 1 || busy.Version != got.Version {
			t.Fatalf("BeginTrigger within lease: call=%v err=%v gate=%+v", call, err, busy)
		}
		// The lease ran out: the holder died; take over with a new lease.
		e.clock.Advance(time.Second)
		again, call, err := e.store.BeginTrigger(ctx, g.ID)
		if err != nil || !call || again.Attempts != 2 || !again.TriggerLease.Equal(e.clock.Now().Add(vis)) {
			t.Fatalf("BeginTrigger after lease: call=%v err=%v gate=%+v", call, err, again)
		}
		fin, err := e.store.FinishTrigger(ctx, g.ID, pipelines.Run{ID: "r1"}, nil, "", time.Time{})
		if err != nil || fin.State != StateRunning || !fin.TriggerLease.IsZero() {
			t.Fatalf("FinishTrigger: %v %+v", err, fin)
		}
		raw := e.rdb.Get(ctx, e.store.gateKey(g.ID)).Val()
		if dec, _ := e.store.decodeGate(ctx, []byte(raw)); dec == nil || !dec.TriggerLease.IsZero() {
			t.Errorf("stored gate keeps a lease after finishing: %+v", dec)
		}
	})
}

// TestRunAfterCancel: a run that comes back for a gate that is no longer
// triggering is recorded and reported, so the caller can cancel it.
func TestRunAfterCancel(t *testing.T) {
	const vis = time.Minute
	backends(t, Options{TriggerVisibility: vis}, func(t *testing.T, e *env) {
		ctx := context.Background()
		g := approvedGate(t, e)
		if _, call, err := e.store.BeginTrigger(ctx, g.ID); !call || err != nil {
			t.Fatalf("BeginTrigger A: %v %v", call, err)
		}
		// A triggering gate can no longer be cancelled: its run could start untracked.
		if _, err := e.store.Cancel(ctx, g.ID, carol, ""); !isTransition(err, StateTriggering, StateCancelled) {
			t.Fatalf("cancel triggering: %v", err)
		}
		// A stalls past its lease; B takes over, fails, and the gate is cancelled.
		e.clock.Advance(vis)
		if _, call, err := e.store.BeginTrigger(ctx, g.ID); !call || err != nil {
			t.Fatalf("BeginTrigger B: %v %v", call, err)
		}
		if _, err := e.store.FinishTrigger(ctx, g.ID, pipelines.Run{}, errors.New("500"), "provider down", time.Time{}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.Cancel(ctx, g.ID, carol, "never mind"); err != nil {
			t.Fatal(err)
		}
		// A comes back with a run.
		got, err := e.store.FinishTrigger(ctx, g.ID, pipelines.Run{ID: "r-late", URL: "https://ci/r-late"}, nil, "", time.Time{})
		if !errors.Is(err, ErrRunAfterCancel) {
			t.Fatalf("late FinishTrigger: err = %v, want ErrRunAfterCancel", err)
		}
		if got == nil || got.State != StateCancelled || got.Run == nil || got.Run.ID != "r-late" {
			t.Fatalf("late FinishTrigger gate = %+v", got)
		}
		stored, err := e.store.Get(ctx, g.ID)
		if err != nil || stored.State != StateCancelled || stored.Run == nil || stored.Run.ID != "r-late" {
			t.Fatalf("stored gate = %+v %v", stored, err)
		}
		if e.rdb.ZScore(ctx, e.store.pollKey(), g.ID).Err() == nil {
			t.Errorf("a cancelled gate was put on the poll schedule")
		}
		ent, err := e.store.Audit(ctx, AuditQuery{})
		if err != nil || len(ent) == 0 {
			t.Fatal(err)
		}
		last := ent[len(ent)-1]
		if last.Event != "run_after_cancel" || last.Reason != "run r-late" {
			t.Errorf("last audit entry = %+v, want run_after_cancel", last)
		}
		// The same late run again is reported again but changes nothing.
		again, err := e.store.FinishTrigger(ctx, g.ID, pipelines.Run{ID: "r-late"}, nil, "", time.Time{})
		if !errors.Is(err, ErrRunAfterCancel) || again.Version != got.Version {
			t.Errorf("repeat late FinishTrigger: %v version %d→%d", err, got.Version, again.Version)
		}
	})
}

// TestExpireDueAtLeastOnce: a replica that expires a gate and dies before
// telling anyone leaves it to another replica, until AckExpired.
func TestExpireDueAtLeastOnce(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		g := mustCreate(t, e.store, newGate("deploy-api", 1, 10*time.Minute))
		e.clock.Advance(10 * time.Minute)
		got, err := e.store.ExpireDue(ctx, 10)
		if err != nil || len(got) != 1 || got[0].ID != g.ID || got[0].State != StateExpired {
			t.Fatalf("ExpireDue: %v %v", got, err)
		}
		// The replica dies here. Within the claim lease nobody else sees it.
		if again, err := e.store.ExpireDue(ctx, 10); err != nil || len(again) != 0 {
			t.Fatalf("ExpireDue within the lease: %v %v", again, err)
		}
		e.clock.Advance(scheduleLease)
		again, err := e.store.ExpireDue(ctx, 10)
		if err != nil || len(again) != 1 || again[0].ID != g.ID || again[0].State != StateExpired || again[0].Version != got[0].Version {
			t.Fatalf("ExpireDue after a crash: %v %v", again, err)
		}
		if err := e.store.AckExpired(ctx, g.ID); err != nil {
			t.Fatal(err)
		}
		if n := e.rdb.ZCard(ctx, e.store.dueKey()).Val(); n != 0 {
			t.Errorf("due entries after AckExpired = %d", n)
		}
		e.clock.Advance(scheduleLease)
		if more, err := e.store.ExpireDue(ctx, 10); err != nil || len(more) != 0 {
			t.Errorf("ExpireDue after ack: %v %v", more, err)
		}
		if err := e.store.AckExpired(ctx, "g_missing"); err != nil {
			t.Errorf("AckExpired of an unknown gate: %v", err)
		}
	})
}

// TestExpireDuePartialFailure: one bad gate does not hide the others.
func TestExpireDuePartialFailure(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		good := mustCreate(t, e.store, newGate("deploy-api", 1, time.Minute))
		bad := mustCreate(t, e.store, newGate("deploy-api", 1, time.Minute))
		if err := e.rdb.Set(ctx, e.store.gateKey(bad.ID), "\x07garbage", 0).Err(); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Minute)
		got, err := e.store.ExpireDue(ctx, 10)
		if err == nil || errors.Is(err, ErrUnavailable) {
			t.Errorf("ExpireDue err = %v, want a non-unavailable error for the corrupt gate", err)
		}
		if len(got) != 1 || got[0].ID != good.ID {
			t.Errorf("ExpireDue returned %v, want [%s]", got, good.ID)
		}
		_ = redis.Nil
	})
}

// TestUpdateEnforcesTransitions: Update cannot bypass the transition table
// nor the quorum.
func TestUpdateEnforcesTransitions(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		g := mustCreate(t, e.store, newGate("deploy-api", 2, time.Hour))
		for _, to := range []State{StateApproved, StateRunning, StateSucceeded} {
			got, err := e.store.updateWith(ctx, g.ID, func(g *Gate) error { g.State = to; return nil })
			if !isTransition(err, StatePending, to) {
				t.Errorf("Update pending→%s: err = %v, want *TransitionError", to, err)
			}
			if got == nil || got.State != StatePending || got.Version != 1 {
				t.Errorf("Update pending→%s returned %+v", to, got)
			}
		}
		stored, _ := e.store.Get(ctx, g.ID)
		if stored.State != StatePending || stored.Version != 1 {
			t.Errorf("stored gate changed: %s v%d", stored.State, stored.Version)
		}
		if c := triggerCounts(t, e); len(c) != 0 {
			t.Errorf("triggers enqueued: %v", c)
		}
		if n := indexed(t, e, "", StateApproved); n != 0 {
			t.Errorf("approved index holds %d gates", n)
		}
	})
}

// TestSchedulePollFinal: rescheduling a poll does not bring back a gate
// that left the poll schedule.
func TestSchedulePollFinal(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		g := approvedGate(t, e)
		if _, _, err := e.store.BeginTrigger(ctx, g.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.FinishTrigger(ctx, g.ID, pipelines.Run{ID: "r1"}, nil, "", time.Time{}); err != nil {
			t.Fatal(err)
		}
		at := e.clock.Now().Add(time.Minute)
		if err := e.store.DeferPoll(ctx, g.ID, at); err != nil {
			t.Fatal(err)
		}
		if sc, err := e.rdb.ZScore(ctx, e.store.pollKey(), g.ID).Result(); err != nil || sc != ms(at) {
			t.Errorf("running gate poll score = %v %v, want %v", sc, err, ms(at))
		}
		if _, err := e.store.updateWith(ctx, g.ID, func(g *Gate) error { return g.Transition(StateSucceeded, e.clock.Now()) }); err != nil {
			t.Fatal(err)
		}
		// A poll that was in flight when the gate ended reschedules it.
		if err := e.store.DeferPoll(ctx, g.ID, at); err != nil {
			t.Fatal(err)
		}
		if err := e.rdb.ZScore(ctx, e.store.pollKey(), g.ID).Err(); !errors.Is(err, redis.Nil) {
			t.Errorf("final gate back on the poll schedule (err %v)", err)
		}
	})
}

// TestCorruptRecordNotUnavailable: a record that does not decode is a
// permanent error, not "try again".
func TestCorruptRecordNotUnavailable(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		g, _, err := e.store.Create(ctx, newGate("deploy-api", 1, time.Hour), "key-1")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.rdb.Set(ctx, e.store.gateKey(g.ID), "{not json", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.store.Create(ctx, newGate("deploy-api", 1, time.Hour), "key-1"); err == nil || errors.Is(err, ErrUnavailable) {
			t.Errorf("Create over a corrupt record: err = %v, want a permanent error", err)
		}
		if _, _, err := e.store.Decide(ctx, g.ID, bob, true, "", ""); err == nil || errors.Is(err, ErrUnavailable) {
			t.Errorf("Decide on a corrupt record: err = %v, want a permanent error", err)
		}
	})
}

// TestIdempotencyKeyTTL: the key outlives a live gate, whatever its
// timeout, and then lasts the retention.
func TestIdempotencyKeyTTL(t *testing.T) {
	const retention = time.Hour
	backends(t, Options{Retention: retention}, func(t *testing.T, e *env) {
		ctx := context.Background()
		g, _, err := e.store.Create(ctx, newGate("deploy-api", 1, 0), "no-timeout")
		if err != nil {
			t.Fatal(err)
		}
		if ttl := e.rdb.TTL(ctx, e.store.idemKey("no-timeout")).Val(); ttl != -1 {
			t.Errorf("idempotency key TTL of a live gate without timeout = %v, want none", ttl)
		}
		g2, _, err := e.store.Create(ctx, newGate("deploy-api", 1, time.Hour), "timeout")
		if err != nil {
			t.Fatal(err)
		}
		if ttl := e.rdb.TTL(ctx, e.store.idemKey("timeout")).Val(); ttl <= retention || ttl > time.Hour+retention {
			t.Errorf("idempotency key TTL of a live gate with timeout = %v, want in (%v, %v]", ttl, retention, time.Hour+retention)
		}
		for _, id := range []string{g.ID, g2.ID} {
			if _, err := e.store.Cancel(ctx, id, alice, ""); err != nil {
				t.Fatal(err)
			}
		}
		for _, k := range []string{"no-timeout", "timeout"} {
			if ttl := e.rdb.TTL(ctx, e.store.idemKey(k)).Val(); ttl <= retention-time.Minute || ttl > retention {
				t.Errorf("idempotency key %s TTL after the gate ended = %v, want ≈ %v", k, ttl, retention)
			}
		}
	})
}

// TestIndexesPrunedAfterRetention: ended gates leave the list indexes once
// their retention is over, without anyone listing them.
func TestIndexesPrunedAfterRetention(t *testing.T) {
	const retention = time.Hour
	backends(t, Options{Retention: retention}, func(t *testing.T, e *env) {
		ctx := context.Background()
		live := mustCreate(t, e.store, newGate("api", 1, 0))
		cancelled := mustCreate(t, e.store, newGate("api", 1, 0))
		rejected := mustCreate(t, e.store, newGate("web", 1, 0))
		if _, err := e.store.Cancel(ctx, cancelled.ID, alice, ""); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.store.Decide(ctx, rejected.ID, bob, false, "no", ""); err != nil {
			t.Fatal(err)
		}
		if n := e.rdb.ZCard(ctx, e.store.endedKey()).Val(); n != 2 {
			t.Fatalf("ended entries = %d, want 2", n)
		}
		// Not yet: nothing pruned.
		e.clock.Advance(retention - time.Second)
		if _, err := e.store.ExpireDue(ctx, 10); err != nil {
			t.Fatal(err)
		}
		if n := indexed(t, e, "", ""); n != 3 {
			t.Errorf("index before retention = %d, want 3", n)
		}
		e.clock.Advance(time.Second)
		// The records are gone by now in a real deployment.
		e.rdb.Del(ctx, e.store.gateKey(cancelled.ID), e.store.gateKey(rejected.ID))
		if _, err := e.store.ExpireDue(ctx, 10); err != nil {
			t.Fatal(err)
		}
		keys := map[string]int64{
			e.store.ixPipelineState("api", StatePending): 1, e.store.ixPipelineState("api", StateCancelled): 0, e.store.ixPipelineState("web", StateRejected): 0,
			e.store.endedKey(): 0,
		}
		for k, want := range keys {
			if n := e.rdb.ZCard(ctx, k).Val(); n != want {
				t.Errorf("%s holds %d, want %d", k, n, want)
			}
		}
		if n := indexed(t, e, "", ""); n != 1 {
			t.Errorf("index after pruning = %d, want 1", n)
		}
		if e.rdb.ZScore(ctx, e.store.ixPipelineState("api", StatePending), live.ID).Err() != nil {
			t.Errorf("live gate pruned from the index")
		}
	})
}
