package engine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/pipelines"
)

func TestNewChecksInvariants(t *testing.T) {
	t.Parallel()
	base := func() Options {
		return Options{Store: &approvals.Store{}, Teams: newTeams(), Instance: "i", TriggerVisibility: time.Minute, TriggerBudget: 30 * time.Second}
	}
	cases := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"budget not under visibility", func(o *Options) { o.TriggerBudget = time.Minute }, "must be shorter than the store's TriggerVisibility"},
		{"no visibility", func(o *Options) { o.TriggerVisibility = 0 }, "TriggerVisibility is required"},
		{"provider timeout over budget", func(o *Options) { o.ProviderTimeout = 40 * time.Second }, "must not exceed TriggerBudget"},
		{"poll lease not over provider timeout", func(o *Options) { o.PollLease = 30 * time.Second }, "PollLease 30s must be longer than ProviderTimeout 30s"},
		{"per provider over pool", func(o *Options) { o.TriggerWorkers, o.PerProvider = 2, 3 }, "per-provider limit exceeds its pool"},
		{"no store", func(o *Options) { o.Store = nil }, "Store is required"},
		{"pipeline without provider", func(o *Options) { o.Pipelines = map[string]*Pipeline{"p": {}} }, `pipeline "p" needs`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := base()
			c.edit(&o)
			_, err := New(o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New = %v, want an error containing %q", err, c.want)
			}
		})
	}
	if _, err := New(base()); err != nil {
		t.Fatalf("valid options refused: %v", err)
	}
}

// TestPacedConversationDoesNotDelayTriggers: a conversation whose cards
// can never be sent (paced, throttled) holds up neither its own gate's
// trigger nor another gate's; its card is simply tried again later.
func TestPacedConversationDoesNotDelayTriggers(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		s := newStore(t, rdb, prefix)
		tm := newTeams()
		tm.paced["slow"] = 50 * time.Millisecond
		prov := newProvider("ci")
		run(t, s, tm, "r1", map[string]*Pipeline{"deploy": pipeline(prov, "ci")})
		slow := posted(t, s, "deploy", "slow", 1)
		fast := posted(t, s, "deploy", "fast", 1)
		approve(t, s, slow.ID, bob)
		approve(t, s, fast.ID, bob)
		eventually(t, "both gates triggered and running", func() bool {
			return stateOf(t, s, slow.ID) == approvals.StateSucceeded && stateOf(t, s, fast.ID) == approvals.StateSucceeded
		})
		if len(tm.sendsOf(slow.ID)) != 0 {
			t.Errorf("a card went out in the paced conversation: %+v", tm.sendsOf(slow.ID))
		}
		eventually(t, "the paced card retried", func() bool { return tm.callsIn("slow") >= 3 })
		eventually(t, "the other conversation's card current", func() bool {
			ss := tm.sendsOf(fast.ID)
			return len(ss) > 0 && ss[len(ss)-1].state == approvals.StateSucceeded
		})
		if prov.count(slow.ID) != 1 || prov.count(fast.ID) != 1 {
			t.Errorf("provider calls: slow %d, fast %d; want 1 each", prov.count(slow.ID), prov.count(fast.ID))
		}
		// Once the conversation may be called again, the latest state
		// arrives, once.
		tm.mu.Lock()
		delete(tm.paced, "slow")
		tm.mu.Unlock()
		eventually(t, "the paced card delivered", func() bool { return len(tm.sendsOf(slow.ID)) > 0 })
		if ss := tm.sendsOf(slow.ID); len(ss) != 1 || ss[0].state != approvals.StateSucceeded {
			t.Errorf("after pacing: %+v, want one send of the final state", ss)
		}
	})
}

// TestHangingProviderDoesNotDelayOthers: a provider that does not answer
// takes its own slots (PerProvider) and no more; another provider's
// triggers run meanwhile, and the hung gates still run once each.
func TestHangingProviderDoesNotDelayOthers(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		s := newStore(t, rdb, prefix)
		tm := newTeams()
		hung := newProvider("hung")
		hung.gate = make(chan struct{})
		ok := newProvider("ok")
		run(t, s, tm, "r1", map[string]*Pipeline{"slow": pipeline(hung, "hung"), "slow-too": pipeline(hung, "hung"), "fast": pipeline(ok, "ok")})
		var stuck []string
		for i := range 6 {
			p := "slow"
			if i%2 == 1 {
				p = "slow-too" // two pipelines on one provider share its slots
			}
			g := posted(t, s, p, "c", 1)
			approve(t, s, g.ID, bob)
			stuck = append(stuck, g.ID)
		}
		for range DefaultPerProvider {
			<-hung.started
		}
		g := posted(t, s, "fast", "c", 1)
		approve(t, s, g.ID, bob)
		eventually(t, "the other provider's trigger", func() bool { return ok.count(g.ID) == 1 })
		if n := hung.total(); n != DefaultPerProvider {
			t.Errorf("hung provider has %d calls in flight, want its limit %d", n, DefaultPerProvider)
		}
		close(hung.gate)
		eventually(t, "every hung gate triggered", func() bool { return hung.total() == len(stuck) })
		for _, id := range stuck {
			eventually(t, "hung gate "+id+" running on", func() bool { return stateOf(t, s, id) == approvals.StateSucceeded })
			if n := hung.count(id); n != 1 {
				t.Errorf("gate %s triggered %d times", id, n)
			}
		}
	})
}

