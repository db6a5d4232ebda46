package codearts

import (
	"strings"
	"time"

	"github.com/gatebot/gatebot/pipelines"
)

// v5Status maps every status value CodeArts Pipeline documents for a run,
// a stage or a job, with why where the choice is not obvious. Sources: the
// ListPipelineRuns page and the Huawei Cloud SDK's codeartspipeline v2
// models (ListPipelineRunsPagePipelineRuns.status: COMPLETED, RUNNING,
// FAILED, CANCELED, PAUSED, SUSPEND, IGNORED; stage and job status add
// INIT, QUEUED, SKIPPED, ASYNC_RUNNING, ASYNC_FAILED, UNSELECTED,
// REDISPATCH). ShowPipelineRunDetail's own status field is undocumented
// beyond "status"; it is read with the same table.
var v5Status = map[string]pipelines.Status{
	"INIT":          pipelines.StatusQueued,
	"QUEUED":        pipelines.StatusQueued,
	"REDISPATCH":    pipelines.StatusQueued, // being scheduled again
	"RUNNING":       pipelines.StatusRunning,
	"ASYNC_RUNNING": pipelines.StatusRunning,
	"PAUSED":        pipelines.StatusRunning, // waits for a person (manual review, pause)
	"SUSPEND":       pipelines.StatusRunning, // likewise
	"COMPLETED":     pipelines.StatusSucceeded,
	"FAILED":        pipelines.StatusFailed,
	"ASYNC_FAILED":  pipelines.StatusFailed,
	"CANCELED":      pipelines.StatusCancelled,
	// IGNORED (忽略), SKIPPED and UNSELECTED mean CodeArts did not execute
	// the run (or its only work): terminal, and nothing was deployed, so
	// the gate ends as cancelled rather than waiting forever. Inferred from
	// the value names; the pages do not explain them.
	"IGNORED":    pipelines.StatusCancelled,
	"SKIPPED":    pipelines.StatusCancelled,
	"UNSELECTED": pipelines.StatusCancelled,
}

// MapV5Status maps a CodeArts Pipeline status value; known is false for a
// value CodeArts does not document, which is then reported as running.
func MapV5Status(s string) (st pipelines.Status, known bool) {
	st, known = v5Status[strings.ToUpper(strings.TrimSpace(s))]
	if !known {
		return pipelines.StatusRunning, false
	}
	return st, true
}

// Undocumented statuses are followed for at most unknownStatusLimit (an
// hour; the failure message says so), then
// the run is reported failed: an unknown value must never keep a gate
// running (and polled) forever.
const (
	unknownStatusLimit = time.Hour
	refUnknownSince    = "unknown_status_since"
)

// settle applies a mapped status to out. For an undocumented value the
// first sighting is kept in out.Ref; once it has lasted unknownStatusLimit
// the run is reported failed with a message saying why.
func settle(out *pipelines.Run, st pipelines.Status, known bool, raw string, now time.Time) {
	ref := make(map[string]string, len(out.Ref)+1)
	for k, v := range out.Ref {
		ref[k] = v
	}
	out.Ref = ref
	out.Status, out.Detail = st, raw
	if known {
		delete(out.Ref, refUnknownSince)
		return
	}
	since, err := time.Parse(time.RFC3339, out.Ref[refUnknownSince])
	if err != nil {
		out.Ref[refUnknownSince] = now.UTC().Format(time.RFC3339)
		since = now
	}
	out.Detail = raw + " (a status CodeArts does not document)"
	if now.Sub(since) >= unknownStatusLimit {
		out.Status = pipelines.StatusFailed
		out.Detail = "gatebot stopped following the run: CodeArts reported the undocumented status " + raw +
			" for over an hour; check the run in CodeArts"
	}
}
