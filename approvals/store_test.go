package approvals

import (
	"context"
	"errors"
	"github.com/gatebot/gatebot/pipelines"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
)

func TestCreateGet(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		in := newGate("deploy-api", 2, 30*time.Minute)
		g, created, err := e.store.Create(ctx, in, "")
		if err != nil || !created {
			t.Fatalf("Create: %v %v", created, err)
		}
		if in.ID != "" || in.State != "" {
			t.Errorf("Create modified the caller's gate: %+v", in)
		}
		if !regexp.MustCompile(`^g_[a-z2-7]{20}$`).MatchString(g.ID) {
			t.Errorf("id %q does not look like g_ + 20 base32 chars", g.ID)
		}
		now := e.clock.Now()
		if g.State != StatePending || g.Version != 1 || !g.CreatedAt.Equal(now) || !g.UpdatedAt.Equal(now) ||
			!g.Deadline.Equal(now.Add(30*time.Minute)) {
			t.Errorf("created gate = %+v", g)
		}
		got, err := e.store.Get(ctx, g.ID)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if diff := cmp.Diff(g, got); diff != "" {
			t.Errorf("Get differs from Create (-create +get):\n%s", diff)
		}
		if ttl := e.rdb.TTL(ctx, e.store.gateKey(g.ID)).Val(); ttl != -1 {
			t.Errorf("pending gate TTL = %v, want none", ttl)
		}
		if due := e.rdb.ZScore(ctx, e.store.dueKey(), g.ID).Val(); due != ms(g.Deadline) {
			t.Errorf("due score = %v, want %v", due, ms(g.Deadline))
		}
		if _, err := e.store.Get(ctx, "g_missing"); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) {
			t.Errorf("Get missing: %v", err)
		}
		// No timeout: no deadline, not scheduled.
		g2 := mustCreate(t, e.store, newGate("deploy-api", 1, 0))
		if !g2.Deadline.IsZero() {
			t.Errorf("deadline without timeout: %v", g2.Deadline)
		}
		if n := e.rdb.ZCard(ctx, e.store.dueKey()).Val(); n != 1 {
			t.Errorf("due entries = %d, want 1", n)
		}
		// An explicit id is kept, and reusing it is a conflict.
		in3 := newGate("deploy-api", 1, 0)
		in3.ID = "g_explicit"
		if _, _, err := e.store.Create(ctx, in3, ""); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.store.Create(ctx, in3, ""); !errors.Is(err, ErrConflict) {
			t.Errorf("duplicate id: err = %v, want ErrConflict", err)
		}
		ent, err := e.store.Audit(ctx, AuditQuery{})
		if err != nil || len(ent) != 3 || ent[0].Event != "opened" || ent[0].GateID != g.ID || ent[0].Actor != alice.UPN {
			t.Errorf("audit after create = %+v, %v", ent, err)
		}
	})
}

