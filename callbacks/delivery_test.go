package callbacks_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/callbacks"
)

// A gate's every state change is delivered once it succeeds, each showing
// the gate as it was at that version, and a retry sends the same bytes.
func TestDeliversEveryStateChange(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		e := newEnv(t, rdb, prefix)
		var mu sync.Mutex
		tries := map[string]int{}
		rc := newReceiver(t, e.key, func(w http.ResponseWriter, r *http.Request, d delivery) {
			mu.Lock()
			defer mu.Unlock()
			if tries[d.ID]++; tries[d.ID] == 1 {
				w.WriteHeader(http.StatusInternalServerError) // every event is retried once
			}
		})
		g := e.gate(t, rc.srv.URL+"/hook")
		versions := append([]*approvals.Gate{e.approve(t, g.ID)}, e.runToSuccess(t, g.ID)...)
		want := map[string]*approvals.Gate{}
		for _, v := range versions {
			want[eventID(v)] = v
		}
		run(t, e.deliverer(t, []string{rc.srv.URL}, nil))

		rc.waitFor(t, "two attempts at each of 4 events", func(ds []delivery) bool { return len(ds) >= 8 })
		time.Sleep(50 * time.Millisecond) // room for a wrong extra delivery
		first := map[string][]byte{}
		for _, d := range rc.deliveries() {
			v, ok := want[d.ID]
			if !ok {
				t.Errorf("unexpected webhook-id %q", d.ID)
				continue
			}
			if d.Path != "/hook" {
				t.Errorf("%s sent to %s", d.ID, d.Path)
			}
			if d.Payload.Type != "gate."+string(v.State) || d.Payload.Data != (view{ID: g.ID, State: v.State, Version: v.Version}) {
				t.Errorf("%s: type %s data %+v, want the gate as it was at version %d (%s)", d.ID, d.Payload.Type, d.Payload.Data, v.Version, v.State)
			}
			if !d.Payload.Timestamp.Equal(v.UpdatedAt) {
				t.Errorf("%s: timestamp %v, want the change's %v", d.ID, d.Payload.Timestamp, v.UpdatedAt)
			}
			if b, seen := first[d.ID]; !seen {
				first[d.ID] = d.Body
			} else if !bytes.Equal(b, d.Body) {
				t.Errorf("%s: the retry sent other bytes:\n%s\n%s", d.ID, b, d.Body)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for id := range want {
			if tries[id] != 2 {
				t.Errorf("%s attempted %d times, want 2 (a 500, then a 200)", id, tries[id])
			}
		}
		for _, st := range []approvals.State{approvals.StateApproved, approvals.StateTriggering, approvals.StateRunning, approvals.StateSucceeded} {
			n := 0
			for _, v := range versions {
				if v.State == st {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d versions in state %s, want 1", n, st)
			}
		}
		waitQueueEmpty(t, e)
		if dead := e.dead(t); len(dead) != 0 {
			t.Errorf("dead letters %v after delivery", dead)
		}
	})
}

func waitQueueEmpty(t *testing.T, e *env) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		n, err := e.rdb.ZCard(context.Background(), e.prefix+"cb:due").Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d callback events still queued", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Failures are retried on the schedule, then given up for good; a 410, a
// redirect's 3xx and a URL no longer allowed are handled as failures too.
func TestFailures(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		respond  func(w http.ResponseWriter, r *http.Request, d delivery)
		disallow bool // the deliverer's allow-list lacks the receiver
		attempts int
	}{
		{"500 retried then given up", func(w http.ResponseWriter, r *http.Request, d delivery) {
			w.WriteHeader(http.StatusInternalServerError)
		}, false, 3},
		{"410 gives up at once", func(w http.ResponseWriter, r *http.Request, d delivery) {
			w.WriteHeader(http.StatusGone)
		}, false, 1},
		{"a redirect is a failure", nil, false, 3}, // respond set below
		{"a URL no longer allowed", nil, true, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
				e := newEnv(t, rdb, prefix)
				respond := c.respond
				if c.name == "a redirect is a failure" {
					var stolen atomic.Int32
					other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { stolen.Add(1) }))
					t.Cleanup(other.Close)
					t.Cleanup(func() {
						if n := stolen.Load(); n != 0 {
							t.Errorf("the redirect was followed %d times", n)
						}
					})
					respond = func(w http.ResponseWriter, r *http.Request, d delivery) {
						http.Redirect(w, r, other.URL+"/stolen", http.StatusTemporaryRedirect)
					}
				}
				rc := newReceiver(t, e.key, respond)
				hosts := []string{rc.srv.URL}
				if c.disallow {
					hosts = []string{"hooks.example.com"}
				}
				g := e.reject(t, e.gate(t, rc.srv.URL+"/hook").ID)
				start := time.Now()
				run(t, e.deliverer(t, hosts, nil))
				e.waitDead(t, eventID(g))
				time.Sleep(60 * time.Millisecond) // a redelivery of a given-up event would land by now
				ds := rc.deliveries()
				if len(ds) != c.attempts {
					t.Fatalf("%d attempts, want %d", len(ds), c.attempts)
				}
				prev := start
				for i, d := range ds {
					if d.ID != eventID(g) || !bytes.Equal(d.Body, ds[0].Body) {
						t.Errorf("attempt %d: id %s or body changed", i+1, d.ID)
					}
					if i > 0 && d.At.Sub(prev) < 15*time.Millisecond { // 20 ms -20 % jitter
						t.Errorf("attempt %d came %v after the previous one, before the schedule's delay", i+1, d.At.Sub(prev))
					}
					prev = d.At
				}
			})
		})
	}
}

