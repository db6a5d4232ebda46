package approvals

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// Realistic Teams identifiers: channel user ids are about 100 characters.
const (
	teamsAlice = "29:1GcS4EyB_oSI8A88XmWBN7NJFyMqe3QGnJdgLfFGkJnVelzRGos0bPbpsfJjcbAD22bmKc4GMbrY2g4JDrrA8vM06X1-cHHle4zOE6U4ttcc"
	teamsBob   = "29:1Xq0Ftd9yG3pLz7d2QkWc5Kf8mRr1sVnB4hJtYaUeC6oIp9lN2gT7xZwE3vD5qHbM8uSjK0cFdR4yA6nLt1eO9wPiGs2xUvQ7kBzJh3fMyTa"
	teamsCarol = "29:1Lk7Wp2QxZs9Dv4Nm6Hb3Jc8Rt5Yg1Fq0Ue7Ao2Ki9Sl4Xd6Cw3Pn8Vb5Mz1Gh7Tr0Ey2Ju4Qf9Io6Wk3Ls5Ap8Dm1Nc7Hx2Bv4Zq6Rg0"
)

// typicalGate is a Teams gate as the handlers create it: three inputs, a
// message, a requester with channel id, object id and UPN, a two-approver
// policy with an allow-list, two approvals and the conversation reference
// of the /run message.
func typicalGate() *Gate {
	ref, _ := json.Marshal(map[string]any{
		"activityId": "1732267200123",
		"user":       map[string]string{"id": teamsAlice, "name": "Alice Example", "aadObjectId": "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"},
		"bot":        map[string]string{"id": "28:c9e8c047-2a74-40a2-b28a-b162d5f5327c", "name": "gatebot"},
		"conversation": map[string]any{"isGroup": true, "conversationType": "channel",
			"tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
			"id":       "19:a1b2c3d4e5f64789a0b1c2d3e4f5a6b7@thread.tacv2;messageid=1732267200123"},
		"channelId":  "msteams",
		"serviceUrl": "https://smba.trafficmanager.net/emea/",
		"locale":     "en-US",
	})
	return &Gate{
		Pipeline:  "deploy-api",
		Inputs:    map[string]any{"version": "1.4.2", "environment": "production", "region": "eu-west-1"},
		Message:   "hotfix for the checkout timeout",
		Requester: Person{ID: teamsAlice, AADObjectID: "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", UPN: "alice@contoso.com", Name: "Alice Example"},
		Origin:    "teams",
		Policy: Policy{Required: 2, Timeout: time.Hour,
			Approvers: []string{"bob@contoso.com", "carol@contoso.com", "aad:0f1e2d3c-4b5a-4968-8776-655443322110"}},
		Post: Post{Conversation: ref},
	}
}

func typicalVoters() []Person {
	return []Person{
		{ID: teamsBob, AADObjectID: "1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e", UPN: "bob@contoso.com", Name: "Bob Builder"},
		{ID: teamsCarol, AADObjectID: "2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f", UPN: "carol@contoso.com", Name: "Carol Jones"},
	}
}

// TestGateSize measures a typical gate in the real Redis with MEMORY USAGE
// (value, key and allocator overhead) while pending and once approved.
func TestGateSize(t *testing.T) {
	e := newEnv(t, true, Options{})
	ctx := context.Background()
	g := mustCreate(t, e.store, typicalGate())
	measure := func(stage string) int64 {
		stored := e.rdb.Get(ctx, e.store.gateKey(g.ID)).Val()
		mem, err := e.rdb.MemoryUsage(ctx, e.store.gateKey(g.ID)).Result()
		if err != nil {
			t.Fatal(err)
		}
		cur, err := e.store.Get(ctx, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		js, _ := json.Marshal(cur)
		t.Logf("typical gate %s: JSON %d bytes, stored %d bytes, MEMORY USAGE %d bytes", stage, len(js), len(stored), mem)
		return mem
	}
	pending := measure("pending")
	for _, p := range typicalVoters() {
		if _, _, err := e.store.Decide(ctx, g.ID, p, true, "", "19:a1b2c3d4e5f64789a0b1c2d3e4f5a6b7@thread.tacv2"); err != nil {
			t.Fatal(err)
		}
	}
	approved := measure("approved")
	if pending > 1024 || approved > 1024 {
		t.Errorf("typical gate uses %d (pending) / %d (approved) bytes in Redis, target ≤ 1024", pending, approved)
	}
}
