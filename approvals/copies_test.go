package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// TestRecordCopy: a copy binds its chat to the gate, a second copy for the
// same approver replaces the first, and each is recorded with a card sync.
func TestRecordCopy(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		g := mustCreate(t, e.store, newGate("deploy-api", 1, time.Hour))
		if _, err := e.store.SetPost(ctx, g.ID, Post{Conversation: json.RawMessage(`{}`), ActivityID: "a1"}, "d1"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.RecordCopy(ctx, g.ID, Copy{Conversation: json.RawMessage(`{}`)}, "dm-1"); !errors.Is(err, ErrNoCopyFor) {
			t.Fatalf("a copy for nobody: %v, want ErrNoCopyFor", err)
		}
		got, err := e.store.RecordCopy(ctx, g.ID, Copy{For: "bob@example.com", Failed: "not installed"}, "")
		if err != nil {
			t.Fatal(err)
		}
		if got.PostedIn(g.Tenant, "dm-1") {
			t.Error("a failed copy bound a conversation")
		}
		got, err = e.store.RecordCopy(ctx, g.ID, Copy{For: "BOB@example.com", Conversation: json.RawMessage(`{"id":"dm-1"}`), ActivityID: "c1"}, "dm-1")
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Copies) != 1 || got.Copies[0].ActivityID != "c1" || got.Copies[0].Failed != "" {
			t.Errorf("copies = %+v, want bob's failed copy replaced by c1", got.Copies)
		}
		if !got.PostedIn(g.Tenant, "dm-1") {
			t.Error("a click from the copy's chat would be refused")
		}
		if c, ok := got.CopyFor("bob@example.com"); !ok || c.ActivityID != "c1" {
			t.Errorf("CopyFor = %+v %v", c, ok)
		}
		syncs, _, err := e.store.ClaimCardSyncs(ctx, 10, time.Minute)
		if err != nil || len(syncs) != 1 || syncs[0].Version != got.Version {
			t.Errorf("card syncs after the copy: %+v %v, want one at version %d", syncs, err, got.Version)
		}
		back, err := e.store.Get(ctx, g.ID)
		if err != nil || len(back.Copies) != 1 {
			t.Fatalf("stored copies = %+v %v", back, err)
		}
	})
}
