package approvals

import (
	"context"
	"testing"
	"time"
)

// TestReminders: a gate with RemindBefore is due for its reminder that long
// before its deadline, once; a gate decided before then is never due.
func TestReminders(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		mk := func() *Gate { return remindedGate(t, e) }
		waiting, decided := mk(), mk()
		if _, _, err := e.store.Decide(ctx, decided.ID, bob, true, "", ""); err != nil {
			t.Fatal(err)
		}
		if due, err := e.store.DueReminders(ctx, 10); err != nil || len(due) != 0 {
			t.Fatalf("reminders due an hour early: %v %v", due, err)
		}
		e.clock.Advance(51 * time.Minute)
		due, err := e.store.DueReminders(ctx, 10)
		if err != nil || len(due) != 1 || due[0].ID != waiting.ID {
			t.Fatalf("due at deadline − 10 min: %v %v, want only %s", due, err, waiting.ID)
		}
		if err := e.store.AckReminder(ctx, waiting.ID); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Minute)
		if due, _ := e.store.DueReminders(ctx, 10); len(due) != 0 {
			t.Errorf("a reminder came twice: %v", due)
		}
	})
}

// TestReminderThenExpiry: a gate to be reminded sits on one schedule at a
// time — the reminder's, then, once reminded, the expiry's — and still
// expires at its deadline; one whose reminder never got through is moved
// to the expiry schedule when its deadline comes and expires too.
func TestReminderThenExpiry(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		mk := func() *Gate { return remindedGate(t, e) }
		reminded, failing := mk(), mk()
		onDue := func(id string) bool {
			_, err := e.rdb.ZScore(ctx, e.store.dueKey(), id).Result()
			return err == nil
		}
		if onDue(reminded.ID) || onDue(failing.ID) {
			t.Fatal("a gate waiting for its reminder is on the expiry schedule too (two members per gate)")
		}
		e.clock.Advance(51 * time.Minute)
		due, err := e.store.DueReminders(ctx, 10)
		if err != nil || len(due) != 2 {
			t.Fatalf("reminders due: %v %v, want both", due, err)
		}
		if err := e.store.AckReminder(ctx, reminded.ID); err != nil {
			t.Fatal(err)
		}
		if !onDue(reminded.ID) {
			t.Fatal("a reminded gate is not on the expiry schedule")
		}
		// The other gate's reminder fails every time; at the deadline it
		// moves to the expiry schedule instead of being offered again.
		e.clock.Advance(10 * time.Minute)
		if got, err := e.store.DueReminders(ctx, 10); err != nil || len(got) != 0 {
			t.Fatalf("reminders offered past the deadline: %v %v", got, err)
		}
		expired, err := e.store.ExpireDue(ctx, 10)
		if err != nil || len(expired) != 2 {
			t.Fatalf("ExpireDue at the deadline: %d gates, %v; want both", len(expired), err)
		}
		for _, g := range expired {
			if g.State != StateExpired {
				t.Errorf("gate %s is %s, want expired", g.ID, g.State)
			}
		}
	})
}

// remindedGate creates a one-hour gate reminded 10 minutes before its end.
func remindedGate(t *testing.T, e *env) *Gate {
	t.Helper()
	g := newGate("deploy-api", 1, time.Hour)
	g.Policy.RemindBefore = 10 * time.Minute
	return mustCreate(t, e.store, g)
}
