package apiclient_test

import (
	"strings"
	"testing"

	"github.com/gatebot/gatebot/pipelines/apiclient"
)

func TestRunURL(t *testing.T) {
	t.Parallel()
	tmpl := apiclient.RunURL("https://ui.example.com/p/{pipeline_id}/runs/{run_id}")
	if err := tmpl.Check("run_url", "pipeline_id", "run_id"); err != nil {
		t.Fatal(err)
	}
	if got, want := tmpl.Expand(map[string]string{"pipeline_id": "a b/c", "run_id": "7"}), "https://ui.example.com/p/a%20b%2Fc/runs/7"; got != want {
		t.Errorf("Expand = %q, want %q", got, want)
	}
	if got := tmpl.Expand(map[string]string{"pipeline_id": "a"}); got != "" {
		t.Errorf("Expand with a missing value = %q, want none", got)
	}
	if got := apiclient.RunURL("").Expand(map[string]string{"x": "y"}); got != "" {
		t.Errorf("empty template expanded to %q", got)
	}
	for tmpl, want := range map[apiclient.RunURL]string{
		"ui.example.com/{run_id}":          "not an absolute",
		"ftp://ui.example.com/{run_id}":    "not an absolute",
		"https://ui.example.com/{team_id}": "unknown placeholder {team_id}",
	} {
		if err := tmpl.Check("run_url", "run_id"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%q) = %v, want %q", tmpl, err, want)
		}
	}
}
