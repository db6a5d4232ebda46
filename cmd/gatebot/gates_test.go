package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/pipelines"
)

// TestGatesCommands opens gates through the store the bot uses, then
// lists, shows and cancels them with the CLI, end to end.
func TestGatesCommands(t *testing.T) {
	for name, b := range tokenBackends(t) {
		t.Run(name, func(t *testing.T) {
			cfg := writeTokenConfig(t, b, "")
			store, err := approvals.NewStore(b.rdb, approvals.Options{Prefix: b.prefix})
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			alice := approvals.Person{ID: "29:alice", UPN: "alice@example.com", Name: "Alice"}
			bob := approvals.Person{ID: "29:bob", UPN: "bob@example.com", Name: "Bob"}
			pol := approvals.Policy{Required: 1, Timeout: time.Hour}
			open := func(pipeline string, in map[string]any) *approvals.Gate {
				time.Sleep(3 * time.Millisecond) // distinct creation times, so "newest first" is one order
				g, _, err := store.Create(ctx, &approvals.Gate{Pipeline: pipeline, Inputs: in, Requester: alice, Policy: pol, Origin: "teams",
					CallbackURL: "https://hooks.example.com/cb?sig=secret-in-query"}, "")
				if err != nil {
					t.Fatal(err)
				}
				return g
			}
			pending := open("deploy-api", map[string]any{"version": "1.4.2"})
			web := open("deploy-web", nil)
			running := open("deploy-api", map[string]any{"version": "1.4.1"})
			if _, _, err := store.Decide(ctx, running.ID, bob, true, "looks good", "19:ops"); err != nil {
				t.Fatal(err)
			}
			if _, _, err := store.BeginTrigger(ctx, running.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := store.FinishTrigger(ctx, running.ID, pipelines.Run{ID: "run-7", URL: "https://ci.example.com/run/7", Status: "running"}, nil, "", time.Time{}); err != nil {
				t.Fatal(err)
			}

			// list: all, newest first; filtered by state and pipeline.
			out, _, err := cli(t, "gates", "list", "--config", cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range []string{"ID", "STATE", pending.ID, web.ID, running.ID, "running", "1/1", "Alice (alice@example.com, 29:alice)"} {
				if !strings.Contains(out, w) {
					t.Errorf("list lacks %q:\n%s", w, out)
				}
			}
			if strings.Index(out, running.ID) > strings.Index(out, pending.ID) {
				t.Errorf("list is not newest first:\n%s", out)
			}
			out, _, err = cli(t, "gates", "list", "--config", cfg, "--state", "pending", "--pipeline", "deploy-api")
			if err != nil || !strings.Contains(out, pending.ID) || strings.Contains(out, web.ID) || strings.Contains(out, running.ID) {
				t.Errorf("--state pending --pipeline deploy-api: %v\n%s", err, out)
			}
			out, _, err = cli(t, "gates", "list", "--config", cfg, "--state", "succeeded")
			if err != nil || !strings.Contains(out, "(no gates match)") {
				t.Errorf("an empty list must say so: %v\n%s", err, out)
			}
			out, _, err = cli(t, "gates", "list", "--config", cfg, "--json", "--limit", "2")
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 2 {
				t.Fatalf("--limit 2 --json gave %d lines:\n%s", len(lines), out)
			}
			var v gateView
			if err := json.Unmarshal([]byte(lines[0]), &v); err != nil || v.ID != running.ID || v.State != approvals.StateRunning ||
				v.Run == nil || v.Run.ID != "run-7" || len(v.Votes) != 1 || v.Policy.Timeout != "1h0m0s" {
				t.Errorf("JSON line = %+v (%v)", v, err)
			}
			if strings.Contains(out, "secret-in-query") {
				t.Error("a callback URL's query is printed")
			}

			// show: the full record.
			out, _, err = cli(t, "gates", "show", running.ID, "--config", cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range []string{"Gate:", running.ID, "State:", "running", "Input version:", "1.4.1", "Bob (bob@example.com, 29:bob) approved",
				`("looks good")`, "run-7", "https://ci.example.com/run/7", "1 approval(s) from anyone in the conversation", "https://hooks.example.com/cb?[redacted]"} {
				if !strings.Contains(out, w) {
					t.Errorf("show lacks %q:\n%s", w, out)
				}
			}
			out, _, err = cli(t, "gates", "show", "--config", cfg, "--json", pending.ID)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(out), &v); err != nil || v.ID != pending.ID || v.Inputs["version"] != "1.4.2" {
				t.Errorf("show --json = %+v (%v)", v, err)
			}
			if _, _, err := cli(t, "gates", "show", "--config", cfg, "g_nosuch"); err == nil || !strings.Contains(err.Error(), "no gate g_nosuch") {
				t.Errorf("unknown gate: %v", err)
			}

			// cancel: recorded by the store, audited as cli:<user>.
			out, _, err = cli(t, "gates", "cancel", "--config", cfg, "--reason", "change freeze", pending.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "Cancelled gate "+pending.ID) || !strings.Contains(out, "was pending") || !strings.Contains(out, "cli:alice") {
				t.Errorf("cancel output: %s", out)
			}
			g, err := store.Get(ctx, pending.ID)
			if err != nil || g.State != approvals.StateCancelled || g.DecidedBy == nil || g.DecidedBy.Display() != "cli:alice" || g.Reason != "change freeze" {
				t.Errorf("stored gate after cancel = %+v (%v)", g, err)
			}
			entries, err := store.Audit(ctx, approvals.AuditQuery{User: "cli:alice"})
			if err != nil || len(entries) != 1 || entries[0].GateID != pending.ID || entries[0].Event != "cancelled" || entries[0].Reason != "change freeze" {
				t.Errorf("audit of cli:alice = %+v (%v)", entries, err)
			}
			out, _, err = cli(t, "audit", "--config", cfg, "--user", "cli:alice")
			if err != nil || !strings.Contains(out, "by cli:alice") || !strings.Contains(out, "pending->cancelled") {
				t.Errorf("gatebot audit does not show the CLI cancel: %v\n%s", err, out)
			}

			_, _, err = cli(t, "gates", "cancel", "--config", cfg, "--reason", "again", pending.ID)
			if err == nil || !strings.Contains(err.Error(), "already ended (cancelled)") || errors.As(err, new(usageError)) {
				t.Errorf("cancelling twice: %v", err)
			}
			_, _, err = cli(t, "gates", "cancel", "--config", cfg, "--reason", "stop", running.ID)
			if err == nil || !strings.Contains(err.Error(), "running at the provider") {
				t.Errorf("cancelling a running gate must be refused, got %v", err)
			}
			if g, _ := store.Get(ctx, running.ID); g.State != approvals.StateRunning {
				t.Errorf("refused cancel changed the gate to %s", g.State)
			}
			if _, _, err := cli(t, "gates", "cancel", "--config", cfg, "--reason", "x", "g_nosuch"); err == nil || !strings.Contains(err.Error(), "no gate g_nosuch") {
				t.Errorf("cancel of an unknown gate: %v", err)
			}
		})
	}
}

func TestGatesNeedRedis(t *testing.T) {
	t.Parallel()
	_, _, err := cli(t, "gates", "list")
	if err == nil || !strings.Contains(err.Error(), "need redis.url") {
		t.Errorf("gates list on the dev config: %v", err)
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                                  "",
		"https://h.example.com/a/b":         "https://h.example.com/a/b",
		"https://u:pw@h.example.com/a?k=v":  "https://h.example.com/a?[redacted]",
		"https://h.example.com/cb?token=xy": "https://h.example.com/cb?[redacted]",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestGatesMigrate converts a prefix left at layout 2 and says so; a
// second run is harmless.
func TestGatesMigrate(t *testing.T) {
	for name, b := range tokenBackends(t) {
		t.Run(name, func(t *testing.T) {
			cfg := writeTokenConfig(t, b, "")
			ctx := t.Context()
			b.rdb.Set(ctx, b.prefix+"layout", "2", 0)
			for range 2 {
				out, _, err := cli(t, "gates", "migrate", "--config", cfg)
				if err != nil || !strings.Contains(out, "layout 3") {
					t.Fatalf("migrate: %q, %v", out, err)
				}
				if v := b.rdb.Get(ctx, b.prefix+"layout").Val(); v != "3" {
					t.Fatalf("layout %q after migrate", v)
				}
			}
		})
	}
}
