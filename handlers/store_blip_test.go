package handlers_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/handlers"
)

// blipStore fails the first failures SetPost calls with ErrUnavailable,
// as Redis does while it restarts or fails over.
type blipStore struct {
	handlers.Store
	mu       sync.Mutex
	failures int
	calls    int
}

func (b *blipStore) SetPost(ctx context.Context, id string, post approvals.Post, digest string) (*approvals.Gate, error) {
	b.mu.Lock()
	b.calls++
	fail := b.calls <= b.failures
	b.mu.Unlock()
	if fail {
		return nil, fmt.Errorf("record post: %w: dial tcp 127.0.0.1:6379: connect: connection refused", approvals.ErrUnavailable)
	}
	return b.Store.SetPost(ctx, id, post, digest)
}

// TestCardPostRecordedAfterAStoreBlip: a card posted while the store
// briefly cannot record it still gets its activity id recorded once the
// store answers again, so updates reach that card and the unposted sweep
// never posts the gate a second one (found by gatebot-bench
// --scenario redis-restart: "could not record the card's activity id").
func TestCardPostRecordedAfterAStoreBlip(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failures int
	}{
		{"two failures", 2},
		{"no failure", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blip := &blipStore{failures: tc.failures}
			e := newEnvWith(t, redisClients(t)["miniredis"], approvals.Policy{Required: 1, Timeout: time.Hour},
				envOptions{wrap: func(s handlers.Store) handlers.Store { blip.Store = s; return blip }})
			e.send(alex, "/run demo version=1.2.6")
			gateID, actID := e.lastCardPost(1)
			deadline := time.Now().Add(5 * time.Second)
			var got string
			for time.Now().Before(deadline) {
				g, err := e.store.Get(context.Background(), gateID)
				if err != nil {
					t.Fatal(err)
				}
				if got = g.Post.ActivityID; got != "" {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if got != actID {
				t.Fatalf("gate's card activity id = %q, want %q", got, actID)
			}
			// The unposted sweep (UnpostedAfter 300 ms here) must not post
			// a second card for the gate.
			time.Sleep(time.Second)
			e.conn.mu.Lock()
			posts := len(e.conn.posts)
			e.conn.mu.Unlock()
			if posts != 1 {
				t.Fatalf("%d cards posted, want 1", posts)
			}
		})
	}
}
