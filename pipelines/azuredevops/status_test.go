package azuredevops

import (
	"testing"

	"github.com/gatebot/gatebot/pipelines"
)

// Every documented RunState and RunResult value maps to a state by name.
func TestEveryDocumentedStatusIsMapped(t *testing.T) {
	t.Parallel()
	type sr struct{ state, result string }
	for in, want := range map[sr]pipelines.Status{
		{"unknown", ""}: pipelines.StatusRunning, {"inProgress", ""}: pipelines.StatusRunning, {"canceling", ""}: pipelines.StatusRunning,
		{"completed", "succeeded"}: pipelines.StatusSucceeded, {"completed", "failed"}: pipelines.StatusFailed,
		{"completed", "unknown"}: pipelines.StatusFailed, {"completed", "canceled"}: pipelines.StatusCancelled,
	} {
		if got, known := mapKnown(in.state, in.result); !known || got != want {
			t.Errorf("mapKnown(%q, %q) = %s, %v; want %s, true", in.state, in.result, got, known, want)
		}
	}
	if _, known := mapKnown("notStarted", ""); known {
		t.Error("an undocumented state counts as known")
	}
}