// TestCardCoalescing: changes made while a gate's card update is in flight
// end in one more update showing the latest state; a change that shows
// nothing new sends nothing.
func TestCardCoalescing(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		s := newStore(t, rdb, prefix)
		tm := newTeams()
		release := make(chan struct{})
		tm.block["c"] = release
		run(t, s, tm, "r1", map[string]*Pipeline{"deploy": pipeline(newProvider("ci"), "ci")})
		g := posted(t, s, "deploy", "c", 4)
		approve(t, s, g.ID, bob) // 1 of 4: a sync starts and blocks
		eventually(t, "the first update in flight", func() bool { return tm.ncalls() > 0 })
		approve(t, s, g.ID, carol)
		approve(t, s, g.ID, approvals.Person{ID: "29:dave"})
		close(release)
		eventually(t, "the latest state sent", func() bool {
			ss := tm.sendsOf(g.ID)
			return len(ss) > 0 && ss[len(ss)-1].digest == "pending/3"
		})
		time.Sleep(100 * time.Millisecond) // nothing else is due
		ss := tm.sendsOf(g.ID)
		if len(ss) != 2 {
			t.Errorf("%d sends for 3 changes, want 2 (the one in flight, then the latest): %+v", len(ss), ss)
		}
		for i := 1; i < len(ss); i++ {
			if ss[i].digest == ss[i-1].digest {
				t.Errorf("identical card sent twice in a row: %+v", ss)
			}
		}
		// A change the card does not show (a re-recorded post) is synced
		// but not sent.
		before := tm.ncalls()
		if _, err := s.SetPost(t.Context(), g.ID, g.Post, ""); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the sync of the invisible change", func() bool { return tm.ncalls() > before })
		time.Sleep(50 * time.Millisecond)
		if n := len(tm.sendsOf(g.ID)); n != 2 {
			t.Errorf("an unchanged card was sent again (%d sends)", n)
		}
	})
}

// TestHeldCardWaitsForTheClickAnswer: while a click's answer is being
// written (HoldCard), the shared update of the click's change and of
// changes right after it (a trigger failing at once) wait; released, the
// latest state goes out — so no older card lands after the answer, and a
// fast failure shows its Retry.
func TestHeldCardWaitsForTheClickAnswer(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		s := newStore(t, rdb, prefix)
		tm := newTeams()
		prov := newProvider("ci")
		prov.errs = []error{&pipelines.APIError{Provider: "ci", StatusCode: 400, Message: "bad ref"}}
		run(t, s, tm, "r1", map[string]*Pipeline{"deploy": pipeline(prov, "ci")})
		g := posted(t, s, "deploy", "c", 1)
		// The posted card (no digest on record) is synced once first; the
		// click comes after it.
		eventually(t, "the posted card's sync", func() bool { return len(tm.sendsOf(g.ID)) == 1 })
		if err := s.HoldCard(t.Context(), g.ID, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		approve(t, s, g.ID, bob)
		eventually(t, "the fast failure", func() bool { return stateOf(t, s, g.ID) == approvals.StateTriggerFailed })
		time.Sleep(100 * time.Millisecond)
		if ss := tm.sendsOf(g.ID); len(ss) != 1 {
			t.Fatalf("shared card sent while the click's answer was held: %+v", ss[1:])
		}
		if err := s.ReleaseCard(t.Context(), g.ID); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the shared card after the release", func() bool { return len(tm.sendsOf(g.ID)) > 1 })
		if ss := tm.sendsOf(g.ID)[1:]; len(ss) != 1 || ss[0].state != approvals.StateTriggerFailed {
			t.Errorf("shared updates after the release %+v, want one, showing trigger_failed", ss)
		}
	})
}

