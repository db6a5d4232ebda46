package servicestage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/apiclient"
)

// releaseStatus maps every release task status code ServiceStage documents
// (Obtaining the Release Task List, servicestage_06_0246; the action page's
// answer uses the same field). Codes 6 and 8 are not documented.
var releaseStatus = map[int]struct {
	name string
	st   pipelines.Status
}{
	1:  {"initialization successful", pipelines.StatusQueued},
	2:  {"release successful", pipelines.StatusSucceeded},
	3:  {"release failed", pipelines.StatusFailed},
	4:  {"releasing", pipelines.StatusRunning},
	5:  {"to be approved", pipelines.StatusRunning}, // waits for a person
	7:  {"pause", pipelines.StatusRunning},          // waits for continue
	9:  {"skip", pipelines.StatusCancelled},         // ended without releasing (inferred)
	10: {"rolling back", pipelines.StatusRunning},
	// A rollback is final either way, and the approved release is not
	// in place after it: both end the gate as failed.
	11: {"rollback successful", pipelines.StatusFailed},
	12: {"rollback failed", pipelines.StatusFailed},
	13: {"stopping", pipelines.StatusRunning},
	14: {"restarting", pipelines.StatusRunning},
}

// MapStatus maps a release task status code (a number, sent as number or
// string) to a run state and a display text; known is false for a code
// ServiceStage does not document, which is then reported as running.
func MapStatus(code string) (st pipelines.Status, detail string, known bool) {
	code = strings.TrimSpace(code)
	n, err := strconv.Atoi(code)
	if s, ok := releaseStatus[n]; err == nil && ok {
		return s.st, fmt.Sprintf("%s (%d)", s.name, n), true
	}
	if code == "" {
		return pipelines.StatusRunning, "no status reported (ServiceStage documents none missing)", false
	}
	return pipelines.StatusRunning, "status " + code + " (a code ServiceStage does not document)", false
}

// Undocumented codes are followed for at most unknownStatusLimit (an hour;
// the failure message says so), then the run is reported failed: an
// unknown value must never keep a gate running (and polled) forever.
const (
	unknownStatusLimit = time.Hour
	refUnknownSince    = "unknown_status_since"
)

// settle maps code onto out. For an undocumented code the first sighting is
// kept in out.Ref (a copy: the caller's map is not modified); once it has
// lasted unknownStatusLimit the run is reported failed, saying why.
func settle(out *pipelines.Run, code string, now time.Time) {
	ref := make(map[string]string, len(out.Ref)+1)
	for k, v := range out.Ref {
		ref[k] = v
	}
	out.Ref = ref
	st, detail, known := MapStatus(code)
	out.Status, out.Detail = st, detail
	if known {
		delete(out.Ref, refUnknownSince)
		return
	}
	since, err := time.Parse(time.RFC3339, out.Ref[refUnknownSince])
	if err != nil {
		out.Ref[refUnknownSince] = now.UTC().Format(time.RFC3339)
		since = now
	}
	if now.Sub(since) >= unknownStatusLimit {
		out.Status = pipelines.StatusFailed
		out.Detail = "gatebot stopped following the release task: ServiceStage reported " + detail +
			" for over an hour; check the release task in ServiceStage"
	}
}

// decodeList reads an answer that is either the documented object with the
// list under key, or a bare array (the pages' examples are bare arrays).
func decodeList[T any](raw json.RawMessage, key string) ([]T, error) {
	raw = bytes.TrimSpace(raw)
	var list []T
	if len(raw) > 0 && raw[0] == '[' {
		err := json.Unmarshal(raw, &list)
		return list, err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, err
	}
	if v, ok := obj[key]; ok && !bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
		if err := json.Unmarshal(v, &list); err != nil {
			return nil, err
		}
	}
	return list, nil
}

