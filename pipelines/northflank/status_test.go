package northflank

import (
	"testing"

	"github.com/gatebot/gatebot/pipelines"
)

// Every value of the documented status enum (Get release flow run
// details, data.status) maps to a state by name, not by the default.
func TestEveryDocumentedStatusIsMapped(t *testing.T) {
	t.Parallel()
	for status, want := range map[string]pipelines.Status{
		"pending": pipelines.StatusQueued, "queued": pipelines.StatusQueued,
		"waiting": pipelines.StatusRunning, "retrying": pipelines.StatusRunning, "async_wait": pipelines.StatusRunning,
		"approval_wait": pipelines.StatusRunning, "running": pipelines.StatusRunning, "aborting": pipelines.StatusRunning,
		"unknown": pipelines.StatusRunning,
		"success": pipelines.StatusSucceeded, "failure": pipelines.StatusFailed,
		"aborted": pipelines.StatusCancelled, "skipped": pipelines.StatusCancelled,
	} {
		if got, known := mapKnown(status); !known || got != want {
			t.Errorf("mapKnown(%q) = %s, %v; want %s, true", status, got, known, want)
		}
	}
	if _, known := mapKnown("brand_new"); known {
		t.Error("an undocumented value counts as known")
	}
}
