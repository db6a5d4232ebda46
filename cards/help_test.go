package cards_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gatebot/gatebot/approvals"

	"github.com/gatebot/gatebot/cards"
)

func helpPipelines() []cards.PipelineInfo {
	return []cards.PipelineInfo{
		{Name: "demo", Description: "Try gatebot without any CI system", Inputs: []cards.InputInfo{
			{Name: "version", Type: "string", Required: true, Description: "Image tag"},
			{Name: "dry_run", Type: "boolean", Default: "false"},
			{Name: "note", Description: "Free text"},
		}},
		{Name: "restart-cache"},
	}
}

func ptr(f float64) *float64 { return &f }

func formPipelines() []cards.PipelineInfo {
	return []cards.PipelineInfo{
		{Name: "deploy-api", Description: "Deploy the API to production", Inputs: []cards.InputInfo{
			{Name: "version", Type: "string", Required: true, Description: "Image tag to deploy", Pattern: `^[0-9]+\.[0-9]+\.[0-9]+$`},
			{Name: "env", Type: "string", Enum: []string{"staging", "prod"}, Default: "staging", Description: "Where to deploy"},
			{Name: "replicas", Type: "number", Default: "3", Min: ptr(1), Max: ptr(10)},
			{Name: "dry_run", Type: "boolean", Default: "false", Description: "Plan only, change nothing"},
			{Name: "note", Description: "Free text for the approvers"},
		}},
		{Name: "restart-cache", Description: "Restart the Redis cache"},
	}
}

func gateLines() []cards.GateLine {
	return []cards.GateLine{
		{ID: "g_01hx7k2m9q", Pipeline: "deploy-api", Headline: "1.4.2", State: approvals.StatePending, Requester: "Alice Example", Age: 12 * time.Minute, CanApprove: true},
		{ID: "g_01hx7a0b1c", Pipeline: "deploy-web", Headline: "2026.12.1", State: approvals.StatePending, Requester: "Bob Builder", Age: 3 * time.Hour},
		{ID: "g_01hx6zz0aa", Pipeline: "migrate-db", State: approvals.StateRunning, RunStatus: "queued", Requester: "Carol", Age: 40 * time.Second},
		{ID: "g_01hx6yy9bb", Pipeline: "deploy-api", Headline: "1.4.1", State: approvals.StateTriggerFailed, Requester: "Alice Example", Age: 26 * time.Hour},
	}
}

func TestHelpTexts(t *testing.T) {
	got := texts(t, cards.Help(helpPipelines()))
	for _, want := range []string{
		"`/run <pipeline> key=value …`",
		"**demo**",
		"string, required — Image tag",
		"boolean, default false",
		"string, optional — Free text",
		"No inputs",
	} {
		if !contains(got, want) {
			t.Errorf("help lacks %q; has:\n%s", want, strings.Join(got, "\n"))
		}
	}
}

// BenchmarkHelpCard measures building the help card, which every help
// turn does, and encoding it, which every reply carrying it does.
func BenchmarkHelpCard(b *testing.B) {
	infos := helpPipelines()
	b.Run("build", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if c := cards.Help(infos); len(c.Body) == 0 {
				b.Fatal("empty card")
			}
		}
	})
	b.Run("marshal", func(b *testing.B) {
		c := cards.Help(infos)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.MarshalJSON(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestHelpNamesTheBot: the help card tells people to mention the bot by
// the name it is installed under, escaped when it is not plain.
func TestHelpNamesTheBot(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, want string }{
		{"Release Bot", "`@Release Bot run …`"},
		{"", "`@gatebot run …`"},
		{"*ops*", `@\*ops\* run …`},
	} {
		got := strings.Join(texts(t, cards.HelpFor(tc.name, nil)), "\n")
		if !strings.Contains(got, tc.want) {
			t.Errorf("HelpFor(%q) says\n%s\nwant %q in it", tc.name, got, tc.want)
		}
	}
}
