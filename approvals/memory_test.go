package approvals

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// memoryBound is the most a typical pending gate may cost in Redis, all
// keys under the prefix counted (issue #14).
const memoryBound = 1024

// TestPendingGatesMemory opens 100,000 typical pending gates in the real
// Redis (see memoryGate) and reports what they cost, twice: just created (card not up yet,
// so on the unposted schedule) and in the steady state (card posted and
// synced, its digest kept). It sums MEMORY USAGE of every key under the
// prefix (gate records sampled, every other key in full) by structure and
// also reports the used_memory delta from INFO (noisier, since other
// clients share the server). It fails if a pending gate costs more than
// memoryBound bytes all-in in either phase.
func TestPendingGatesMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping 100,000-gate memory measurement")
	}
	if raceEnabled {
		t.Skip("race detector on: skipping 100,000-gate memory measurement (run without -race)")
	}
	const n = 100_000
	e := newEnv(t, true, Options{Now: time.Now})
	// Keys as long as under the documented Cluster prefix "{gatebot}:"
	// (10 characters), not the longer test prefix: key length is part of
	// what a gate costs.
	e.prefix = memoryPrefix()
	e.store.opts.Prefix = e.prefix
	t.Cleanup(func() { cleanup(t, e.rdb, e.prefix) })
	ctx := context.Background()
	before := usedMemory(t, e)
	start := time.Now()
	ids, ok := parallel(t, n, func(i int) (string, error) {
		g, _, err := e.store.Create(ctx, memoryGate(i), "")
		if err != nil {
			return "", err
		}
		return g.ID, nil
	})
	if !ok {
		return
	}
	t.Logf("%d pending gates created in %v", n, time.Since(start).Round(time.Millisecond))
	checkMemory(t, e, "created", n, ids, usedMemory(t, e)-before)

	_, ok = parallel(t, n, func(i int) (string, error) {
		id := ids[i-1]
		post := Post{Conversation: memoryGate(i).Post.Conversation, ActivityID: "1:1" + strconv.Itoa(1732267200123+i)}
		g, err := e.store.SetPost(ctx, id, post, "AbCdEfGhIjKlMnOp")
		if err != nil {
			return "", err
		}
		// What the card syncer does once the card shows this version.
		return id, e.store.FinishCardSync(ctx, id, g.Version, "AbCdEfGhIjKlMnOp", false)
	})
	if !ok {
		return
	}
	checkMemory(t, e, "posted", n, ids, usedMemory(t, e)-before)
	// One schedule member per gate: the expiry schedule's, or, for the
	// gates to be reminded, the reminder schedule's until then.
	due, remind := e.rdb.ZCard(ctx, e.store.dueKey()).Val(), e.rdb.ZCard(ctx, e.store.remindKey()).Val()
	if due+remind != n || remind != n/2 {
		t.Errorf("expiry schedule holds %d and reminder schedule %d, want %d in all, %d of them reminders", due, remind, n, n/2)
	}
}

// memoryGate is the i-th gate of the measurement: a typical Teams gate
// (see typicalGate) from one of 50 requesters, each with their own Teams
// and Entra ids, posted in one of 5 channels of the tenant, as the
// handlers open it (tenant and conversation bound), with its own version
// input and message.
func memoryGate(i int) *Gate {
	r := rand.New(rand.NewPCG(uint64(i%50), 14))
	const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	teamsID := []byte("29:1")
	for range 108 {
		teamsID = append(teamsID, b64[r.IntN(64)])
	}
	hex := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteByte("0123456789abcdef"[r.IntN(16)])
		}
		return b.String()
	}
	aad := hex(8) + "-" + hex(4) + "-4" + hex(3) + "-8" + hex(3) + "-" + hex(12)
	who := Person{ID: string(teamsID), AADObjectID: aad, UPN: fmt.Sprintf("user%02d@contoso.com", i%50), Name: fmt.Sprintf("User %02d Example", i%50)}
	channel := fmt.Sprintf("19:%d1b2c3d4e5f64789a0b1c2d3e4f5a6b7@thread.tacv2", i%5)
	ref, _ := json.Marshal(map[string]any{
		"activityId": strconv.Itoa(1732267200123 + i),
		"user":       map[string]string{"id": who.ID, "name": who.Name, "aadObjectId": who.AADObjectID},
		"bot":        map[string]string{"id": "28:c9e8c047-2a74-40a2-b28a-b162d5f5327c", "name": "gatebot"},
		"conversation": map[string]any{"isGroup": true, "conversationType": "channel",
			"tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
			"id":       channel + ";messageid=" + strconv.Itoa(1732267200123+i)},
		"channelId":  "msteams",
		"serviceUrl": "https://smba.trafficmanager.net/emea/",
		"locale":     "en-US",
	})
	g := typicalGate()
	if i%2 == 0 {
		g.Policy.RemindBefore = 10 * time.Minute // approval.remind_before on half the gates
	}
	g.Inputs["version"] = fmt.Sprintf("1.%d.%d", i/1000, i%1000)
	g.Message = fmt.Sprintf("hotfix %d for the checkout timeout", i)
	g.Requester, g.Tenant, g.Conversations = who, "72f988bf-86f1-41af-91ab-2d7cd011db47", []string{channel}
	g.Post = Post{Conversation: ref}
	return g
}