// A Retry-After longer than the schedule's delay is waited for, given in
// seconds or as an HTTP-date.
func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	for name, value := range map[string]func() string{
		"seconds": func() string { return "1" },
		// Whole seconds: the wait is between 1 and 2 s.
		"date": func() string { return time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
				e := newEnv(t, rdb, prefix)
				var n atomic.Int32
				rc := newReceiver(t, e.key, func(w http.ResponseWriter, r *http.Request, d delivery) {
					if n.Add(1) == 1 {
						w.Header().Set("Retry-After", value())
						w.WriteHeader(http.StatusServiceUnavailable)
					}
				})
				e.reject(t, e.gate(t, rc.srv.URL+"/hook").ID)
				run(t, e.deliverer(t, []string{rc.srv.URL}, nil))
				ds := rc.waitFor(t, "the retry", func(ds []delivery) bool { return len(ds) == 2 })
				if gap := ds[1].At.Sub(ds[0].At); gap < 900*time.Millisecond {
					t.Errorf("retried after %v despite Retry-After", gap)
				}
				waitQueueEmpty(t, e)
			})
		})
	}
}

// Events a replica claimed before dying are delivered by another once
// their lease ends, not before.
func TestClaimedByADeadReplica(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		e := newEnv(t, rdb, prefix)
		rc := newReceiver(t, e.key, nil)
		var gates []*approvals.Gate
		for range 3 {
			gates = append(gates, e.approve(t, e.gate(t, rc.srv.URL+"/hook").ID))
		}
		const lease = 300 * time.Millisecond
		// The lease runs from the store's clock at the claim, which is
		// after this: nothing may be delivered before claimedAt + lease.
		claimedAt := time.Now()
		claimed, err := e.store.ClaimCallbacks(context.Background(), 10, lease)
		if err != nil || len(claimed) != 3 {
			t.Fatalf("claim: %d events, %v", len(claimed), err)
		}
		run(t, e.deliverer(t, []string{rc.srv.URL}, nil))
		ds := rc.waitFor(t, "the claimed events", func(ds []delivery) bool { return len(ds) >= 3 })
		time.Sleep(50 * time.Millisecond)
		ds = rc.deliveries()
		got := map[string]int{}
		for _, d := range ds {
			got[d.ID]++
			if d.At.Before(claimedAt.Add(lease)) {
				t.Errorf("%s delivered %v after the claim, within its %v lease", d.ID, d.At.Sub(claimedAt), lease)
			}
		}
		for _, g := range gates {
			if got[eventID(g)] != 1 {
				t.Errorf("%s delivered %d times, want 1", eventID(g), got[eventID(g)])
			}
		}
		waitQueueEmpty(t, e)
	})
}

