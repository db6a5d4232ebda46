package handlers

import (
	"sync"
	"time"
)

// memberCacheMax bounds the cache; when it is full, expired entries go,
// then arbitrary ones down to half.
const memberCacheMax = 10000

// memberCache remembers UPNs looked up through the connector for a bounded
// time. It is only a cache: every replica can rebuild it from the connector.
type memberCache struct {
	mu  sync.Mutex
	ttl time.Duration
	now func() time.Time
	m   map[string]memberEntry
}

type memberEntry struct {
	upn string
	at  time.Time
}

func newMemberCache(ttl time.Duration, now func() time.Time) *memberCache {
	return &memberCache{ttl: ttl, now: now, m: map[string]memberEntry{}}
}

func (c *memberCache) get(key string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || c.now().Sub(e.at) > c.ttl {
		return "", false
	}
	return e.upn, true
}

func (c *memberCache) put(key, upn string) {
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
	c.m[key] = memberEntry{upn: upn, at: now}
}
