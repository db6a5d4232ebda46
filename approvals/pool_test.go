package approvals

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// TestBurstOnASmallPoolNeverStalls: many gates opened at once on a fresh
// prefix, through a client with fewer connections than callers. Encoding
// the first records looks up (and learns) the record dictionary while the
// transaction holds a pooled connection; had the others waited for that
// lookup while holding theirs, every connection would be held by a waiter
// and the pool would time out (as it did at 128 conversations). Every
// create must succeed, and the dictionary must be learned.
func TestBurstOnASmallPoolNeverStalls(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), PoolSize: 4, PoolTimeout: 2 * time.Second})
	defer rdb.Close()
	s, err := NewStore(rdb, Options{Prefix: uniquePrefix()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.CheckLayout(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			g := typicalGate()
			g.Inputs["version"] = fmt.Sprintf("1.0.%d", i)
			if _, _, err := s.Create(ctx, g, ""); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Create in a burst: %v", err)
	}
	if ptr, _ := rdb.Get(ctx, s.dictPointerKey()).Result(); ptr == "" {
		t.Error("no record dictionary learned")
	}
}
