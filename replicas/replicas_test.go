package replicas_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/gatebot/gatebot/internal/redistest"
	"github.com/gatebot/gatebot/replicas"
)

// clock is a settable time shared by the registries of one test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func registry(t *testing.T, rdb redis.UniversalClient, prefix string, c *clock, self replicas.Info) *replicas.Registry {
	t.Helper()
	r, err := replicas.New(rdb, replicas.Options{Prefix: prefix, Self: self, Every: 10 * time.Second, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRegistryRollingUpgrade(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, "replicas", func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		ctx := context.Background()
		c := &clock{t: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)}
		oldCfg := replicas.Fingerprint([]byte("pipelines: deploy-api, deploy-web"))
		newCfg := replicas.Fingerprint([]byte("pipelines: deploy-api"))
		a := registry(t, rdb, prefix, c, replicas.Info{Instance: "gatebot-a", Deployment: "app-1", Version: "1.4.0", Config: oldCfg, Pipelines: []string{"deploy-web", "deploy-api"}})
		bb := registry(t, rdb, prefix, c, replicas.Info{Instance: "gatebot-b", Deployment: "app-1", Version: "1.5.0", Config: newCfg, Pipelines: []string{"deploy-api"}})
		if err := a.Join(ctx); err != nil {
			t.Fatal(err)
		}
		if got := a.View().Disagreement(); got != "" {
			t.Errorf("one replica: Disagreement = %q, want none", got)
		}
		if err := bb.Join(ctx); err != nil {
			t.Fatalf("a replica of the same deployment must join: %v", err)
		}
		v := bb.View()
		want := "gatebot-a: version 1.4.0, config " + oldCfg + "; gatebot-b: version 1.5.0, config " + newCfg
		if got := v.Disagreement(); got != want {
			t.Errorf("Disagreement = %q\nwant          %q", got, want)
		}
		if !v.Serves("deploy-web") || !v.Serves("deploy-api") || v.Serves("deploy-db") {
			t.Errorf("Serves: web %v api %v db %v, want true true false", v.Serves("deploy-web"), v.Serves("deploy-api"), v.Serves("deploy-db"))
		}
		if v.Yields() || len(v.Foreign()) != 0 {
			t.Error("replicas of one deployment must not yield to each other")
		}

		// The old replica stops: once it has left, nobody serves deploy-web.
		if err := a.Leave(ctx); err != nil {
			t.Fatal(err)
		}
		if err := bb.Join(ctx); err != nil {
			t.Fatal(err)
		}
		v = bb.View()
		if v.Serves("deploy-web") || len(v.Live) != 1 || v.Disagreement() != "" {
			t.Errorf("after a left: live %v, serves web %v, disagreement %q", v.Live, v.Serves("deploy-web"), v.Disagreement())
		}
	})
}

func TestRegistryDropsDeadReplicas(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, "replicas", func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		ctx := context.Background()
		c := &clock{t: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)}
		dead := registry(t, rdb, prefix, c, replicas.Info{Instance: "dead", Deployment: "app-1", Config: "c1", Pipelines: []string{"old"}})
		live := registry(t, rdb, prefix, c, replicas.Info{Instance: "live", Deployment: "app-1", Config: "c1"})
		if err := dead.Join(ctx); err != nil {
			t.Fatal(err)
		}
		c.add(25 * time.Second) // within TTL (30 s): still counted
		if err := live.Join(ctx); err != nil {
			t.Fatal(err)
		}
		if !live.View().Serves("old") {
			t.Fatal("a replica seen 25 s ago is live (TTL 30 s)")
		}
		c.add(10 * time.Second) // 35 s since dead's heartbeat
		if err := live.Join(ctx); err != nil {
			t.Fatal(err)
		}
		if live.View().Serves("old") || len(live.View().Live) != 1 {
			t.Fatalf("a replica silent for 35 s must not count: %v", live.View().Live)
		}
		if n := rdb.HLen(ctx, prefix+"replicas").Val(); n != 1 {
			t.Errorf("the dead replica's entry is left in Redis: %d entries", n)
		}
	})
}

func TestRegistryRefusesAnotherDeployment(t *testing.T) {
	t.Parallel()
	redistest.Backends(t, "replicas", func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		ctx := context.Background()
		c := &clock{t: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)}
		first := registry(t, rdb, prefix, c, replicas.Info{Instance: "prod-1", Deployment: "app-prod", Version: "1.4.0", Config: "c1"})
		if err := first.Join(ctx); err != nil {
			t.Fatal(err)
		}
		c.add(time.Second)
		other := registry(t, rdb, prefix, c, replicas.Info{Instance: "staging-1", Deployment: "app-staging", Version: "1.5.0", Config: "c2"})
		err := other.Join(ctx)
		if !errors.Is(err, replicas.ErrForeignDeployment) {
			t.Fatalf("Join = %v, want ErrForeignDeployment", err)
		}
		for _, want := range []string{"prod-1", `"app-prod"`, "redis.prefix"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
		}
		if n := rdb.HLen(ctx, prefix+"replicas").Val(); n != 1 {
			t.Errorf("a refused replica wrote its entry: %d entries", n)
		}

		// Both started at once (neither saw the other at Join): the one
		// that came later yields, the first keeps working.
		late := registry(t, rdb, prefix, c, replicas.Info{Instance: "staging-2", Deployment: "app-staging", Config: "c2", Started: c.now()})
		if err := rdb.HSet(ctx, prefix+"replicas", "staging-2", fmt.Sprintf(`{"instance":"staging-2","deployment":"app-staging","config":"c2","started":%q,"seen":%q}`,
			c.now().Format(time.RFC3339Nano), c.now().Format(time.RFC3339Nano))).Err(); err != nil {
			t.Fatal(err)
		}
		_ = first.Join(ctx) // refused now that staging-2 is there, but the view is read
		if first.View().Yields() {
			t.Error("the deployment that was first must not yield")
		}
		if !strings.Contains(first.View().Disagreement(), `deployment "app-staging"`) {
			t.Errorf("Disagreement %q does not name the other deployment", first.View().Disagreement())
		}
		_ = late.Join(ctx)
		if !late.View().Yields() {
			t.Error("the later deployment must yield")
		}
	})
}

func TestViewFresh(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	const ttl = 30 * time.Second
	for _, tc := range []struct {
		name string
		v    replicas.View
		want bool
	}{
		{"never read", replicas.View{TTL: ttl}, false},
		{"read now", replicas.View{Read: at, TTL: ttl}, true},
		{"read 31 s ago", replicas.View{Read: at.Add(-31 * time.Second), TTL: ttl}, false},
		{"last heartbeat failed", replicas.View{Read: at, Err: errors.New("connection refused"), TTL: ttl}, false},
	} {
		if got := tc.v.Fresh(at); got != tc.want {
			t.Errorf("%s: Fresh = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	if _, err := replicas.New(nil, replicas.Options{Self: replicas.Info{Instance: "a"}}); err == nil {
		t.Error("New without a client must fail")
	}
	if _, err := replicas.New(rdb, replicas.Options{}); err == nil || !strings.Contains(err.Error(), "Instance") {
		t.Errorf("New without an instance = %v, want an error naming Self.Instance", err)
	}
	if _, err := replicas.New(rdb, replicas.Options{Self: replicas.Info{Instance: "a"}, Every: time.Minute, TTL: time.Second}); err == nil {
		t.Error("a TTL shorter than the heartbeat must be refused")
	}
}