func TestCreateIdempotency(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		first, created, err := e.store.Create(ctx, newGate("deploy-api", 1, time.Hour), "req-1")
		if err != nil || !created {
			t.Fatalf("first: %v %v", created, err)
		}
		tests := []struct {
			name    string
			mutate  func(g *Gate)
			key     string
			wantNew bool
			wantErr error
		}{
			{name: "same request", mutate: func(*Gate) {}, key: "req-1"},
			{name: "same request, other labels", mutate: func(g *Gate) { g.Labels = map[string]string{"x": "y"} }, key: "req-1"},
			{name: "other inputs", mutate: func(g *Gate) { g.Inputs["version"] = "2" }, key: "req-1", wantErr: ErrIdempotencyKey},
			{name: "requester renamed", mutate: func(g *Gate) { g.Requester.Name = "Alice B." }, key: "req-1"},
			{name: "other requester", mutate: func(g *Gate) { g.Requester = bob }, key: "req-1", wantErr: ErrIdempotencyKey},
			{name: "other message", mutate: func(g *Gate) { g.Message = "x" }, key: "req-1", wantErr: ErrIdempotencyKey},
			{name: "other key", mutate: func(*Gate) {}, key: "req-2", wantNew: true},
			{name: "no key", mutate: func(*Gate) {}, key: "", wantNew: true},
		}
		for _, tt := range tests {
			g := newGate("deploy-api", 1, time.Hour)
			tt.mutate(g)
			got, created, err := e.store.Create(ctx, g, tt.key)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("%s: err = %v, want %v", tt.name, err, tt.wantErr)
				continue
			}
			if err != nil {
				continue
			}
			if created != tt.wantNew || (got.ID == first.ID) == tt.wantNew {
				t.Errorf("%s: created=%v id=%s (first %s)", tt.name, created, got.ID, first.ID)
			}
		}
		if n := indexed(t, e, "", ""); n != 3 {
			t.Errorf("indexed gates = %d, want 3", n)
		}
		// The same request retried concurrently creates one gate.
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			ids     = map[string]int{}
			creates int
		)
		for range 10 {
			wg.Go(func() {
				g, created, err := e.store.Create(ctx, newGate("deploy-api", 1, time.Hour), "req-race")
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				ids[g.ID]++
				if created {
					creates++
				}
			})
		}
		wg.Wait()
		if len(ids) != 1 || creates != 1 {
			t.Errorf("concurrent creates with one key: ids %v, %d created", ids, creates)
		}
	})
}

func TestDecideStore(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		g := mustCreate(t, e.store, newGate("deploy-api", 2, time.Hour))

		got, out, err := e.store.Decide(ctx, g.ID, bob, true, "", "conv-1")
		if err != nil || out != OutcomeRecorded || got.Version != 2 || len(got.Votes) != 1 {
			t.Fatalf("first vote: %v %v %+v", out, err, got)
		}
		// Refusals return the stored gate with the domain error, write nothing.
		for _, tc := range []struct {
			p       Person
			approve bool
			want    error
		}{{bob, true, ErrAlreadyVoted}, {alice, true, ErrSelfApproval}} {
			got, out, err := e.store.Decide(ctx, g.ID, tc.p, tc.approve, "", "conv-1")
			if !errors.Is(err, tc.want) || errors.Is(err, ErrUnavailable) || out != "" || got == nil || got.Version != 2 {
				t.Errorf("%s: gate=%v out=%q err=%v, want %v with stored gate", tc.p.Name, got, out, err, tc.want)
			}
		}
		if n := len(triggerCounts(t, e)); n != 0 {
			t.Fatalf("triggers before quorum: %d", n)
		}
		e.clock.Advance(time.Minute)
		got, out, err = e.store.Decide(ctx, g.ID, carol, true, "", "conv-1")
		if err != nil || out != OutcomeApproved || got.State != StateApproved || got.Version != 3 {
			t.Fatalf("quorum vote: %v %v %+v", out, err, got)
		}
		if c := triggerCounts(t, e); c[g.ID] != 1 || len(c) != 1 {
			t.Errorf("triggers = %v, want one for %s", c, g.ID)
		}
		if n := e.rdb.ZCard(ctx, e.store.dueKey()).Val(); n != 0 {
			t.Errorf("approved gate still on the expiry schedule")
		}
		if _, _, err := e.store.Decide(ctx, g.ID, dave, true, "", "conv-1"); !errors.Is(err, ErrNotPending) {
			t.Errorf("vote after quorum: %v", err)
		}
		if _, _, err := e.store.Decide(ctx, "g_nope", dave, true, "", ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("vote on missing gate: %v", err)
		}
		for _, q := range []ListQuery{{State: StateApproved}, {Pipeline: "deploy-api", State: StateApproved}} {
			if l, _, err := e.store.List(ctx, q); err != nil || len(l) != 1 || l[0].ID != g.ID {
				t.Errorf("List %+v = %v, %v", q, l, err)
			}
		}
		if l, _, _ := e.store.List(ctx, ListQuery{State: StatePending}); len(l) != 0 {
			t.Errorf("approved gate still listed as pending")
		}

		// Reject: final, TTL set, audited with reason and where.
		r := mustCreate(t, e.store, newGate("deploy-api", 2, time.Hour))
		got, out, err = e.store.Decide(ctx, r.ID, bob, false, "not today", "conv-2")
		if err != nil || out != OutcomeRejected || got.State != StateRejected || got.Reason != "not today" {
			t.Fatalf("reject: %v %v %+v", out, err, got)
		}
		if ttl := e.rdb.TTL(ctx, e.store.gateKey(r.ID)).Val(); ttl <= 29*24*time.Hour {
			t.Errorf("rejected gate TTL = %v, want retention", ttl)
		}
		ent, err := e.store.Audit(ctx, AuditQuery{})
		if err != nil {
			t.Fatal(err)
		}
		var events []string
		for _, a := range ent {
			events = append(events, a.Event+":"+a.From+">"+a.To+":"+a.Actor+":"+a.Where+":"+a.Reason)
		}
		want := []string{
			"opened:>pending:alice@example.com:teams:",
			"approve:>:bob@example.com:conv-1:",
			"approve:pending>approved:carol@example.com:conv-1:",
			"opened:>pending:alice@example.com:teams:",
			"reject:pending>rejected:bob@example.com:conv-2:not today",
		}
		if diff := cmp.Diff(want, events); diff != "" {
			t.Errorf("audit events (-want +got):\n%s", diff)
		}
		if ent[1].Inputs["version"] != "1.4.2" || ent[1].ActorID != "aad:"+bob.AADObjectID {
			t.Errorf("audit entry lacks inputs or actor id: %+v", ent[1])
		}
	})
}

