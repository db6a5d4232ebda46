package approvals

import (
	"context"
	"errors"
	"github.com/gatebot/gatebot/pipelines"
	"net"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// TestUnavailable checks that every Redis failure is reported as
// ErrUnavailable with the cause kept, that no vote is reported accepted
// when it could not be written, and that the store recovers by itself.
func TestUnavailable(t *testing.T) {
	ctx := context.Background()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1, DialerRetries: 1, DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	s, err := NewStore(rdb, Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := mustCreate(t, s, newGate("deploy-api", 1, time.Hour))

	calls := []struct {
		name string
		call func() error
	}{
		{"Ping", func() error { return s.Ping(ctx) }},
		{"Get", func() error { _, err := s.Get(ctx, g.ID); return err }},
		{"Create", func() error { _, _, err := s.Create(ctx, newGate("x", 1, 0), "k"); return err }},
		{"Decide", func() error { _, _, err := s.Decide(ctx, g.ID, bob, true, "", ""); return err }},
		{"Update", func() error { _, err := s.updateWith(ctx, g.ID, func(*Gate) error { return nil }); return err }},
		{"Cancel", func() error { _, err := s.Cancel(ctx, g.ID, bob, ""); return err }},
		{"ExpireDue", func() error { _, err := s.ExpireDue(ctx, 10); return err }},
		{"ClaimTriggers", func() error { _, err := s.ClaimTriggers(ctx, "c", map[string]int{"deploy-api": 1}, 0); return err }},
		{"AckTrigger", func() error { return s.AckTrigger(ctx, Trigger{MessageID: "1-0"}) }},
		{"BeginTrigger", func() error { _, _, err := s.BeginTrigger(ctx, g.ID); return err }},
		{"FinishTrigger", func() error { _, err := s.FinishTrigger(ctx, g.ID, pipelines.Run{}, nil, "", time.Time{}); return err }},
		{"DeferPoll", func() error { return s.DeferPoll(ctx, g.ID, time.Now()) }},
		{"ClaimPolls", func() error { _, _, err := s.ClaimPolls(ctx, 1, time.Second); return err }},
		{"RecordRun", func() error { _, err := s.RecordRun(ctx, g.ID, pipelines.Run{}, time.Now()); return err }},
		{"ClaimCardSyncs", func() error { _, _, err := s.ClaimCardSyncs(ctx, 1, time.Second); return err }},
		{"ClaimCallbacks", func() error { _, err := s.ClaimCallbacks(ctx, 1, time.Second); return err }},
		{"List", func() error { _, _, err := s.List(ctx, ListQuery{}); return err }},
		{"Audit", func() error { _, err := s.Audit(ctx, AuditQuery{}); return err }},
		{"Once", func() error { _, err := s.Once(ctx, "a", time.Minute); return err }},
		{"PutConversation", func() error { return s.PutConversation(ctx, "c", []byte("x")) }},
		{"Conversation", func() error { _, err := s.Conversation(ctx, "c"); return err }},
		{"DeleteConversation", func() error { return s.DeleteConversation(ctx, "c") }},
	}
	failures := []struct {
		name   string
		break_ func()
		cause  func(error) bool
		fix    func()
	}{
		{"loading", func() { mr.SetError("LOADING Redis is loading the dataset in memory") },
			func(err error) bool { var re redis.Error; return errors.As(err, &re) },
			func() { mr.SetError("") }},
		{"connection refused", func() { mr.Close() },
			func(err error) bool { var ne *net.OpError; return errors.As(err, &ne) },
			func() {
				if err := mr.Restart(); err != nil {
					t.Fatal(err)
				}
			}},
	}
	for _, f := range failures {
		f.break_()
		for _, c := range calls {
			err := c.call()
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("%s/%s: err = %v, want ErrUnavailable", f.name, c.name, err)
				continue
			}
			if !f.cause(err) {
				t.Errorf("%s/%s: cause lost: %v", f.name, c.name, err)
			}
		}
		// Decide must not return an outcome it could not record.
		if got, out, err := s.Decide(ctx, g.ID, bob, true, "", ""); err == nil || out != "" || got != nil {
			t.Errorf("%s: Decide while down = %v %q %v", f.name, got, out, err)
		}
		f.fix()
		// go-redis re-dials in the background about once a second after
		// repeated dial failures.
		deadline := time.Now().Add(5 * time.Second)
		for err := s.Ping(ctx); err != nil; err = s.Ping(ctx) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no recovery: %v", f.name, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// After the restart (miniredis keeps its data) everything works again,
	// including the trigger group, which is recreated on first use.
	mr.FlushAll()
	g = mustCreate(t, s, newGate("deploy-api", 1, time.Hour))
	if _, out, err := s.Decide(ctx, g.ID, bob, true, "", ""); err != nil || out != OutcomeApproved {
		t.Fatalf("Decide after recovery: %v %v", out, err)
	}
	trs, err := s.ClaimTriggers(ctx, "c", map[string]int{"deploy-api": 5}, 0)
	if err != nil || len(trs) != 1 || trs[0].GateID != g.ID {
		t.Errorf("ClaimTriggers after recovery: %+v %v", trs, err)
	}
	// Domain errors are not unavailability.
	if _, _, err := s.Decide(ctx, g.ID, carol, true, "", ""); !errors.Is(err, ErrNotPending) || errors.Is(err, ErrUnavailable) {
		t.Errorf("domain error classified as %v", err)
	}
}
