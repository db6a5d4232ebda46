// Package redistest runs storage tests against both Redis servers gatebot
// is tested on: an in-process miniredis and the real Redis server the CI
// starts (GATEBOT_TEST_REDIS_URL, default redis://127.0.0.1:6379/0), each
// under a key prefix of its own that is deleted when the test ends.
//
// It is for tests only and imports no gatebot package.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Backends runs fn as two parallel subtests, "miniredis" and "redis"; the
// second is skipped, saying why, when the real Redis does not answer.
// name goes into the real Redis prefix, so stray keys name their test.
func Backends(t *testing.T, name string, fn func(t *testing.T, rdb redis.UniversalClient, prefix string)) {
	t.Run("miniredis", func(t *testing.T) {
		t.Parallel()
		mr := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { rdb.Close() })
		fn(t, rdb, "gatebot:")
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		url := os.Getenv("GATEBOT_TEST_REDIS_URL")
		if url == "" {
			url = "redis://127.0.0.1:6379/0"
		}
		opt, err := redis.ParseURL(url)
		if err != nil {
			t.Fatalf("GATEBOT_TEST_REDIS_URL: %v", err)
		}
		rdb := redis.NewClient(opt)
		if err := rdb.Ping(t.Context()).Err(); err != nil {
			rdb.Close()
			t.Skipf("real Redis at %s does not answer (%v)", url, err)
		}
		var b [6]byte
		rand.Read(b[:])
		prefix := "gbtest:" + name + ":" + hex.EncodeToString(b[:]) + ":"
		t.Cleanup(func() {
			ctx := context.Background()
			if keys, _ := rdb.Keys(ctx, prefix+"*").Result(); len(keys) > 0 {
				rdb.Del(ctx, keys...)
			}
			rdb.Close()
		})
		fn(t, rdb, prefix)
	})
}