// memoryPrefix is a unique hash-tagged prefix as long as "{gatebot}:".
func memoryPrefix() string {
	return "{gm" + strings.TrimSuffix(strings.TrimPrefix(uniquePrefix(), "{gbtest-"), "}:")[:6] + "}:"
}

// parallel runs fn for 1..n on 32 goroutines and returns what it returned,
// in order, and whether every call succeeded.
func parallel(t *testing.T, n int, fn func(i int) (string, error)) ([]string, bool) {
	out := make([]string, n)
	var failed atomic.Bool
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := int(next.Add(1)); i <= n; i = int(next.Add(1)) {
				s, err := fn(i)
				if err != nil {
					t.Errorf("gate %d: %v", i, err)
					failed.Store(true)
					return
				}
				out[i-1] = s
			}
		})
	}
	wg.Wait()
	return out, !failed.Load()
}

// checkMemory logs what every key under the prefix costs, by structure,
// and fails above memoryBound bytes per gate.
func checkMemory(t *testing.T, e *env, phase string, n int, ids []string, infoDelta int64) {
	ctx := context.Background()
	var gateBytes, sampled int64
	for i := 0; i < len(ids); i += 100 {
		gateBytes += e.rdb.MemoryUsage(ctx, e.store.gateKey(ids[i])).Val()
		sampled++
	}
	perRecord := gateBytes / sampled
	rec := e.rdb.Get(ctx, e.store.gateKey(ids[0])).Val()
	shared := map[string]int64{}
	var gateKeys int64
	iter := e.rdb.Scan(ctx, 0, e.prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		k := strings.TrimPrefix(iter.Val(), e.prefix)
		if strings.HasPrefix(k, "g:") {
			gateKeys++
			continue
		}
		m, err := e.rdb.MemoryUsage(ctx, iter.Val(), 0).Result() // SAMPLES 0: every element
		if err != nil && err != redis.Nil {
			t.Fatalf("MEMORY USAGE %s: %v", k, err)
		}
		for _, group := range []string{"ob:cs:", "dict:"} {
			if strings.HasPrefix(k, group) {
				k = group + "*"
			}
		}
		shared[k] += m
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if gateKeys != int64(n) {
		t.Errorf("%s: %d gate records, want %d", phase, gateKeys, n)
	}
	total := perRecord * int64(n)
	t.Logf("%s: gate record %d B each (value %d B; MEMORY USAGE, %d sampled)", phase, perRecord, len(rec), sampled)
	for _, k := range slices.Sorted(maps.Keys(shared)) {
		t.Logf("%s: %-28s %7.2f MiB (%d B per gate)", phase, k, float64(shared[k])/(1<<20), shared[k]/int64(n))
		total += shared[k]
	}
	t.Logf("%s: total by MEMORY USAGE %.1f MiB, %d B per pending gate; INFO used_memory delta %.1f MiB, %d B per gate",
		phase, float64(total)/(1<<20), total/int64(n), float64(infoDelta)/(1<<20), infoDelta/int64(n))
	if total/int64(n) > memoryBound {
		t.Errorf("%s: a pending gate costs %d B all-in, want ≤ %d", phase, total/int64(n), memoryBound)
	}
}

func usedMemory(t *testing.T, e *env) int64 {
	info, err := e.rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("no used_memory in INFO")
	return 0
}
