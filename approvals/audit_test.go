package approvals

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
)

func TestAuditQuery(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		api := mustCreate(t, e.store, newGate("api", 2, time.Hour))
		web := mustCreate(t, e.store, newGate("web", 1, time.Hour))
		if _, _, err := e.store.Decide(ctx, api.ID, bob, true, "", "conv-a"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.store.Decide(ctx, web.ID, carol, false, "no", "conv-w"); err != nil {
			t.Fatal(err)
		}
		all, err := e.store.Audit(ctx, AuditQuery{})
		if err != nil || len(all) != 4 {
			t.Fatalf("all entries: %d %v", len(all), err)
		}
		tests := []struct {
			name string
			q    AuditQuery
			want []string // gate:event
		}{
			{"pipeline", AuditQuery{Pipeline: "web"}, []string{web.ID + ":opened", web.ID + ":reject"}},
			{"user by UPN", AuditQuery{User: "BOB@example.com"}, []string{api.ID + ":approve"}},
			{"user by aad", AuditQuery{User: "aad:" + carol.AADObjectID}, []string{web.ID + ":reject"}},
			{"user by bare object id", AuditQuery{User: carol.AADObjectID}, []string{web.ID + ":reject"}},
			{"requester", AuditQuery{User: "alice@example.com", Pipeline: "api"}, []string{api.ID + ":opened"}},
			{"limit keeps the latest", AuditQuery{Limit: 2}, []string{api.ID + ":approve", web.ID + ":reject"}},
			{"since after all", AuditQuery{Since: all[3].At.Add(time.Millisecond)}, nil},
			{"until before all", AuditQuery{Until: all[0].At.Add(-time.Millisecond)}, nil},
			{"window", AuditQuery{Since: all[0].At, Until: all[3].At, User: "bob@example.com"}, []string{api.ID + ":approve"}},
		}
		for _, tt := range tests {
			got, err := e.store.Audit(ctx, tt.q)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			var ids []string
			for _, a := range got {
				ids = append(ids, a.GateID+":"+a.Event)
			}
			if diff := cmp.Diff(tt.want, ids); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tt.name, diff)
			}
		}
	})
}

func TestAuditTrim(t *testing.T) {
	backends(t, Options{AuditMaxLen: 10}, func(t *testing.T, e *env) {
		ctx := context.Background()
		for range 300 {
			mustCreate(t, e.store, newGate("api", 1, 0))
		}
		// MAXLEN ~ trims whole stream nodes (100 entries by default), so the
		// length stays near the cap, never near the 300 written.
		if n := e.rdb.XLen(ctx, e.store.auditKey()).Val(); n > 110 || n < 10 {
			t.Errorf("audit length = %d after 300 entries with cap 10", n)
		}
	})
	// With a maximum age, recent entries stay (and the XTRIM MINID the
	// store adds is accepted by the server).
	backends(t, Options{AuditMaxAge: time.Hour, Now: time.Now}, func(t *testing.T, e *env) {
		for range 5 {
			mustCreate(t, e.store, newGate("api", 1, 0))
		}
		if got, err := e.store.Audit(context.Background(), AuditQuery{}); err != nil || len(got) != 5 {
			t.Errorf("audit with max age: %d entries, %v", len(got), err)
		}
	})
}

func TestFormatAudit(t *testing.T) {
	at := time.Date(2025, 3, 1, 10, 4, 5, 0, time.UTC)
	entries := []AuditEntry{
		{ID: "1-0", At: at, GateID: "g_abc", Pipeline: "deploy-api", Event: "opened", Actor: "alice@example.com",
			ActorID: "aad:aaaa", Where: "teams", To: "pending", Inputs: map[string]any{"version": "1.4.2", "env": "prod"}},
		{ID: "2-0", At: at.Add(time.Minute), GateID: "g_abc", Pipeline: "deploy-api", Event: "reject", Actor: "bob@example.com",
			ActorID: "aad:bbbb", Where: "19:conv", From: "pending", To: "rejected", Reason: "not on a Friday"},
		{ID: "3-0", At: at.Add(2 * time.Minute), GateID: "g_def", Pipeline: "web", Event: "expired", From: "pending", To: "expired"},
	}
	var text bytes.Buffer
	if err := FormatAudit(&text, entries, false); err != nil {
		t.Fatal(err)
	}
	want := `2025-03-01T10:04:05Z  g_abc                   deploy-api        opened          by alice@example.com (aad:aaaa)  ->pending  in teams  env=prod  version=1.4.2
2025-03-01T10:05:05Z  g_abc                   deploy-api        reject          by bob@example.com (aad:bbbb)  pending->rejected  in 19:conv  reason="not on a Friday"
2025-03-01T10:06:05Z  g_def                   web               expired         pending->expired
`
	if diff := cmp.Diff(want, text.String()); diff != "" {
		t.Errorf("text (-want +got):\n%s", diff)
	}
	var js bytes.Buffer
	if err := FormatAudit(&js, entries, true); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(js.String()), "\n")
	if len(lines) != len(entries) {
		t.Fatalf("json lines = %d", len(lines))
	}
	for i, l := range lines {
		var got AuditEntry
		if err := json.Unmarshal([]byte(l), &got); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if diff := cmp.Diff(entries[i], got); diff != "" {
			t.Errorf("line %d round trip (-want +got):\n%s", i, diff)
		}
	}
	if !strings.Contains(lines[1], `"reason":"not on a Friday"`) || !strings.Contains(lines[1], `"actor_id":"aad:bbbb"`) {
		t.Errorf("json line lacks fields: %s", lines[1])
	}
}

// TestAuditCompactFields: an "opened" entry stores no to state and an
// Entra actor its bare object id, and both read back as before; entries a
// layout-2 gatebot wrote (ai with aad:, t pending) read the same.
func TestAuditCompactFields(t *testing.T) {
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		g := mustCreate(t, e.store, newGate("api", 1, time.Hour))
		msgs := e.rdb.XRange(ctx, e.store.auditKey(), "-", "+").Val()
		if len(msgs) != 1 {
			t.Fatalf("%d audit entries", len(msgs))
		}
		if _, ok := msgs[0].Values[afTo]; ok {
			t.Errorf("opened entry stores its to state: %v", msgs[0].Values)
		}
		if v := msgs[0].Values[afActAAD]; v != alice.AADObjectID {
			t.Errorf("actor object id stored as %v: %v", v, msgs[0].Values)
		}
		e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: e.store.auditKey(), Values: []string{afGate, g.ID, afPipe, "api",
			afEvent, "opened", afActor, alice.UPN, afActID, "aad:" + alice.AADObjectID, afTo, "pending"}})
		got, err := e.store.Audit(ctx, AuditQuery{User: alice.AADObjectID})
		if err != nil || len(got) != 2 {
			t.Fatalf("Audit: %d entries, %v", len(got), err)
		}
		for _, a := range got {
			if a.ActorID != "aad:"+alice.AADObjectID || a.To != "pending" || a.Actor != alice.UPN || a.GateID != g.ID {
				t.Errorf("entry read back as %+v", a)
			}
		}
	})
}
