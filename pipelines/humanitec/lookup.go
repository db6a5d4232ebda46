package humanitec

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/apiclient"
)

// ErrConflictUnresolved reports Humanitec's 409 to a create whose run
// gatebot could not find stamped with the gate: an earlier request for the
// gate may still be in progress, or may have started a run gatebot cannot
// recognise. A person checks Humanitec before retrying. It also wraps the
// *pipelines.APIError.
var ErrConflictUnresolved = errors.New("humanitec: 409 Conflict to a repeated create, and no run stamped with this gate was found: check the pipeline's runs in Humanitec before retrying")

// Lookup bounds: a repeat comes after a timeout, a 5xx or a worker restart,
// so the earlier run is among the newest; every page is a call.
const (
	lookupPages    = 5
	lookupPerPage  = 100
	lookupFallback = 24 * time.Hour // created_after when req.Since is unknown
	clockSkew      = 5 * time.Minute
)

// RepeatableTrigger reports whether a repeated Trigger for the gate is
// recognised: only when target.gate_id_input names a pipeline_call input
// that carries the gate id, so that Trigger can find the earlier run. The
// Idempotency-Key header alone does not count: Humanitec documents no
// replay behaviour for it.
func (c *Client) RepeatableTrigger(_ context.Context, req pipelines.Request) bool {
	tg, err := readTarget(req.Target)
	return err == nil && tg.gateInput != ""
}

// afterConflict handles a 409 to the create: Humanitec's "could not be
// applied based on the current state", here most likely an earlier
// request with the same Idempotency-Key. The run is looked up, never
// reported as a plain failure.
func (c *Client) afterConflict(ctx context.Context, tg target, req pipelines.Request, cerr error) (pipelines.Run, error) {
	if tg.gateInput == "" {
		return pipelines.Run{}, fmt.Errorf("%w (set target.%s to a pipeline input so gatebot can look the run up): %w", ErrConflictUnresolved, keyGateInput, cerr)
	}
	pr, found, err := c.findRun(ctx, tg, req)
	switch {
	case err != nil:
		return pipelines.Run{}, fmt.Errorf("%w: looking the run up failed: %w", ErrConflictUnresolved, errors.Join(cerr, err))
	case !found:
		return pipelines.Run{}, fmt.Errorf("%w: %w", ErrConflictUnresolved, cerr)
	}
	c.log.InfoContext(ctx, "create answered 409; found the gate's run", "gate_id", req.GateID, "run_id", pr.ID)
	return c.run(pr, tg), nil
}

// findRun lists the pipeline's runs created since the gate could have
// started one, newest first, for one whose gate input is the gate id.
//
// Humanitec API docs: listPipelineRuns,
// GET /orgs/{orgId}/apps/{appId}/pipelines/{pipelineId}/runs?created_after=…&per_page=…
// (an array of PipelineRun; a Link header with rel="next" for more).
func (c *Client) findRun(ctx context.Context, tg target, req pipelines.Request) (pipelineRun, bool, error) {
	since := req.Since
	if since.IsZero() {
		since = c.now().Add(-lookupFallback)
	}
	p, err := apiclient.Path("/orgs/{orgId}/apps/{appId}/pipelines/{pipelineId}/runs", c.org, tg.app, tg.pipeline)
	if err != nil {
		return pipelineRun{}, false, fmt.Errorf("humanitec: %w", err)
	}
	q := url.Values{
		"created_after": {since.Add(-clockSkew).UTC().Format(time.RFC3339)},
		"per_page":      {strconv.Itoa(lookupPerPage)},
	}
	next := p + "?" + q.Encode()
	for page := 0; page < lookupPages && next != ""; page++ {
		hr, err := c.api.NewRequest(ctx, http.MethodGet, next, nil)
		if err != nil {
			return pipelineRun{}, false, err
		}
		var runs []pipelineRun
		resp, err := c.api.Do(hr, "list runs", &runs)
		if err != nil {
			return pipelineRun{}, false, err
		}
		for _, r := range runs {
			if v, ok := r.Inputs[tg.gateInput].(string); ok && v == req.GateID && r.ID != "" {
				return r, true, nil
			}
		}
		next = nextLink(resp.Header.Get("Link"))
	}
	return pipelineRun{}, false, nil
}

var linkNext = regexp.MustCompile(`<([^>]+)>\s*;[^,]*rel="?next"?`)

// nextLink returns the rel="next" target of a Link header, or "".
func nextLink(h string) string {
	if m := linkNext.FindStringSubmatch(h); m != nil {
		return m[1]
	}
	return ""
}

// runURL links the run in the Platform Orchestrator UI. The route is the
// UI's (orgs/…/apps/…/pipelines/…/runs/…), not an API-documented contract.
func (c *Client) runURL(tg target, id string) string {
	if c.ui == "" || id == "" {
		return ""
	}
	p, err := apiclient.Path("/orgs/{org}/apps/{app}/pipelines/{pipeline}/runs/{run}", c.org, tg.app, tg.pipeline, id)
	if err != nil {
		return ""
	}
	return c.ui + p
}
