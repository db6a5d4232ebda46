package handlers

import (
	"fmt"
	"testing"
	"time"
)

func TestMemberCache(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	c := newMemberCache[string](10*time.Minute, func() time.Time { return now })
	c.put("a", "alice@example.com")
	if upn, ok := c.get("a"); !ok || upn != "alice@example.com" {
		t.Fatalf("get = %q, %v", upn, ok)
	}
	now = now.Add(11 * time.Minute)
	if _, ok := c.get("a"); ok {
		t.Fatal("an entry older than the TTL was served")
	}
	for i := range memberCacheMax + 10 {
		c.put(fmt.Sprint(i), "u")
	}
	if n := len(c.m); n > memberCacheMax {
		t.Fatalf("cache holds %d entries, bound is %d", n, memberCacheMax)
	}
	if upn, ok := c.get(fmt.Sprint(memberCacheMax + 9)); !ok || upn != "u" {
		t.Fatal("the newest entry was evicted")
	}
}
