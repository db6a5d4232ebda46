package approvals

import (
	"context"
	"errors"
	"fmt"
	"github.com/gatebot/gatebot/pipelines"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Crash points in processTrigger, in order.
var crashPoints = []string{"claim", "begin", "provider", "finish"}

const crashExitCode = 17

// fakeProvider stands in for a pipeline provider that honours idempotency
// keys, keeping its books in Redis so that they survive the consumer
// process: calls counts every call per key, created counts runs started.
type fakeProvider struct {
	rdb    redis.UniversalClient
	prefix string
}

func (f fakeProvider) Run(ctx context.Context, idempotencyKey string) (pipelines.Run, error) {
	if err := f.rdb.HIncrBy(ctx, f.prefix+"fake:calls", idempotencyKey, 1).Err(); err != nil {
		return pipelines.Run{}, err
	}
	newID := fmt.Sprintf("run-%d", time.Now().UnixNano())
	set, err := f.rdb.SetNX(ctx, f.prefix+"fake:run:"+idempotencyKey, newID, 0).Result()
	if err != nil {
		return pipelines.Run{}, err
	}
	if set {
		if err := f.rdb.HIncrBy(ctx, f.prefix+"fake:created", idempotencyKey, 1).Err(); err != nil {
			return pipelines.Run{}, err
		}
	}
	id, err := f.rdb.Get(ctx, f.prefix+"fake:run:"+idempotencyKey).Result()
	return pipelines.Run{ID: id, Status: "queued"}, err
}

// processTrigger is what a trigger worker does with one claimed trigger;
// hook is called after each step so a test can kill the process there.
func processTrigger(ctx context.Context, s *Store, prov fakeProvider, tr Trigger, hook func(point string)) error {
	g, call, err := s.BeginTrigger(ctx, tr.GateID)
	if errors.Is(err, ErrTriggerBusy) {
		return nil // another consumer holds the lease: no call, no ack
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	hook("begin")
	if call {
		run, runErr := prov.Run(ctx, g.ID)
		hook("provider")
		var te *TransitionError
		if _, err := s.FinishTrigger(ctx, g.ID, run, runErr, "provider failed", time.Time{}); err != nil && !errors.As(err, &te) {
			return err
		}
		hook("finish")
	}
	return s.AckTrigger(ctx, tr)
}

// TestHelperProcess is the trigger consumer the crash test runs as a
// separate process; it does nothing unless started by that test.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("GATEBOT_CRASH_HELPER") != "1" {
		t.Skip("helper process for TestTriggerConsumerCrash")
	}
	var rdb redis.UniversalClient
	if addrs := clusterAddrs(); os.Getenv("GATEBOT_CRASH_REDIS") == "cluster" {
		rdb = redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	} else {
		opt, err := redis.ParseURL(os.Getenv("GATEBOT_CRASH_REDIS"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		rdb = redis.NewClient(opt)
	}
	prefix := os.Getenv("GATEBOT_CRASH_PREFIX")
	point := os.Getenv("GATEBOT_CRASH_POINT")
	after, _ := strconv.Atoi(os.Getenv("GATEBOT_CRASH_AFTER"))
	vis, err := time.ParseDuration(os.Getenv("GATEBOT_CRASH_VISIBILITY"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// The same visibility as the survivor: the lease the doomed consumer
	// takes in BeginTrigger is what the survivor waits out.
	s, err := NewStore(rdb, Options{Prefix: prefix, TriggerVisibility: vis})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := context.Background()
	prov := fakeProvider{rdb: rdb, prefix: prefix}
	processed := 0
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		trs, err := s.ClaimTriggers(ctx, "doomed", map[string]int{"deploy-api": 5}, 100*time.Millisecond)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		for _, tr := range trs {
			processed++
			crash := func(p string) {
				if processed == after && p == point {
					rdb.Set(ctx, prefix+"fake:crashed", tr.GateID, 0)
					os.Exit(crashExitCode) // no deferred cleanup, no ack: a real death
				}
			}
			crash("claim")
			if err := processTrigger(ctx, s, prov, tr, crash); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
		}
	}
	fmt.Fprintln(os.Stderr, "never reached the crash point")
	os.Exit(3)
}

// TestTriggerConsumerCrash kills a trigger consumer process at each point
// between claim and ack and checks that a second consumer takes over:
// every gate's provider run is created exactly once (by idempotency key)
// and every gate ends final.
func TestTriggerConsumerCrash(t *testing.T) {
	const gates = 20
	for _, real := range []bool{false, true} {
		for _, point := range crashPoints {
			name := "miniredis/" + point
			if real {
				name = "redis/" + point
			}
			t.Run(name, func(t *testing.T) {
				e := newEnv(t, real, Options{Now: time.Now, TriggerVisibility: 300 * time.Millisecond})
				runCrash(t, e, point, gates)
			})
		}
	}
}

func runCrash(t *testing.T, e *env, point string, n int) {
	ctx := context.Background()
	ids := map[string]bool{}
	for range n {
		g := mustCreate(t, e.store, newGate("deploy-api", 1, time.Hour))
		if _, out, err := e.store.Decide(ctx, g.ID, bob, true, "", ""); err != nil || out != OutcomeApproved {
			t.Fatalf("approve: %v %v", out, err)
		}
		ids[g.ID] = true
	}
	url := realRedisURL()
	switch {
	case e.mr != nil:
		url = "redis://" + e.mr.Addr() + "/0"
	case clusterAddrs() != nil:
		url = "cluster" // the helper reads GATEBOT_TEST_REDIS_CLUSTER too
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "GATEBOT_CRASH_HELPER=1", "GATEBOT_CRASH_REDIS="+url,
		"GATEBOT_CRASH_PREFIX="+e.prefix, "GATEBOT_CRASH_POINT="+point, "GATEBOT_CRASH_AFTER=3",
		"GATEBOT_CRASH_VISIBILITY="+e.store.opts.TriggerVisibility.String())
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != crashExitCode {
		t.Fatalf("helper did not crash as asked: %v\n%s", err, out)
	}
	crashed := e.rdb.Get(ctx, e.prefix+"fake:crashed").Val()
	if !ids[crashed] {
		t.Fatalf("crashed on unknown gate %q", crashed)
	}
	pending, err := e.rdb.XPending(ctx, e.store.triggerKey("deploy-api"), triggerGroup).Result()
	if err != nil || pending.Count == 0 {
		t.Fatalf("dead consumer left no pending triggers: %+v %v", pending, err)
	}

	// The survivor: claims, reclaims after the visibility timeout, and
	// polls runs to their end.
	prov := fakeProvider{rdb: e.rdb, prefix: e.prefix}
	deadline := time.Now().Add(30 * time.Second)
	for final := 0; final < n; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d gates final before the deadline", final, n)
		}
		trs, err := e.store.ClaimTriggers(ctx, "survivor", map[string]int{"deploy-api": 10}, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range trs {
			if err := processTrigger(ctx, e.store, prov, tr, func(string) {}); err != nil {
				t.Fatal(err)
			}
		}
		polls, _, err := e.store.ClaimPolls(ctx, 100, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, pg := range polls {
			id := pg.ID
			if _, err := e.store.updateWith(ctx, id, func(g *Gate) error {
				g.Run.Status = "succeeded"
				return g.Transition(StateSucceeded, time.Now())
			}); err != nil {
				t.Fatal(err)
			}
		}
		final = 0
		for id := range ids {
			if g, err := e.store.Get(ctx, id); err == nil && g.State.Final() {
				final++
			}
		}
	}

	calls, err := e.rdb.HGetAll(ctx, e.prefix+"fake:calls").Result()
	if err != nil {
		t.Fatal(err)
	}
	created, err := e.rdb.HGetAll(ctx, e.prefix+"fake:created").Result()
	if err != nil {
		t.Fatal(err)
	}
	totalCalls := 0
	for id := range ids {
		g, err := e.store.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if g.State != StateSucceeded || g.Run == nil || g.Run.ID == "" {
			t.Errorf("gate %s ended %s run %+v", id, g.State, g.Run)
		}
		if created[id] != "1" {
			t.Errorf("gate %s: provider created %q runs, want 1", id, created[id])
		}
		// Only a death between the provider call and recording its run
		// makes the survivor call again, with the same idempotency key.
		want := "1"
		if id == crashed && point == "provider" {
			want = "2"
		}
		if calls[id] != want {
			t.Errorf("gate %s: %s provider calls, want %s", id, calls[id], want)
		}
		c, _ := strconv.Atoi(calls[id])
		totalCalls += c
	}
	if len(created) != n || len(calls) != n {
		t.Errorf("provider saw %d keys (%d created), want %d", len(calls), len(created), n)
	}
	if p, err := e.rdb.XPending(ctx, e.store.triggerKey("deploy-api"), triggerGroup).Result(); err != nil || p.Count != 0 {
		t.Errorf("pending triggers left: %+v %v", p, err)
	}
	if l := e.rdb.XLen(ctx, e.store.triggerKey("deploy-api")).Val(); l != 0 {
		t.Errorf("trigger stream length %d after all acks", l)
	}
	if l := e.rdb.ZCard(ctx, e.store.pollKey()).Val(); l != 0 {
		t.Errorf("poll schedule length %d with all gates final", l)
	}
	t.Logf("crash at %s on gate %s: %d gates succeeded, %d runs, %d provider calls", point, crashed, n, len(created), totalCalls)
}