// With PerHost 1, a receiver that hangs holds one attempt at a time, and
// another host's events go out meanwhile.
func TestPerHostLimit(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		e := newEnv(t, rdb, prefix)
		release := make(chan struct{})
		blocked := make(chan struct{}, 10)
		var inFlight, most atomic.Int32
		slow := newReceiver(t, e.key, func(w http.ResponseWriter, r *http.Request, d delivery) {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			blocked <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		var once sync.Once
		t.Cleanup(func() { once.Do(func() { close(release) }) })
		fast := newReceiver(t, e.key, nil)
		for range 3 {
			e.reject(t, e.gate(t, slow.srv.URL+"/hook").ID)
		}
		quick := e.reject(t, e.gate(t, fast.srv.URL+"/hook").ID)
		run(t, e.deliverer(t, []string{slow.srv.URL, fast.srv.URL}, func(o *callbacks.Options) {
			o.PerHost = 1
			o.Timeout = 3 * time.Second
		}))
		select {
		case <-blocked:
		case <-time.After(4 * time.Second):
			t.Fatal("the slow receiver got nothing")
		}
		ds := fast.waitFor(t, "the other host's event", func(ds []delivery) bool { return len(ds) == 1 })
		if ds[0].ID != eventID(quick) {
			t.Errorf("other host got %s", ds[0].ID)
		}
		time.Sleep(30 * time.Millisecond) // a second attempt at the slow host would start by now
		if n := len(slow.deliveries()); n != 1 {
			t.Errorf("%d attempts at the blocked host at once, want 1", n)
		}
		once.Do(func() { close(release) })
		slow.waitFor(t, "the slow host's events", func(ds []delivery) bool { return len(ds) == 3 })
		if m := most.Load(); m != 1 {
			t.Errorf("%d attempts in flight at one host, want at most 1", m)
		}
		waitQueueEmpty(t, e)
	})
}

// The callback URL's query (which may hold a token) never reaches the
// logs, whatever happens to the delivery.
func TestLogsOmitTheQuery(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		e := newEnv(t, rdb, prefix)
		const token = "s3cr3t-t0ken"
		var n atomic.Int32
		rc := newReceiver(t, e.key, func(w http.ResponseWriter, r *http.Request, d delivery) {
			if r.URL.Query().Get("token") != token {
				t.Errorf("the receiver got query %q", r.URL.RawQuery)
			}
			if n.Add(1) == 1 {
				w.WriteHeader(http.StatusBadGateway)
			}
		})
		// A receiver that drops the connection: the client's error names
		// the URL.
		hangup := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}))
		t.Cleanup(hangup.Close)
		ok := e.reject(t, e.gate(t, rc.srv.URL+"/hook?token="+token).ID)
		dropped := e.reject(t, e.gate(t, hangup.URL+"/drop?token="+token).ID)
		refused := e.reject(t, e.gate(t, "https://blocked.example.com/nope?token="+token).ID)
		var logs logBuffer
		run(t, e.deliverer(t, []string{rc.srv.URL, hangup.URL}, func(o *callbacks.Options) { o.Logger = logs.logger() }))
		rc.waitFor(t, "the delivery", func(ds []delivery) bool { return len(ds) == 2 })
		e.waitDead(t, eventID(dropped))
		e.waitDead(t, eventID(refused))
		waitQueueEmpty(t, e)
		out := logs.String()
		if strings.Contains(out, token) || strings.Contains(out, "token=") {
			t.Errorf("the logs show the callback URL's query:\n%s", out)
		}
		for _, want := range []string{
			"callback delivered", "will retry", "given up", "no longer allowed",
			rc.srv.URL + "/hook", hangup.URL + "/drop", "https://blocked.example.com/nope", eventID(ok),
		} {
			if !strings.Contains(out, want) {
				t.Errorf("the logs lack %q:\n%s", want, out)
			}
		}
	})
}

// Two replicas running at once never send one event twice: a claim lasts
// as long as the attempt can.
func TestTwoReplicasDeliverOnce(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		e := newEnv(t, rdb, prefix)
		rc := newReceiver(t, e.key, func(http.ResponseWriter, *http.Request, delivery) {
			time.Sleep(100 * time.Millisecond) // longer than a poll: the other replica looks meanwhile
		})
		const events = 12
		for range events {
			e.reject(t, e.gate(t, rc.srv.URL+"/hook").ID)
		}
		opts := func(o *callbacks.Options) { o.Parallel, o.Timeout = 4, 500*time.Millisecond }
		run(t, e.deliverer(t, []string{rc.srv.URL}, opts))
		run(t, e.deliverer(t, []string{rc.srv.URL}, opts))
		rc.waitFor(t, "every event", func(ds []delivery) bool { return len(ds) >= events })
		waitQueueEmpty(t, e)
		seen := map[string]int{}
		for _, d := range rc.deliveries() {
			seen[d.ID]++
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("%s delivered %d times", id, n)
			}
		}
		if len(seen) != events {
			t.Errorf("%d distinct events delivered, want %d", len(seen), events)
		}
	})
}