// TestOutboxSurvivesAStoppedReplica: the follow-up work of a change is in
// Redis from the change's own transaction, so a change made while no
// engine runs (a replica killed right after it) is carried out by the next
// engine: the card shows the final state, the provider is called once.
// A card sync claimed by a replica that then died is taken over once its
// lease ends.
func TestOutboxSurvivesAStoppedReplica(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		s := newStore(t, rdb, prefix)
		g := posted(t, s, "deploy", "c", 1)
		approve(t, s, g.ID, bob)
		// A replica claims the card sync and dies before sending.
		if cs, _, err := s.ClaimCardSyncs(t.Context(), 10, 300*time.Millisecond); err != nil || len(cs) != 1 {
			t.Fatalf("claim: %+v %v", cs, err)
		}
		tm := newTeams()
		prov := newProvider("ci")
		run(t, s, tm, "r2", map[string]*Pipeline{"deploy": pipeline(prov, "ci")})
		eventually(t, "the final state on the card", func() bool {
			ss := tm.sendsOf(g.ID)
			return len(ss) > 0 && ss[len(ss)-1].state == approvals.StateSucceeded
		})
		if n := prov.count(g.ID); n != 1 {
			t.Errorf("provider called %d times, want 1", n)
		}
	})
}

// TestTwoReplicasShareTheWork: two engines on one store run every gate's
// trigger once and never send the same card twice in a row.
func TestTwoReplicasShareTheWork(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		s1, s2 := newStore(t, rdb, prefix), newStore(t, rdb, prefix)
		tm := newTeams()
		prov := newProvider("ci")
		pls := func() map[string]*Pipeline { return map[string]*Pipeline{"deploy": pipeline(prov, "ci")} }
		run(t, s1, tm, "r1", pls())
		run(t, s2, tm, "r2", pls())
		var ids []string
		for i := range 20 {
			st := s1
			if i%2 == 1 {
				st = s2
			}
			g := posted(t, st, "deploy", "c"+string(rune('a'+i%5)), 1)
			approve(t, st, g.ID, bob)
			ids = append(ids, g.ID)
		}
		for _, id := range ids {
			eventually(t, "gate "+id+" final", func() bool { return stateOf(t, s1, id) == approvals.StateSucceeded })
			eventually(t, "gate "+id+" final card", func() bool {
				ss := tm.sendsOf(id)
				return len(ss) > 0 && ss[len(ss)-1].state == approvals.StateSucceeded
			})
		}
		for _, id := range ids {
			if n := prov.count(id); n != 1 {
				t.Errorf("gate %s triggered %d times", id, n)
			}
			ss := tm.sendsOf(id)
			for i := 1; i < len(ss); i++ {
				if ss[i].digest == ss[i-1].digest {
					t.Errorf("gate %s: identical card sent twice: %+v", id, ss)
				}
			}
		}
	})
}

func TestTriggerRetries(t *testing.T) {
	t.Parallel()
	apiErr := func(status int) error {
		return &pipelines.APIError{Provider: "fake", Op: "trigger run", StatusCode: status}
	}
	cases := []struct {
		name       string
		idempotent bool
		errs       []error
		wantCalls  int
		wantState  approvals.State
	}{
		{"a 502 is not repeated: the run may have started", false, []error{apiErr(502)}, 1, approvals.StateTriggerFailed},
		{"a timeout is not repeated", false, []error{&pipelines.APIError{Provider: "fake", Op: "trigger run", Err: context.DeadlineExceeded}}, 1, approvals.StateTriggerFailed},
		{"429 is repeated: nothing started", false, []error{apiErr(429)}, 2, approvals.StateRunning},
		{"an idempotent provider is repeated after a 502", true, []error{apiErr(502)}, 2, approvals.StateRunning},
		{"400 is final", true, []error{apiErr(400)}, 1, approvals.StateTriggerFailed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := newProvider("ci")
			p.errs = c.errs
			var prov pipelines.Provider = p
			if c.idempotent {
				prov = idempotentProvider{p}
			}
			e, s, tr := claimed(t, prov)
			e.processTrigger(t.Context(), e.opts.Pipelines["deploy"], tr)
			if n := p.count(tr.GateID); n != c.wantCalls {
				t.Errorf("provider called %d times, want %d", n, c.wantCalls)
			}
			g, err := s.Get(t.Context(), tr.GateID)
			if err != nil {
				t.Fatal(err)
			}
			if g.State != c.wantState {
				t.Errorf("gate %s, want %s (error %q)", g.State, c.wantState, g.Error)
			}
		})
	}
}