func TestUpdateCancelRetry(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		g := mustCreate(t, e.store, newGate("deploy-api", 1, time.Hour))
		if _, _, err := e.store.Decide(ctx, g.ID, bob, true, "", ""); err != nil {
			t.Fatal(err)
		}
		// fn errors write nothing and come back with the stored gate.
		boom := errors.New("boom")
		got, err := e.store.updateWith(ctx, g.ID, func(g *Gate) error { g.Message = "changed"; return boom })
		if !errors.Is(err, boom) || got == nil || got.Message != "ship it" || got.Version != 2 {
			t.Fatalf("Update with fn error: %+v %v", got, err)
		}
		if _, err := e.store.updateWith(ctx, g.ID, func(g *Gate) error { return g.Transition(StateSucceeded, e.clock.Now()) }); !isTransition(err, StateApproved, StateSucceeded) {
			t.Errorf("approved→succeeded: %v", err)
		}
		if _, ok, err := e.store.BeginTrigger(ctx, g.ID); !ok || err != nil {
			t.Fatalf("BeginTrigger: %v %v", ok, err)
		}
		got, err = e.store.FinishTrigger(ctx, g.ID, pipelines.Run{}, errors.New("provider said 500 token=secret"), "provider unavailable", time.Time{})
		if err != nil || got.State != StateTriggerFailed || got.Error != "provider unavailable" {
			t.Fatalf("FinishTrigger failure: %+v %v", got, err)
		}
		// Retry: trigger_failed → approved enqueues a second trigger, audited with the retrier.
		got, err = e.store.updateWith(ctx, g.ID, func(g *Gate) error {
			g.DecidedBy = &carol
			return g.Transition(StateApproved, e.clock.Now())
		})
		if err != nil || got.State != StateApproved {
			t.Fatalf("retry: %+v %v", got, err)
		}
		if c := triggerCounts(t, e); c[g.ID] != 2 {
			t.Errorf("triggers after retry = %d, want 2", c[g.ID])
		}
		got, err = e.store.Cancel(ctx, g.ID, dave, "changed my mind")
		if err != nil || got.State != StateCancelled || got.DecidedBy == nil || got.DecidedBy.UPN != dave.UPN {
			t.Fatalf("Cancel: %+v %v", got, err)
		}
		if _, err := e.store.Cancel(ctx, g.ID, dave, ""); !isTransition(err, StateCancelled, StateCancelled) {
			t.Errorf("second cancel: %v", err)
		}
		ent, _ := e.store.Audit(ctx, AuditQuery{Pipeline: "deploy-api"})
		var got2 []string
		for _, a := range ent {
			got2 = append(got2, a.Event+":"+a.Actor+":"+a.Reason)
		}
		want := []string{"opened:alice@example.com:", "approve:bob@example.com:", "triggering::",
			"trigger_failed::provider unavailable", "approved:carol@example.com:", "cancelled:dave@example.com:changed my mind"}
		if diff := cmp.Diff(want, got2); diff != "" {
			t.Errorf("audit (-want +got):\n%s", diff)
		}
		for _, a := range ent {
			if strings.Contains(a.Reason, "secret") {
				t.Errorf("provider error leaked into audit: %q", a.Reason)
			}
		}
	})
}

