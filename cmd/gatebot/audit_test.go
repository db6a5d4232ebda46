package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gatebot/gatebot/approvals"
)

// TestAuditCommand opens and decides gates through the store, then reads
// them back with `gatebot audit`, filtered, as text and JSON lines.
func TestAuditCommand(t *testing.T) {
	for name, b := range tokenBackends(t) {
		t.Run(name, func(t *testing.T) {
			cfg := writeTokenConfig(t, b, "")
			store, err := approvals.NewStore(b.rdb, approvals.Options{Prefix: b.prefix})
			if err != nil {
				t.Fatal(err)
			}
			alice := approvals.Person{ID: "29:alice", UPN: "alice@example.com", Name: "Alice"}
			bob := approvals.Person{ID: "29:bob", UPN: "bob@example.com", Name: "Bob"}
			pol := approvals.Policy{Required: 1, Timeout: time.Hour}
			api, _, err := store.Create(t.Context(), &approvals.Gate{Pipeline: "deploy-api", Inputs: map[string]any{"version": "1.4.2"}, Requester: alice, Policy: pol}, "")
			if err != nil {
				t.Fatal(err)
			}
			web, _, err := store.Create(t.Context(), &approvals.Gate{Pipeline: "deploy-web", Requester: alice, Policy: pol}, "")
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := store.Decide(t.Context(), api.ID, bob, true, "", "19:ops"); err != nil {
				t.Fatal(err)
			}
			if _, _, err := store.Decide(t.Context(), web.ID, bob, false, "freeze", "19:ops"); err != nil {
				t.Fatal(err)
			}

			out, _, err := cli(t, "audit", "--config", cfg, "--pipeline", "deploy-api")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, api.ID) || strings.Contains(out, web.ID) {
				t.Errorf("--pipeline deploy-api:\n%s", out)
			}
			for _, w := range []string{"opened", "approve", "by bob@example.com", "pending->approved", "version=1.4.2"} {
				if !strings.Contains(out, w) {
					t.Errorf("text output lacks %q:\n%s", w, out)
				}
			}

			out, _, err = cli(t, "audit", "--config", cfg, "--user", "bob@example.com", "--since", "1h", "--json")
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 2 {
				t.Fatalf("bob made 2 decisions, got %d lines:\n%s", len(lines), out)
			}
			var e approvals.AuditEntry
			if err := json.Unmarshal([]byte(lines[1]), &e); err != nil || e.GateID != web.ID || e.Reason != "freeze" {
				t.Errorf("JSON line = %+v (%v)", e, err)
			}

			if _, _, err := cli(t, "audit", "--config", cfg, "--since", "yesterday"); err == nil || !strings.Contains(err.Error(), "--since") {
				t.Errorf("a bad --since must be named, got %v", err)
			}
		})
	}
}