// TestRedeliveredTriggerNeverRunsTwice: a trigger delivered again (its
// worker died mid-call, after BeginTrigger) calls a provider that cannot
// recognise the earlier call never; the gate asks a person to check
// instead.
func TestRedeliveredTriggerNeverRunsTwice(t *testing.T) {
	t.Parallel()
	for _, idempotent := range []bool{false, true} {
		p := newProvider("ci")
		var prov pipelines.Provider = p
		if idempotent {
			prov = idempotentProvider{p}
		}
		e, s, first := claimedBy(t, prov, shortVisibility)
		// The dead worker began the trigger (it may have called the
		// provider) and never finished; its lease runs out.
		tr := reclaimed(t, s, first.GateID, func(id string) {
			if _, call, err := s.BeginTrigger(t.Context(), id); !call || err != nil {
				t.Fatalf("begin: %v %v", call, err)
			}
		})
		e.processTrigger(t.Context(), e.opts.Pipelines["deploy"], tr)
		g, err := s.Get(t.Context(), tr.GateID)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case idempotent && (p.count(g.ID) != 1 || g.State != approvals.StateRunning):
			t.Errorf("idempotent provider: %d calls, gate %s; want the trigger repeated once", p.count(g.ID), g.State)
		case !idempotent && (p.count(g.ID) != 0 || g.State != approvals.StateTriggerFailed):
			t.Errorf("non-idempotent provider: %d calls, gate %s; want no call and trigger_failed", p.count(g.ID), g.State)
		case !idempotent && !strings.Contains(g.Error, "Check fake before pressing Retry"):
			t.Errorf("trigger_failed message %q does not say what to check", g.Error)
		}
	}
}

// TestRedeliveredUnbegunTriggerRuns: a worker that died after claiming a
// trigger but before beginning it (it was waiting for a provider slot)
// never called the provider, so the redelivery must start the run, even
// with a provider that cannot recognise a repeated call. It used to be
// taken for an interrupted call (the stream counted two deliveries) and
// the approved gate ended trigger_failed without any run.
func TestRedeliveredUnbegunTriggerRuns(t *testing.T) {
	t.Parallel()
	p := newProvider("ci")
	e, s, first := claimedBy(t, p, shortVisibility)
	tr := reclaimed(t, s, first.GateID, func(string) {})
	if tr.Deliveries < 2 {
		t.Fatalf("deliveries = %d, want a redelivery", tr.Deliveries)
	}
	e.processTrigger(t.Context(), e.opts.Pipelines["deploy"], tr)
	g, err := s.Get(t.Context(), tr.GateID)
	if err != nil {
		t.Fatal(err)
	}
	if p.count(g.ID) != 1 || g.State != approvals.StateRunning {
		t.Fatalf("%d provider calls, gate %s (%q); want one call and running", p.count(g.ID), g.State, g.Error)
	}
}

// shortVisibility lets a test's trigger lease run out at once.
const shortVisibility = 50 * time.Millisecond

// reclaimed lets the trigger claimed by the dead worker "w1" (after
// dead(gate id), what it did before dying) be reclaimed by "w2" once
// its visibility ran out.
func reclaimed(t *testing.T, s *approvals.Store, id string, dead func(id string)) approvals.Trigger {
	t.Helper()
	dead(id)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(2 * shortVisibility)
		trs, err := s.ClaimTriggers(t.Context(), "w2", map[string]int{"deploy": 1}, 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if len(trs) == 1 {
			return trs[0]
		}
	}
	t.Fatal("the dead worker's trigger was not redelivered")
	return approvals.Trigger{}
}

// claimed approves a gate and claims its trigger, with an engine that is
// not running, for driving processTrigger directly.
func claimed(t *testing.T, prov pipelines.Provider) (*Engine, *approvals.Store, approvals.Trigger) {
	return claimedBy(t, prov, 10*time.Second)
}

