package handlers

import (
	"sync"
	"time"
)

// memberCacheMax bounds the cache; when it is full, expired entries go,
// then arbitrary ones down to half.
const memberCacheMax = 10000

// memberCache remembers what was looked up through the connector (UPNs,
// approvers' accounts) for a bounded time. It is only a cache: every
// replica can rebuild it from the connector.
type memberCache[V any] struct {
	mu  sync.Mutex
	ttl time.Duration
	now func() time.Time
	m   map[string]memberEntry[V]
}

type memberEntry[V any] struct {
	v  V
	at time.Time
}

func newMemberCache[V any](ttl time.Duration, now func() time.Time) *memberCache[V] {
	return &memberCache[V]{ttl: ttl, now: now, m: map[string]memberEntry[V]{}}
}

func (c *memberCache[V]) get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || c.now().Sub(e.at) > c.ttl {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (c *memberCache[V]) put(key string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.m) >= memberCacheMax {
		// Full: drop what has expired, then anything, down to half.
		for k, e := range c.m {
			if now.Sub(e.at) > c.ttl {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < memberCacheMax/2 {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[key] = memberEntry[V]{v: v, at: now}
}