func isTransition(err error, from, to State) bool {
	var te *TransitionError
	return errors.As(err, &te) && te.From == from && te.To == to
}

func TestTriggerLifecycle(t *testing.T) {
	backends(t, Options{TriggerVisibility: 300 * time.Millisecond}, func(t *testing.T, e *env) {
		ctx := context.Background()
		ids := map[string]bool{}
		for range 3 {
			g := mustCreate(t, e.store, newGate("deploy-api", 1, time.Hour))
			if _, _, err := e.store.Decide(ctx, g.ID, bob, true, "", ""); err != nil {
				t.Fatal(err)
			}
			ids[g.ID] = true
		}
		// Consumer A takes two and dies silently.
		a, err := e.store.ClaimTriggers(ctx, "a", map[string]int{"deploy-api": 2}, 0)
		if err != nil || len(a) != 2 || a[0].Deliveries != 1 {
			t.Fatalf("claim a: %+v %v", a, err)
		}
		// B gets only the third now: A's are invisible until the timeout.
		b, err := e.store.ClaimTriggers(ctx, "b", map[string]int{"deploy-api": 10}, 50*time.Millisecond)
		if err != nil || len(b) != 1 || b[0].GateID == a[0].GateID || b[0].GateID == a[1].GateID {
			t.Fatalf("claim b: %+v %v", b, err)
		}
		if none, err := e.store.ClaimTriggers(ctx, "b", map[string]int{"deploy-api": 10}, 0); err != nil || len(none) != 0 {
			t.Fatalf("claim with nothing due: %+v %v", none, err)
		}
		process := func(tr Trigger) {
			t.Helper()
			g, ok, err := e.store.BeginTrigger(ctx, tr.GateID)
			if err != nil || !ok || g.State != StateTriggering || g.Attempts != 1 {
				t.Fatalf("BeginTrigger: %+v %v %v", g, ok, err)
			}
			run := pipelines.Run{ID: "run-" + tr.GateID, URL: "https://ci.example/run"}
			g, err = e.store.FinishTrigger(ctx, tr.GateID, run, nil, "", time.Time{})
			if err != nil || g.State != StateRunning || g.Run == nil || g.Run.ID != run.ID {
				t.Fatalf("FinishTrigger: %+v %v", g, err)
			}
			// The same result again (a racing consumer) is a no-op.
			if g2, err := e.store.FinishTrigger(ctx, tr.GateID, run, nil, "", time.Time{}); err != nil || g2.Version != g.Version {
				t.Errorf("repeat FinishTrigger: %v", err)
			}
			// A stale trigger for a running gate is not started again.
			if _, ok, err := e.store.BeginTrigger(ctx, tr.GateID); ok || err != nil {
				t.Errorf("BeginTrigger on running gate: %v %v", ok, err)
			}
			if err := e.store.AckTrigger(ctx, tr); err != nil {
				t.Fatal(err)
			}
			delete(ids, tr.GateID)
		}
		process(b[0])
		time.Sleep(400 * time.Millisecond)
		re, err := e.store.ClaimTriggers(ctx, "b", map[string]int{"deploy-api": 10}, 0)
		if err != nil || len(re) != 2 {
			t.Fatalf("reclaim: %+v %v", re, err)
		}
		for _, tr := range re {
			if tr.Deliveries != 2 {
				t.Errorf("reclaimed %s deliveries = %d, want 2", tr.GateID, tr.Deliveries)
			}
			process(tr)
		}
		if len(ids) != 0 {
			t.Errorf("gates never triggered: %v", ids)
		}
		if n := e.rdb.XLen(ctx, e.store.triggerKey("deploy-api")).Val(); n != 0 {
			t.Errorf("trigger stream length after acks = %d", n)
		}
		// Running gates are on the poll schedule at once.
		polls, _, err := e.store.ClaimPolls(ctx, 10, time.Minute)
		if err != nil || len(polls) != 3 {
			t.Fatalf("ClaimPolls: %v %v", polls, err)
		}
		if again, _, _ := e.store.ClaimPolls(ctx, 10, time.Minute); len(again) != 0 {
			t.Errorf("claimed polls handed out again within the lease: %v", again)
		}
		if err := e.store.DeferPoll(ctx, polls[0].ID, e.clock.Now().Add(10*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := e.store.DeferPoll(ctx, polls[1].ID, e.clock.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(11 * time.Second)
		if got, _, _ := e.store.ClaimPolls(ctx, 10, time.Minute); len(got) != 1 || got[0].ID != polls[0].ID {
			t.Errorf("due polls after reschedule = %v, want [%s]", got, polls[0].ID)
		}
		// A final state leaves the poll schedule.
		if _, err := e.store.updateWith(ctx, polls[2].ID, func(g *Gate) error { return g.Transition(StateSucceeded, e.clock.Now()) }); err != nil {
			t.Fatal(err)
		}
		if _, err := e.rdb.ZScore(ctx, e.store.pollKey(), polls[2].ID).Result(); !errors.Is(err, redis.Nil) {
			t.Errorf("succeeded gate still on the poll schedule")
		}
	})
}

// TestBeginTriggerAttempt: the store tells a grant's first attempt (no
// provider call can have been made, however often the trigger was
// delivered) from one that takes over a dead consumer's, which may have.
func TestBeginTriggerAttempt(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		g := mustCreate(t, e.store, newGate("deploy-api", 1, time.Hour))
		if _, a, err := e.store.BeginTriggerAttempt(ctx, g.ID); a != AttemptNone || err != nil {
			t.Errorf("pending: %v %v", a, err)
		}
		if _, _, err := e.store.Decide(ctx, g.ID, bob, true, "", ""); err != nil {
			t.Fatal(err)
		}
		if _, a, err := e.store.BeginTriggerAttempt(ctx, g.ID); a != AttemptFirst || err != nil {
			t.Errorf("approved: %v %v, want the first attempt", a, err)
		}
		if _, a, err := e.store.BeginTriggerAttempt(ctx, g.ID); a != AttemptNone || !errors.Is(err, ErrTriggerBusy) {
			t.Errorf("live lease: %v %v, want busy", a, err)
		}
		e.clock.Advance(DefaultTriggerVisibility)
		if _, a, err := e.store.BeginTriggerAttempt(ctx, g.ID); a != AttemptResumed || err != nil {
			t.Errorf("lease run out: %v %v, want a resumed attempt", a, err)
		}
	})
}

func TestBeginTriggerStates(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		g := mustCreate(t, e.store, newGate("deploy-api", 1, time.Hour))
		if _, ok, err := e.store.BeginTrigger(ctx, g.ID); ok || err != nil {
			t.Errorf("BeginTrigger on pending: %v %v", ok, err)
		}
		if _, _, err := e.store.Decide(ctx, g.ID, bob, true, "", ""); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := e.store.BeginTrigger(ctx, g.ID); !ok {
			t.Fatal("BeginTrigger on approved refused")
		}
		// A reclaimed trigger finds the gate triggering with its lease run
		// out (the consumer died): call again (idempotent).
		e.clock.Advance(DefaultTriggerVisibility)
		got, ok, err := e.store.BeginTrigger(ctx, g.ID)
		if !ok || err != nil || got.Attempts != 2 {
			t.Errorf("BeginTrigger on triggering: %v %v attempts=%d", ok, err, got.Attempts)
		}
		if _, err := e.store.FinishTrigger(ctx, g.ID, pipelines.Run{}, errors.New("boom"), "", time.Time{}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.Cancel(ctx, g.ID, bob, ""); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := e.store.BeginTrigger(ctx, g.ID); ok || err != nil {
			t.Errorf("BeginTrigger on cancelled: %v %v", ok, err)
		}
		if _, err := e.store.FinishTrigger(ctx, g.ID, pipelines.Run{}, errors.New("boom"), "", time.Time{}); !isTransition(err, StateCancelled, StateTriggerFailed) {
			t.Errorf("failed FinishTrigger on cancelled: %v", err)
		}
		if _, _, err := e.store.BeginTrigger(ctx, "g_missing"); !errors.Is(err, ErrNotFound) {
			t.Errorf("BeginTrigger on missing gate: %v", err)
		}
	})
}

