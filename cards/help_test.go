package cards_test

import (
	"strings"
	"testing"

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

func TestHelpGolden(t *testing.T) {
	golden(t, "help", cards.Help(helpPipelines()))
	golden(t, "help_empty", cards.Help(nil))
}

func TestNoticeGolden(t *testing.T) {
	golden(t, "notice", cards.Notice("Unknown pipeline \"deploy-ap\"",
		"Did you mean deploy-api?", "Known pipelines: deploy-api, demo"))
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