// claimedBy is claimed with the store's trigger visibility.
func claimedBy(t *testing.T, prov pipelines.Provider, visibility time.Duration) (*Engine, *approvals.Store, approvals.Trigger) {
	t.Helper()
	mr := miniredis.RunT(t)
	s, err := approvals.NewStore(redis.NewClient(&redis.Options{Addr: mr.Addr()}), approvals.Options{Prefix: "gatebot:", TriggerVisibility: visibility})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{Store: s, Teams: newTeams(), Instance: "w1", Pipelines: map[string]*Pipeline{"deploy": pipeline(prov, "ci")},
		TriggerVisibility: time.Minute, TriggerBudget: 20 * time.Second, ProviderTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	g := posted(t, s, "deploy", "c", 1)
	approve(t, s, g.ID, bob)
	trs, err := s.ClaimTriggers(t.Context(), "w1", map[string]int{"deploy": 1}, 10*time.Millisecond)
	if err != nil || len(trs) != 1 {
		t.Fatalf("claim: %v %v", trs, err)
	}
	return e, s, trs[0]
}

func TestSafeProviderMessage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err  error
		want string
	}{
		{&pipelines.APIError{StatusCode: 403, Code: "Forbidden", Message: "no access"}, "Forbidden: no access"},
		{&pipelines.APIError{StatusCode: 502}, "HTTP 502"},
		{pipelines.ErrNoRun, "the provider accepted the request but started no run"},
		{context.DeadlineExceeded, "the provider did not answer in time"},
		{errors.New("dial tcp 10.0.0.1: token=secret"), "the provider call failed"},
	}
	for _, c := range cases {
		if got := SafeProviderMessage(c.err); got != c.want {
			t.Errorf("SafeProviderMessage(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// observer records what the engine measures.
type observer struct {
	mu      sync.Mutex
	calls   []string // provider/op/outcome
	outbox  map[string]int
	reports int
}

func (o *observer) ProviderCall(provider, op, outcome string, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, provider+"/"+op+"/"+outcome)
}

func (o *observer) OutboxDepth(kind string, n int, oldest time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.outbox == nil {
		o.outbox = map[string]int{}
	}
	o.outbox[kind] = n
	o.reports++
}

// TestObserverSeesProviderCalls: each trigger and status call is measured
// with its provider, operation and outcome.
func TestObserverSeesProviderCalls(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	s := newStore(t, redis.NewClient(&redis.Options{Addr: mr.Addr()}), "gatebot:")
	obs := &observer{}
	prov := newProvider("ci")
	e, err := New(Options{Store: s, Teams: newTeams(), Instance: "r1", Observer: obs,
		Pipelines:         map[string]*Pipeline{"deploy": pipeline(prov, "ci")},
		TriggerVisibility: 10 * time.Second, TriggerBudget: 5 * time.Second, ProviderTimeout: time.Second, Tick: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	g := posted(t, s, "deploy", "c", 1)
	approve(t, s, g.ID, bob)
	eventually(t, "the gate to end", func() bool { return stateOf(t, s, g.ID) == approvals.StateSucceeded })
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if !slices.Contains(obs.calls, "ci/trigger/ok") || !slices.Contains(obs.calls, "ci/status/ok") {
		t.Errorf("provider calls observed: %v, want ci/trigger/ok and ci/status/ok", obs.calls)
	}
}

// TestRemindsOnce: a gate still pending at its reminder time gets one
// reminder; the approvers are not reminded again on the next ticks.
func TestRemindsOnce(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		s := newStore(t, rdb, prefix)
		tm := newTeams()
		run(t, s, tm, "r1", map[string]*Pipeline{"deploy": pipeline(newProvider("ci"), "ci")})
		g, _, err := s.Create(t.Context(), &approvals.Gate{Pipeline: "deploy", Requester: alice,
			Policy: approvals.Policy{Required: 1, Timeout: 3 * time.Second, RemindBefore: 2500 * time.Millisecond}}, "")
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "the reminder", func() bool {
			tm.mu.Lock()
			defer tm.mu.Unlock()
			return len(tm.reminded) > 0
		})
		time.Sleep(1500 * time.Millisecond) // past more reminder ticks
		tm.mu.Lock()
		defer tm.mu.Unlock()
		if len(tm.reminded) != 1 || tm.reminded[0] != g.ID {
			t.Errorf("reminders %v, want one for %s", tm.reminded, g.ID)
		}
	})
}

// TestOwnWorkWakesTheWorkers: the card and poll workers sleep until their
// next entry is due, and what this replica's store queues wakes them: with
// a tick of a minute (a first look after 30 s, idle looks every 4
// minutes), a gate still goes from its posted card to the result on the
// card within the test's few seconds.
func TestOwnWorkWakesTheWorkers(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		s := newStore(t, rdb, prefix)
		tm := newTeams()
		prov := newProvider("ci")
		runWith(t, s, tm, "r1", map[string]*Pipeline{"deploy": pipeline(prov, "ci")}, func(o *Options) { o.Tick = time.Minute })
		g := posted(t, s, "deploy", "c", 1)
		eventually(t, "the posted card's sync", func() bool { return len(tm.sendsOf(g.ID)) == 1 })
		approve(t, s, g.ID, bob)
		eventually(t, "the result on the card", func() bool {
			ss := tm.sendsOf(g.ID)
			return len(ss) > 0 && ss[len(ss)-1].state == approvals.StateSucceeded
		})
		if n := prov.count(g.ID); n != 1 {
			t.Errorf("provider called %d times, want 1", n)
		}
	})
}
