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
		mk := func() *Gate {
			g := newGate("deploy-api", 1, time.Hour)
			g.Policy.RemindBefore = 10 * time.Minute
			return mustCreate(t, e.store, g)
		}
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
