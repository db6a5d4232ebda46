package approvals

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// fakeClock is an injected clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	// Near real time so that audit stream ids (server clock) and gate
	// times stay comparable.
	return &fakeClock{t: time.Now().UTC().Truncate(time.Second)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is one store under test with its Redis and clock.
type env struct {
	rdb    redis.UniversalClient
	mr     *miniredis.Miniredis // nil for real Redis
	prefix string
	clock  *fakeClock
	store  *Store
	real   bool
}

// realRedisURL is the server the real-Redis variants use.
func realRedisURL() string {
	if u := os.Getenv("GATEBOT_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

func uniquePrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	// Hash-tagged like a Cluster deployment would be.
	return "{gbtest-" + hex.EncodeToString(b[:]) + "}:"
}

// clusterAddrs are the Redis Cluster nodes the real-Redis variants use
// instead of GATEBOT_TEST_REDIS_URL, when set (.ci/redis-cluster.sh starts
// one): GATEBOT_TEST_REDIS_CLUSTER=127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002.
func clusterAddrs() []string {
	v := os.Getenv("GATEBOT_TEST_REDIS_CLUSTER")
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// realClient connects to the real Redis (or Redis Cluster) or skips the
// test with a clear message when it does not answer.
func realClient(tb testing.TB) redis.UniversalClient {
	tb.Helper()
	if addrs := clusterAddrs(); addrs != nil {
		rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, PoolSize: 64, PoolTimeout: 30 * time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := rdb.ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error { return c.Ping(ctx).Err() }); err != nil {
			_ = rdb.Close()
			tb.Fatalf("GATEBOT_TEST_REDIS_CLUSTER=%s does not answer: %v (start it with .ci/redis-cluster.sh)", strings.Join(addrs, ","), err)
		}
		return rdb
	}
	opt, err := redis.ParseURL(realRedisURL())
	if err != nil {
		tb.Fatalf("GATEBOT_TEST_REDIS_URL: %v", err)
	}
	opt.PoolSize = 64
	opt.PoolTimeout = 30 * time.Second // tests share a loaded machine
	rdb := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		tb.Skipf("real Redis at %s does not answer (%v): skipping the real-Redis variant; start redis-server or set GATEBOT_TEST_REDIS_URL", realRedisURL(), err)
	}
	return rdb
}

// cleanup deletes every key under prefix (on every master of a cluster:
// SCAN reads one node).
func cleanup(tb testing.TB, rdb redis.UniversalClient, prefix string) {
	ctx := context.Background()
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		if err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			cleanupNode(tb, c, prefix)
			return nil
		}); err != nil {
			tb.Errorf("cleanup: %v", err)
		}
		return
	}
	cleanupNode(tb, rdb, prefix)
}

func cleanupNode(tb testing.TB, rdb redis.Cmdable, prefix string) {
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		tb.Errorf("cleanup scan: %v", err)
	}
	for len(keys) > 0 {
		n := min(len(keys), 500)
		// One slot per call: the prefix is hash-tagged, so a multi-key DEL
		// is allowed on a cluster too.
		if err := rdb.Del(ctx, keys[:n]...).Err(); err != nil {
			tb.Errorf("cleanup del: %v", err)
			return
		}
		keys = keys[n:]
	}
}

func newEnv(tb testing.TB, real bool, opts Options) *env {
	tb.Helper()
	e := &env{prefix: uniquePrefix(), clock: newFakeClock(), real: real}
	if real {
		e.rdb = realClient(tb)
		tb.Cleanup(func() {
			cleanup(tb, e.rdb, e.prefix)
			_ = e.rdb.Close()
		})
	} else {
		e.mr = miniredis.RunT(tb)
		e.rdb = redis.NewClient(&redis.Options{Addr: e.mr.Addr(), PoolSize: 64})
		tb.Cleanup(func() { _ = e.rdb.Close() })
	}
	opts.Prefix = e.prefix
	if opts.Now == nil {
		opts.Now = e.clock.Now
	}
	s, err := NewStore(e.rdb, opts)
	if err != nil {
		tb.Fatalf("NewStore: %v", err)
	}
	s.checkRecent = true
	e.store = s
	return e
}

// backends runs fn against miniredis and against the real Redis.
func backends(t *testing.T, opts Options, fn func(t *testing.T, e *env)) {
	t.Helper()
	for _, real := range []bool{false, true} {
		name := "miniredis"
		if real {
			name = "redis"
		}
		t.Run(name, func(t *testing.T) {
			fn(t, newEnv(t, real, opts))
		})
	}
}

var (
	alice = Person{ID: "29:alice", AADObjectID: "aaaa-1111", UPN: "alice@example.com", Name: "Alice"}
	bob   = Person{ID: "29:bob", AADObjectID: "bbbb-2222", UPN: "bob@example.com", Name: "Bob"}
	carol = Person{ID: "29:carol", AADObjectID: "cccc-3333", UPN: "carol@example.com", Name: "Carol"}
	dave  = Person{ID: "29:dave", AADObjectID: "dddd-4444", UPN: "dave@example.com", Name: "Dave"}
	erin  = Person{ID: "29:erin", AADObjectID: "eeee-5555", UPN: "erin@example.com", Name: "Erin"}
)

func newGate(pipeline string, required int, timeout time.Duration) *Gate {
	return &Gate{
		Pipeline:  pipeline,
		Inputs:    map[string]any{"version": "1.4.2", "env": "prod"},
		Message:   "ship it",
		Requester: alice,
		Origin:    "teams",
		Policy:    Policy{Required: required, Timeout: timeout},
	}
}

func mustCreate(tb testing.TB, s *Store, g *Gate) *Gate {
	tb.Helper()
	out, created, err := s.Create(context.Background(), g, "")
	if err != nil || !created {
		tb.Fatalf("Create: created=%v err=%v", created, err)
	}
	return out
}

// triggerCounts returns how many trigger stream entries name each gate.
func triggerCounts(tb testing.TB, e *env) map[string]int {
	tb.Helper()
	msgs, err := e.rdb.XRange(context.Background(), e.store.triggerKey("deploy-api"), "-", "+").Result()
	if err != nil {
		tb.Fatalf("XRANGE triggers: %v", err)
	}
	out := map[string]int{}
	for _, m := range msgs {
		id, _ := m.Values["gate"].(string)
		out[id]++
	}
	return out
}

// indexed returns how many entries the list index sets of a query hold.
func indexed(tb testing.TB, e *env, pipeline string, st State) int64 {
	tb.Helper()
	ctx := context.Background()
	refs, err := e.store.indexes(ctx, pipeline, st)
	if err != nil {
		tb.Fatal(err)
	}
	var n int64
	for _, r := range refs {
		n += e.rdb.ZCard(ctx, r.key).Val()
	}
	return n
}
