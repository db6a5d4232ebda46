package gitlab

import (
	"testing"

	"github.com/gatebot/gatebot/pipelines"
)

// Every documented pipeline status (GET /projects/:id/pipelines/:id,
// status) maps to a state by name, not by the default.
func TestEveryDocumentedStatusIsMapped(t *testing.T) {
	t.Parallel()
	for status, want := range map[string]pipelines.Status{
		"created": pipelines.StatusQueued, "waiting_for_resource": pipelines.StatusQueued, "preparing": pipelines.StatusQueued,
		"pending": pipelines.StatusQueued, "scheduled": pipelines.StatusQueued,
		"running": pipelines.StatusRunning, "manual": pipelines.StatusRunning, "canceling": pipelines.StatusRunning,
		"success": pipelines.StatusSucceeded, "failed": pipelines.StatusFailed,
		"canceled": pipelines.StatusCancelled, "skipped": pipelines.StatusCancelled,
	} {
		if got, known := mapKnown(status); !known || got != want {
			t.Errorf("mapKnown(%q) = %s, %v; want %s, true", status, got, known, want)
		}
	}
	if _, known := mapKnown("brand_new"); known {
		t.Error("an undocumented value counts as known")
	}
}
