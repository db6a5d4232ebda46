package githubactions

import (
	"testing"

	"github.com/gatebot/gatebot/pipelines"
)

// Every documented status and conclusion of a workflow run maps to a
// state by name, not by a default.
func TestEveryDocumentedStatusIsMapped(t *testing.T) {
	t.Parallel()
	type sc struct{ status, conclusion string }
	for in, want := range map[sc]pipelines.Status{
		{"requested", ""}: pipelines.StatusQueued, {"queued", ""}: pipelines.StatusQueued, {"pending", ""}: pipelines.StatusQueued,
		{"in_progress", ""}: pipelines.StatusRunning, {"waiting", ""}: pipelines.StatusRunning,
		{"completed", "success"}: pipelines.StatusSucceeded, {"completed", "neutral"}: pipelines.StatusSucceeded,
		{"completed", "skipped"}: pipelines.StatusSucceeded,
		{"completed", "failure"}: pipelines.StatusFailed, {"completed", "timed_out"}: pipelines.StatusFailed,
		{"completed", "startup_failure"}: pipelines.StatusFailed, {"completed", "action_required"}: pipelines.StatusFailed,
		{"completed", "stale"}:     pipelines.StatusFailed,
		{"completed", "cancelled"}: pipelines.StatusCancelled,
	} {
		if got, known := mapKnown(in.status, in.conclusion); !known || got != want {
			t.Errorf("mapKnown(%q, %q) = %s, %v; want %s, true", in.status, in.conclusion, got, known, want)
		}
	}
	if _, known := mapKnown("brand_new", ""); known {
		t.Error("an undocumented status counts as known")
	}
	if got, known := mapKnown("completed", "brand_new"); known || got != pipelines.StatusFailed {
		t.Errorf("unknown conclusion = %s, %v", got, known)
	}
}