// get fetches path and decodes its list under key.
func get[T any](ctx context.Context, c *Client, path, op, key string) ([]T, error) {
	var raw json.RawMessage
	resp, err := c.hw.Do(ctx, http.MethodGet, path, op, nil, &raw)
	if ae := (*pipelines.APIError)(nil); errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound {
		// The release task is gone: polling again cannot help.
		return nil, fmt.Errorf("%w: %w", pipelines.ErrRunLost, err)
	}
	if err != nil {
		return nil, err
	}
	list, err := decodeList[T](raw, key)
	if err != nil {
		return nil, c.hw.API().Malformed(op, resp.StatusCode, err.Error())
	}
	return list, nil
}

type entry struct {
	ID     apiclient.FlexString `json:"id"`
	Status apiclient.FlexString `json:"status"`
}

// recordStatus returns the status code of one execution from the release
// task's execution records; found is false when the records do not list
// it.
//
// Huawei Cloud API docs: GET /v3/{project_id}/pipeline/pipelines/{id}/records
// (https://support.huaweicloud.com/intl/en-us/api-servicestage/servicestage_06_0290.html):
// {count, records[]}, records[].id (Integer) being the execution id the
// action API returns. UNVERIFIED: the copy of the page read for this code
// ends its field table at pipeline_id, so whether a record carries status
// (and with which codes) is not confirmed; a record's status is used when
// present and read with the release task codes, otherwise Status falls back
// to the release task list.
func (c *Client) recordStatus(ctx context.Context, pipeline, execution string) (code string, found bool, err error) {
	p, err := apiclient.Path("/v3/{project_id}/pipeline/pipelines/{id}/records", c.cfg.ProjectID, pipeline)
	if err != nil {
		return "", false, fmt.Errorf("servicestage: %w", err)
	}
	recs, err := get[entry](ctx, c, p, "list release task records", "records")
	if err != nil {
		return "", false, err
	}
	for _, r := range recs {
		if string(r.ID) == execution {
			return string(r.Status), true, nil
		}
	}
	return "", false, nil
}

// releaseTaskStatus returns the release task's own status code from the
// release task list; a release task that is no longer listed is
// pipelines.ErrRunLost.
//
// Huawei Cloud API docs: GET /v3/{project_id}/pipeline/pipelines
// (https://support.huaweicloud.com/intl/en-us/api-servicestage/servicestage_06_0246.html).
func (c *Client) releaseTaskStatus(ctx context.Context, pipeline string) (string, error) {
	p, err := apiclient.Path("/v3/{project_id}/pipeline/pipelines", c.cfg.ProjectID)
	if err != nil {
		return "", fmt.Errorf("servicestage: %w", err)
	}
	list, err := get[entry](ctx, c, p, "list release tasks", "pipelines")
	if err != nil {
		return "", err
	}
	for _, e := range list {
		if string(e.ID) == pipeline {
			return string(e.Status), nil
		}
	}
	return "", fmt.Errorf("servicestage: release task %s is no longer in the project's release task list: %w", pipeline, pipelines.ErrRunLost)
}

// Status fetches the run's state: the status of its own execution from the
// release task's execution records when they list it with a status, and
// otherwise the release task's status from the release task list (the
// state of its latest execution, which is the gate's unless someone
// started the release task again since).
func (c *Client) Status(ctx context.Context, run pipelines.Run) (pipelines.Run, error) {
	pl := run.Ref[refPipeline]
	if pl == "" {
		return run, fmt.Errorf("servicestage: run reference lacks pipeline_id: %w", pipelines.ErrRunLost)
	}
	out := run
	code, found := "", false
	if ex := run.Ref[refExecution]; ex != "" {
		var err error
		if code, found, err = c.recordStatus(ctx, pl, ex); err != nil {
			return run, err
		}
	}
	if !found || code == "" {
		var err error
		if code, err = c.releaseTaskStatus(ctx, pl); err != nil {
			return run, err
		}
	}
	settle(&out, code, c.now())
	if _, _, known := MapStatus(code); !known {
		c.log.WarnContext(ctx, "undocumented release task status", "pipeline_id", pl, "status", code)
	}
	if out.URL == "" {
		out.URL = c.cfg.runURL(pl, run.Ref[refExecution])
	}
	return out, nil
}
