package callbacks_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A replica whose lease ran out while it worked on an event may report a
// failed attempt after another replica delivered or gave the event up:
// that late RetryCallback must not queue the event again (nor recreate
// its record without an expiry).
func TestLateRetryAfterAnotherReplicaFinished(t *testing.T) {
	t.Parallel()
	for _, finish := range []string{"delivered", "given up"} {
		t.Run(finish, func(t *testing.T) {
			t.Parallel()
			backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
				e := newEnv(t, rdb, prefix)
				ctx := context.Background()
				g := e.reject(t, e.gate(t, "https://hooks.example.com/cb").ID)
				a, err := e.store.ClaimCallbacks(ctx, 10, 20*time.Millisecond)
				if err != nil || len(a) != 1 {
					t.Fatalf("replica A's claim: %v, %v", a, err)
				}
				time.Sleep(30 * time.Millisecond)
				b, err := e.store.ClaimCallbacks(ctx, 10, time.Minute)
				if err != nil || len(b) != 1 || b[0].ID != eventID(g) {
					t.Fatalf("replica B's claim after A's lease: %v, %v", b, err)
				}
				if finish == "delivered" {
					err = e.store.CallbackDelivered(ctx, b[0].ID)
				} else {
					err = e.store.GiveUpCallback(ctx, b[0].ID)
				}
				if err != nil {
					t.Fatal(err)
				}
				ev := a[0]
				ev.Attempts++
				ev.LastError = "HTTP 500"
				if err := e.store.RetryCallback(ctx, ev, time.Now()); err != nil {
					t.Fatal(err)
				}
				if again, err := e.store.ClaimCallbacks(ctx, 10, time.Minute); err != nil || len(again) != 0 {
					t.Errorf("after B finished it, A's late retry queued the event again: %v, %v", again, err)
				}
				ttl, err := rdb.PTTL(ctx, prefix+"cb:ev:"+ev.ID).Result()
				switch {
				case err != nil:
					t.Fatal(err)
				case finish == "delivered" && ttl != -2: // no such key
					t.Errorf("the delivered event's record is back (ttl %v)", ttl)
				case finish == "given up" && ttl < 0:
					t.Errorf("the given-up event's record lost its expiry (ttl %v)", ttl)
				}
			})
		})
	}
}
