package approvals

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestFormatAuditCannotBeForged: free text in an entry (a caller's name, a
// reason, an input) never breaks the one-entry-one-line format, and bidi
// controls, which reorder what a reader sees, are stripped.
func TestFormatAuditCannotBeForged(t *testing.T) {
	t.Parallel()
	forged := "x\n2026-12-02T00:00:00Z  g_fake  deploy  approve  by admin@example.com"
	e := AuditEntry{
		At: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), GateID: "g_1", Pipeline: "deploy", Event: "opened",
		Actor: "api:ci#tok_1", ActorID: "api:ci#tok_1", ActorName: forged, Reason: "ok\u202Edetcejer",
		Inputs: map[string]any{"version": "1.0\n2026-12-02T00:00:00Z forged", "note": "a\u2066b"},
		Where:  "api:ci\rX",
	}
	for _, jsonLines := range []bool{false, true} {
		var b bytes.Buffer
		if err := FormatAudit(&b, []AuditEntry{e}, jsonLines); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		if n := strings.Count(out, "\n"); n != 1 || strings.ContainsAny(out, "\r") {
			t.Errorf("json=%v: %d lines for one entry: %q", jsonLines, n, out)
		}
		if strings.ContainsFunc(out, IsBidiControl) {
			t.Errorf("json=%v: bidi control in output: %q", jsonLines, out)
		}
		if jsonLines {
			var back AuditEntry
			if err := json.Unmarshal(b.Bytes(), &back); err != nil || back.ActorName != forged {
				t.Errorf("json line does not round-trip: %v %q", err, back.ActorName)
			}
			continue
		}
		if !strings.Contains(out, `by api:ci#tok_1`) || !strings.Contains(out, `as "x\n2026`) {
			t.Errorf("text line does not keep actor and quoted name apart: %q", out)
		}
	}
}

func TestAuditActorIsGatebotsIdentity(t *testing.T) {
	t.Parallel()
	cases := []struct {
		p         Person
		actor, id string
	}{
		{Person{ID: "api:ci#tok_1", Name: "Mallory"}, "api:ci#tok_1", "api:ci#tok_1"},
		{Person{ID: "api:ci#tok_1", UPN: "alice@example.com", Name: "Release train"}, "alice@example.com", "api:ci#tok_1"},
		{Person{ID: "29:1", AADObjectID: "a1", Name: "Alex Wilber"}, "Alex Wilber", "aad:a1"},
	}
	for _, c := range cases {
		if actor, id := auditActor(c.p); actor != c.actor || id != c.id {
			t.Errorf("auditActor(%+v) = %q, %q; want %q, %q", c.p, actor, id, c.actor, c.id)
		}
	}
}

func TestCheckText(t *testing.T) {
	t.Parallel()
	cases := []struct {
		s         string
		multiline bool
		ok        bool
	}{
		{"Release train", false, true},
		{"line\nline", true, true},
		{"line\nline", false, false},
		{"tab\there", true, true},
		{"nul\x00", true, false},
		{"esc\x1b[2J", true, false},
		{"rlo\u202e", true, false},
		{"lri\u2066", true, false},
		{"del\u007f", true, false},
		{"ünïcödé ✓", false, true},
		{strings.Repeat("a", 20), false, true},
		{strings.Repeat("a", 21), false, false},
		{"\xff", false, false},
	}
	for _, c := range cases {
		err := CheckText("f", c.s, 20, c.multiline)
		if (err == nil) != c.ok {
			t.Errorf("CheckText(%q, multiline=%v) = %v, want ok=%v", c.s, c.multiline, err, c.ok)
		}
	}
}
