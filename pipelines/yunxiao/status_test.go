package yunxiao

import (
	"testing"

	"github.com/gatebot/gatebot/pipelines"
)

// Every status the docs (FAIL, SUCCESS, RUNNING), the official MCP server
// (CANCELED, WAITING) and clients (INIT, QUEUED, FAILED) list maps to a
// state by name.
func TestEveryDocumentedStatusIsMapped(t *testing.T) {
	t.Parallel()
	for status, want := range map[string]pipelines.Status{
		"INIT": pipelines.StatusQueued, "QUEUED": pipelines.StatusQueued,
		"RUNNING": pipelines.StatusRunning, "WAITING": pipelines.StatusRunning,
		"SUCCESS": pipelines.StatusSucceeded, "FAIL": pipelines.StatusFailed, "FAILED": pipelines.StatusFailed,
		"CANCELED": pipelines.StatusCancelled,
	} {
		if got, known := mapKnown(status); !known || got != want {
			t.Errorf("mapKnown(%q) = %s, %v; want %s, true", status, got, known, want)
		}
	}
	if _, known := mapKnown("BRAND_NEW"); known {
		t.Error("an undocumented value counts as known")
	}
}
