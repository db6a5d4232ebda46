package channels_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/gatebot/gatebot/channels"
)

// stores returns a Store on miniredis and, when it answers, on the real
// Redis, each under a prefix of its own whose keys are removed after.
func stores(t *testing.T) map[string]*channels.Store {
	t.Helper()
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	clients := map[string]redis.UniversalClient{}
	mr := miniredis.RunT(t)
	clients["miniredis"] = redis.NewClient(&redis.Options{Addr: mr.Addr()})
	url := os.Getenv("GATEBOT_TEST_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	if opt, err := redis.ParseURL(url); err == nil {
		rdb := redis.NewClient(opt)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if rdb.Ping(ctx).Err() == nil {
			clients["redis"] = rdb
		} else {
			t.Logf("real Redis at %s does not answer; miniredis only", url)
		}
	}
	out := map[string]*channels.Store{}
	for name, rdb := range clients {
		prefix := fmt.Sprintf("gbtest:channels:%s:%d:", t.Name(), time.Now().UnixNano())
		t.Cleanup(func() {
			rdb.Del(context.Background(), prefix+"channels")
			rdb.Close()
		})
		s, err := channels.NewStore(rdb, channels.Options{Prefix: prefix, Now: func() time.Time { return at }})
		if err != nil {
			t.Fatal(err)
		}
		out[name] = s
	}
	return out
}

func binding(name, conv string) channels.Binding {
	return channels.Binding{Name: name, TenantID: "tenant-1", TeamID: "19:team@thread.tacv2", TeamName: "Platform",
		ConversationID: conv, ChannelName: "Ops", ServiceURL: "https://smba.trafficmanager.net/emea/",
		RegisteredBy: channels.Person{ID: "29:alex", Name: "Alex Wilber"}}
}

func TestRegisterGetList(t *testing.T) {
	t.Parallel()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			if _, err := s.Get(ctx, "ops"); !errors.Is(err, channels.ErrNotFound) {
				t.Fatalf("Get before Register = %v, want ErrNotFound", err)
			}
			b, err := s.Register(ctx, binding("ops", "19:ops@thread.tacv2"))
			if err != nil {
				t.Fatal(err)
			}
			if !b.RegisteredAt.Equal(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)) {
				t.Errorf("RegisteredAt = %v", b.RegisteredAt)
			}
			got, err := s.Get(ctx, "ops")
			if err != nil || got != b {
				t.Fatalf("Get = %+v, %v; want %+v", got, err, b)
			}
			if _, err := s.Register(ctx, binding("alerts", "19:alerts@thread.tacv2")); err != nil {
				t.Fatal(err)
			}
			list, err := s.List(ctx)
			if err != nil || len(list) != 2 || list[0].Name != "alerts" || list[1].Name != "ops" {
				t.Fatalf("List = %+v, %v", list, err)
			}
		})
	}
}

func TestRegisterElsewhereIsRefused(t *testing.T) {
	t.Parallel()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			first := binding("ops", "19:ops@thread.tacv2")
			if _, err := s.Register(ctx, first); err != nil {
				t.Fatal(err)
			}
			// The same channel again refreshes the binding.
			again := first
			again.RegisteredBy = channels.Person{ID: "29:megan", Name: "Megan Bowen"}
			if _, err := s.Register(ctx, again); err != nil {
				t.Fatalf("re-register from the same channel: %v", err)
			}
			other := binding("ops", "19:random@thread.tacv2")
			_, err := s.Register(ctx, other)
			var taken *channels.TakenError
			if !errors.Is(err, channels.ErrTaken) || !errors.As(err, &taken) || taken.Current.RegisteredBy.Name != "Megan Bowen" {
				t.Fatalf("Register elsewhere = %v, want a TakenError naming the current binding", err)
			}
			if got, _ := s.Get(ctx, "ops"); got.ConversationID != "19:ops@thread.tacv2" {
				t.Errorf("binding moved to %s", got.ConversationID)
			}
			// Only the bound channel may release it.
			if err := s.Unregister(ctx, "ops", "19:random@thread.tacv2"); !errors.Is(err, channels.ErrTaken) {
				t.Errorf("Unregister from elsewhere = %v, want ErrTaken", err)
			}
			if err := s.Unregister(ctx, "ops", "19:ops@thread.tacv2"); err != nil {
				t.Fatal(err)
			}
			if err := s.Unregister(ctx, "ops", "19:ops@thread.tacv2"); !errors.Is(err, channels.ErrNotFound) {
				t.Errorf("second Unregister = %v, want ErrNotFound", err)
			}
			if _, err := s.Register(ctx, other); err != nil {
				t.Errorf("register after release: %v", err)
			}
		})
	}
}

// TestRegisterRace: of many channels claiming one name at once, exactly
// one wins and every other is told who did.
func TestRegisterRace(t *testing.T) {
	t.Parallel()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			var wg sync.WaitGroup
			var mu sync.Mutex
			wins, taken := 0, 0
			for i := range 8 {
				wg.Go(func() {
					_, err := s.Register(ctx, binding("ops", fmt.Sprintf("19:c%d@thread.tacv2", i)))
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						wins++
					case errors.Is(err, channels.ErrTaken):
						taken++
					default:
						t.Errorf("Register: %v", err)
					}
				})
			}
			wg.Wait()
			if wins != 1 || taken != 7 {
				t.Errorf("%d wins, %d refused; want 1 and 7", wins, taken)
			}
		})
	}
}

func TestNewStoreAndRegisterValidate(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	if _, err := channels.NewStore(nil, channels.Options{Prefix: "p:"}); err == nil {
		t.Error("nil client accepted")
	}
	if _, err := channels.NewStore(rdb, channels.Options{}); err == nil {
		t.Error("empty prefix accepted")
	}
	s, err := channels.NewStore(rdb, channels.Options{Prefix: "p:"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Register(t.Context(), channels.Binding{Name: "ops"}); err == nil {
		t.Error("binding without a conversation accepted")
	}
	if keys := mr.Keys(); len(keys) != 0 {
		t.Errorf("keys written: %v", keys)
	}
	if _, err := s.Register(t.Context(), binding("ops", "19:ops@thread.tacv2")); err != nil {
		t.Fatal(err)
	}
	if keys := mr.Keys(); len(keys) != 1 || keys[0] != "p:channels" {
		t.Errorf("keys = %v, want only p:channels", keys)
	}
	mr.Close()
	if _, err := s.Get(t.Context(), "ops"); !errors.Is(err, channels.ErrUnavailable) {
		t.Errorf("Get with Redis down = %v, want ErrUnavailable", err)
	}
}