func TestExpireDue(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		short := map[string]bool{}
		for range 20 {
			short[mustCreate(t, e.store, newGate("deploy-api", 1, 10*time.Minute)).ID] = true
		}
		long := mustCreate(t, e.store, newGate("deploy-api", 1, time.Hour))
		decided := mustCreate(t, e.store, newGate("deploy-api", 1, 10*time.Minute))
		if _, _, err := e.store.Decide(ctx, decided.ID, bob, true, "", ""); err != nil {
			t.Fatal(err)
		}
		if got, err := e.store.ExpireDue(ctx, 100); err != nil || len(got) != 0 {
			t.Fatalf("nothing due yet: %v %v", got, err)
		}
		e.clock.Advance(10 * time.Minute)
		// Four replicas race; each gate is expired by exactly one of them.
		var (
			mu  sync.Mutex
			got = map[string]int{}
			wg  sync.WaitGroup
		)
		for range 4 {
			wg.Go(func() {
				for {
					gs, err := e.store.ExpireDue(ctx, 3)
					if err != nil {
						t.Error(err)
						return
					}
					if len(gs) == 0 {
						return
					}
					mu.Lock()
					for _, g := range gs {
						if g.State != StateExpired {
							t.Errorf("returned gate in %s", g.State)
						}
						got[g.ID]++
					}
					mu.Unlock()
					for _, g := range gs {
						if err := e.store.AckExpired(ctx, g.ID); err != nil {
							t.Error(err)
						}
					}
				}
			})
		}
		wg.Wait()
		if len(got) != len(short) {
			t.Errorf("expired %d gates, want %d", len(got), len(short))
		}
		for id, n := range got {
			if !short[id] || n != 1 {
				t.Errorf("gate %s expired %d times (short=%v)", id, n, short[id])
			}
		}
		g, _ := e.store.Get(ctx, long.ID)
		if g.State != StatePending {
			t.Errorf("long gate %s", g.State)
		}
		// Only the long gate is left on the schedule; a vote on an expired gate fails.
		if m := e.rdb.ZRange(ctx, e.store.dueKey(), 0, -1).Val(); len(m) != 1 || m[0] != long.ID {
			t.Errorf("due after expiry = %v", m)
		}
		for id := range short {
			if _, _, err := e.store.Decide(ctx, id, bob, true, "", ""); !errors.Is(err, ErrNotPending) {
				t.Errorf("vote on expired gate: %v", err)
			}
			break
		}
		if c := triggerCounts(t, e); len(c) != 1 {
			t.Errorf("triggers = %v", c)
		}
		// Past the deadline but before ExpireDue ran, a vote fails closed.
		e.clock.Advance(time.Hour)
		if _, _, err := e.store.Decide(ctx, long.ID, bob, true, "", ""); !errors.Is(err, ErrExpired) {
			t.Errorf("late vote: %v", err)
		}
	})
}
