package bot

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestPacingStaysUnderTeamsLimits drives a greedy sender (sending as soon
// as the pacer allows) through two simulated hours and checks every window
// of Teams' per-conversation limits.
func TestPacingStaysUnderTeamsLimits(t *testing.T) {
	p := newPacer()
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	end := now.Add(2 * time.Hour)
	var sends []time.Time
	for now.Before(end) {
		d, _ := p.reserve("conv|c1", now)
		now = now.Add(d)
		sends = append(sends, now)
	}
	limits := []struct {
		window time.Duration
		max    int
	}{{time.Second, 7}, {2 * time.Second, 8}, {30 * time.Second, 60}, {time.Hour, 1800}}
	for _, l := range limits {
		worst, j := 0, 0
		for i := range sends {
			for sends[i].Sub(sends[j]) > l.window {
				j++
			}
			worst = max(worst, i-j+1)
		}
		if worst > l.max {
			t.Errorf("%d sends within %s, limit %d", worst, l.window, l.max)
		}
		t.Logf("busiest %s window: %d sends (limit %d)", l.window, worst, l.max)
	}
	// The pacer must not be uselessly strict: a burst goes out at once.
	if sends[paceShortBurst-1] != sends[0] {
		t.Errorf("first %d sends were delayed", paceShortBurst)
	}
}

func TestPacingPerConversation(t *testing.T) {
	p := newPacer()
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	for range paceShortBurst {
		p.reserve("conv|a", now)
	}
	if d, _ := p.reserve("conv|a", now); d <= 0 {
		t.Error("conversation a not paced after its burst")
	}
	if d, _ := p.reserve("conv|b", now); d != 0 {
		t.Errorf("conversation b delayed %s by a's traffic", d)
	}
}

func TestPacingEvictsIdleConversations(t *testing.T) {
	p := newPacer()
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	for i := range paceSweepSize {
		p.reserve(string(rune(i)), now)
	}
	p.reserve("fresh", now.Add(2*time.Hour))
	if len(p.m) != 1 {
		t.Errorf("%d limiters kept, want only the fresh one", len(p.m))
	}
}

// TestConnectorPacing checks the connector waits for the pacer before a
// send, and that a cancelled wait sends nothing.
func TestConnectorPacing(t *testing.T) {
	script := make([]wantRequest, paceShortBurst+1)
	for i := range script {
		script[i] = wantRequest{method: "POST", requestURI: "/v3/conversations/c1/activities", body: `{"type":"message","conversation":{"id":"c1"}}`, status: 201, respBody: `{"id":"x"}`}
	}
	f := newFakeConnector(t, script...)
	c := f.connector(t, func(cfg *ConnectorConfig) { cfg.Pacing = true })
	var mu sync.Mutex
	var waits []time.Duration
	c.pacer.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		waits = append(waits, d)
		mu.Unlock()
		return ctx.Err()
	}
	for range paceShortBurst + 1 {
		if _, err := c.SendToConversation(t.Context(), f.serviceURL(), "c1", &Activity{}); err != nil {
			t.Fatal(err)
		}
	}
	if len(waits) != 1 || waits[0] < time.Second/paceShortRate-50*time.Millisecond {
		t.Fatalf("waits = %v, want one wait of about %s after the burst", waits, time.Second/paceShortRate)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.SendToConversation(ctx, f.serviceURL(), "c1", &Activity{}); err == nil {
		t.Fatal("send with cancelled context during pacing succeeded")
	}
}

// TestTryUpdateNeverWaits: an update the conversation's pacing does not
// allow now is not sent and says how long to wait; a 429 blocks the
// conversation (sends included) until its Retry-After, and says so too.
func TestTryUpdateNeverWaits(t *testing.T) {
	upd := wantRequest{method: "PUT", requestURI: "/v3/conversations/c1/activities/a1",
		body: `{"type":"message","id":"a1","conversation":{"id":"c1"}}`, status: 200, respBody: `{"id":"a1"}`}
	script := make([]wantRequest, paceShortBurst)
	for i := range script {
		script[i] = upd
	}
	throttled := upd
	throttled.status, throttled.respBody, throttled.header = 429, `{"error":{"code":"TooManyRequests"}}`, map[string]string{"Retry-After": "3"}
	f := newFakeConnector(t, append(script, throttled)...)
	c := f.connector(t, func(cfg *ConnectorConfig) { cfg.Pacing = true })
	c.pacer.sleep = func(ctx context.Context, d time.Duration) error {
		t.Errorf("TryUpdateActivity waited %s", d)
		return nil
	}
	for range paceShortBurst {
		if err := c.TryUpdateActivity(t.Context(), f.serviceURL(), "c1", "a1", &Activity{}); err != nil {
			t.Fatal(err)
		}
	}
	var pe *PacedError
	err := c.TryUpdateActivity(t.Context(), f.serviceURL(), "c1", "a1", &Activity{})
	if !errors.As(err, &pe) || pe.Err != nil || pe.RetryAfter() <= 0 {
		t.Fatalf("over the burst: %v, want a *PacedError from gatebot's own pacing", err)
	}
	// Once allowed again, Teams answers 429: the conversation is blocked.
	c.pacer.m["conv|c1"].short.SetBurstAt(time.Now(), 10)
	c.pacer.m["conv|c1"].short.SetLimitAt(time.Now(), 1000)
	time.Sleep(5 * time.Millisecond)
	err = c.TryUpdateActivity(t.Context(), f.serviceURL(), "c1", "a1", &Activity{})
	if !errors.As(err, &pe) || pe.Err == nil || pe.RetryAfter() < 2*time.Second {
		t.Fatalf("429: %v, want a *PacedError carrying the connector's error and about 3 s", err)
	}
	if d, _ := c.pacer.reserve("conv|c1", time.Now()); d < 2*time.Second {
		t.Errorf("after a 429 the next send may go in %s; want it held until Retry-After", d)
	}
}

// TestTrySendNeverWaits: a send the conversation's pacing does not allow
// now is not made and says how long to wait.
func TestTrySendNeverWaits(t *testing.T) {
	send := wantRequest{method: "POST", requestURI: "/v3/conversations/c1/activities",
		body: `{"type":"message","conversation":{"id":"c1"}}`, status: 201, respBody: `{"id":"a1"}`}
	script := make([]wantRequest, paceShortBurst)
	for i := range script {
		script[i] = send
	}
	f := newFakeConnector(t, script...)
	c := f.connector(t, func(cfg *ConnectorConfig) { cfg.Pacing = true })
	c.pacer.sleep = func(ctx context.Context, d time.Duration) error {
		t.Errorf("TrySendToConversation waited %s", d)
		return nil
	}
	for range paceShortBurst {
		id, err := c.TrySendToConversation(t.Context(), f.serviceURL(), "c1", &Activity{Type: TypeMessage})
		if err != nil || id != "a1" {
			t.Fatalf("send = %q, %v; want a1", id, err)
		}
	}
	var pe *PacedError
	_, err := c.TrySendToConversation(t.Context(), f.serviceURL(), "c1", &Activity{Type: TypeMessage})
	if !errors.As(err, &pe) || pe.RetryAfter() <= 0 {
		t.Fatalf("over the burst: %v, want a *PacedError", err)
	}
}
