package githubactions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/apiclient"
)

// ProviderType is the provider `type` in gatebot's configuration.
const ProviderType = "github_actions"

// RunAppearTimeout is how long Status keeps looking for a dispatched run
// that the dispatch did not identify before it gives up.
const RunAppearTimeout = 10 * time.Minute

// lookback bounds the duplicate check before a dispatch: gates are decided
// and triggered within hours, never days.
const lookback = 24 * time.Hour

// clockSkew widens the "created since dispatch" filter, because the
// dispatch time is gatebot's clock and created_at is GitHub's.
const clockSkew = 2 * time.Minute

// Keys of Run.Ref. Status and Cancel receive only the Run, so it carries
// the repository coordinates; the gate id and dispatch time are there for
// finding a run the dispatch did not identify.
const (
	RefOwner        = "owner"
	RefRepo         = "repo"
	RefWorkflow     = "workflow"
	RefGateID       = "gate_id"
	RefGateIDInput  = "gate_id_input"
	RefDispatchedAt = "dispatched_at"
)

// ErrRunNotFound reports a dispatched run that could not be identified (see
// the package documentation).
var ErrRunNotFound = fmt.Errorf("githubactions: dispatched run not found: %w", pipelines.ErrRunLost)

// Option adjusts a Client built by New.
type Option = apiclient.Option

// WithHTTPClient sets the HTTP client (it is copied; set its Timeout).
func WithHTTPClient(hc *http.Client) Option { return apiclient.WithHTTPClient("githubactions", hc) }

// WithLogger sets the logger; nil discards.
func WithLogger(l *slog.Logger) Option { return apiclient.WithLogger(l) }

// WithNow replaces the clock, for tests.
func WithNow(now func() time.Time) Option { return apiclient.WithNow("githubactions", now) }

// Client is a GitHub Actions provider. It is safe for concurrent use.
type Client struct {
	cfg  Config
	api  *apiclient.Client
	log  *slog.Logger
	now  func() time.Time
	noRD atomic.Bool // the server refused return_run_details once
}

var (
	_ pipelines.Provider = (*Client)(nil)
	_ pipelines.Canceler = (*Client)(nil)
	_ pipelines.Checker  = (*Client)(nil)
)

// New validates cfg and returns a Client.
func New(cfg Config, opts ...Option) (*Client, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("githubactions: config: %w", errors.Join(errs...))
	}
	o, err := apiclient.ApplyOptions(opts)
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, log: o.Logger.With("provider", ProviderType), now: o.Now}
	api, err := apiclient.New(apiclient.Options{
		Provider:   ProviderType,
		BaseURL:    cfg.baseURL(),
		HTTPClient: o.HTTPClient,
		Logger:     o.Logger,
		Now:        o.Now,
		Authorize:  apiclient.BearerToken(cfg.Token).Authorize,
		Secrets:    apiclient.BearerToken(cfg.Token).Secrets,
		ParseError: parseError,
	})
	if err != nil {
		return nil, fmt.Errorf("githubactions: %w", err)
	}
	c.api = api
	return c, nil
}

// parseError reads GitHub's {"message","documentation_url","status"}.
func parseError(body []byte) (code, message string) {
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) != nil {
		return "", ""
	}
	return "", e.Message
}

type dispatchRequest struct {
	Ref              string            `json:"ref"`
	Inputs           map[string]string `json:"inputs,omitempty"`
	ReturnRunDetails bool              `json:"return_run_details,omitempty"`
}

type dispatchResponse struct {
	WorkflowRunID int64  `json:"workflow_run_id"`
	RunURL        string `json:"run_url"`
	HTMLURL       string `json:"html_url"`
}

type workflowRun struct {
	ID           int64     `json:"id"`
	DisplayTitle string    `json:"display_title"`
	Status       string    `json:"status"`
	Conclusion   string    `json:"conclusion"`
	HTMLURL      string    `json:"html_url"`
	CreatedAt    time.Time `json:"created_at"`
}

type workflowRuns struct {
	WorkflowRuns []workflowRun `json:"workflow_runs"`
}

// Trigger dispatches the workflow, unless a run stamped with the gate id
// already exists (a retry after a crash), in which case that run is
// returned.
//
// GitHub API docs: https://docs.github.com/rest/actions/workflows#create-a-workflow-dispatch-event
//
//meta:operation POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches
func (c *Client) Trigger(ctx context.Context, req pipelines.Request) (pipelines.Run, error) {
	t, errs := parseTarget(req.Target)
	if len(errs) > 0 {
		return pipelines.Run{}, fmt.Errorf("githubactions: %w", errors.Join(errs...))
	}
	if req.GateID == "" {
		return pipelines.Run{}, errors.New("githubactions: trigger run: empty gate id")
	}
	now := c.now().UTC()
	ref := map[string]string{
		RefOwner: t.Owner, RefRepo: t.Repo, RefWorkflow: t.Workflow,
		RefGateID: req.GateID, RefGateIDInput: t.GateIDInput,
		RefDispatchedAt: now.Format(time.RFC3339),
	}
	if t.GateIDInput != "" {
		found, ok, err := c.findRun(ctx, t.Owner, t.Repo, t.Workflow, req.GateID, now.Add(-lookback))
		if err != nil {
			return pipelines.Run{}, err
		}
		if ok {
			c.log.InfoContext(ctx, "run for this gate already exists; not dispatching again",
				"gate_id", req.GateID, "run_id", found.ID)
			ref[RefDispatchedAt] = found.CreatedAt.UTC().Format(time.RFC3339)
			return toRun(found, ref), nil
		}
	}

	body := dispatchRequest{Ref: t.Ref, Inputs: pipelines.StringInputs(req.Inputs)}
	if t.GateIDInput != "" {
		body.Inputs[t.GateIDInput] = req.GateID
	}
	body.ReturnRunDetails = c.cfg.returnRunDetails() && !c.noRD.Load()
	var out dispatchResponse
	resp, err := c.dispatch(ctx, t, body, &out)
	var ae *pipelines.APIError
	if body.ReturnRunDetails && errors.As(err, &ae) && refusesRunDetails(ae) {
		// Older GHES refuses the unknown field (400, or 422 "\"return_run_details\"
		// is not a permitted key") before dispatching anything, so sending
		// the request again without it is safe.
		c.log.WarnContext(ctx, "server refused return_run_details; dispatching without it and finding runs by gate id",
			"message", ae.Message)
		body.ReturnRunDetails = false
		out = dispatchResponse{}
		resp, err = c.dispatch(ctx, t, body, &out)
		if err == nil {
			c.noRD.Store(true) // only once the field is known to be the problem
		}
	}
	if err != nil {
		return pipelines.Run{}, explainDispatchError(err, t)
	}
	if resp.StatusCode == http.StatusOK && out.WorkflowRunID != 0 {
		return pipelines.Run{
			ID:     strconv.FormatInt(out.WorkflowRunID, 10),
			URL:    out.HTMLURL,
			Status: pipelines.StatusQueued,
			Detail: "github: dispatched",
			Ref:    ref,
		}, nil
	}
	if t.GateIDInput == "" {
		return pipelines.Run{}, fmt.Errorf("githubactions: trigger run: the workflow was dispatched but GitHub did not return the run and no gate_id_input is set to find it: %w", ErrRunNotFound)
	}
	return pipelines.Run{
		URL:    c.workflowURL(t),
		Status: pipelines.StatusQueued,
		Detail: "github: dispatched; waiting for the run to appear",
		Ref:    ref,
	}, nil
}

// workflowURL links the workflow's runs page, shown until the dispatched
// run is known: https://github.com/OWNER/REPO/actions/workflows/FILE on
// github.com, the same under the host of a GHES base URL ending in
// /api/v3. A numeric workflow id has no page route, so no link.
func (c *Client) workflowURL(t target) string {
	if _, err := strconv.ParseInt(t.Workflow, 10, 64); err == nil {
		return ""
	}
	base := strings.TrimRight(c.cfg.baseURL(), "/")
	var web string
	switch {
	case base == DefaultBaseURL:
		web = "https://github.com"
	case strings.HasSuffix(base, "/api/v3"):
		web = strings.TrimSuffix(base, "/api/v3")
	default:
		return ""
	}
	p, err := apiclient.Path("/{owner}/{repo}/actions/workflows/{workflow}", t.Owner, t.Repo, t.Workflow)
	if err != nil {
		return ""
	}
	return web + p
}

// refusesRunDetails reports a dispatch refused because of the
// return_run_details field: any 400 (GHES ≤ 3.20, cli/cli#12672), or a 422
// naming the field ("\"return_run_details\" is not a permitted key").
func refusesRunDetails(ae *pipelines.APIError) bool {
	return ae.StatusCode == http.StatusBadRequest ||
		ae.StatusCode == http.StatusUnprocessableEntity && strings.Contains(ae.Message, "return_run_details")
}

// explainDispatchError names the cause of a 422 "Unexpected inputs
// provided": the workflow's on.workflow_dispatch.inputs does not declare
// an input gatebot sent, often the gate id input.
func explainDispatchError(err error, t target) error {
	var ae *pipelines.APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(ae.Message, "Unexpected inputs provided") {
		return err
	}
	hint := "declare every pipeline input under on.workflow_dispatch.inputs"
	if t.GateIDInput != "" && strings.Contains(ae.Message, t.GateIDInput) {
		hint = fmt.Sprintf("declare the input %q (type: string) in the workflow, or remove target.gate_id_input", t.GateIDInput)
	}
	return fmt.Errorf("githubactions: the workflow %s does not declare an input gatebot sent (%s): %w", t.Workflow, hint, err)
}

func (c *Client) dispatch(ctx context.Context, t target, body dispatchRequest, out *dispatchResponse) (*apiclient.Response, error) {
	p, err := apiclient.Path("/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", t.Owner, t.Repo, t.Workflow)
	if err != nil {
		return nil, fmt.Errorf("githubactions: %w", err)
	}
	return c.do(ctx, http.MethodPost, p, body, "dispatch workflow", out)
}

func (c *Client) do(ctx context.Context, method, ref string, body any, op string, v any) (*apiclient.Response, error) {
	req, err := c.api.NewRequest(ctx, method, ref, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	resp, err := c.api.Do(req, op, v)
	var ae *pipelines.APIError
	if errors.As(err, &ae) && resp != nil {
		// Rate limits answer 403 or 429: the primary limit with
		// X-RateLimit-Remaining: 0 and the reset time, a secondary limit
		// with Retry-After. Either way nothing ran, so a 403 of that kind
		// is temporary, as a 429 is.
		// https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api
		exhausted := resp.Header.Get("X-RateLimit-Remaining") == "0"
		if exhausted && ae.RetryAfter == 0 {
			if reset, perr := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); perr == nil {
				ae.RetryAfter = max(time.Unix(reset, 0).Sub(c.now()), time.Second)
			}
		}
		if ae.StatusCode == http.StatusForbidden && (exhausted || resp.Header.Get("Retry-After") != "") {
			ae.RateLimited = true
		}
	}
	return resp, err
}

// findRun lists the workflow's workflow_dispatch runs created since since
// and returns the oldest whose display_title carries gateID as a word.
//
// GitHub API docs: https://docs.github.com/rest/actions/workflow-runs#list-workflow-runs-for-a-workflow
//
//meta:operation GET /repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs
func (c *Client) findRun(ctx context.Context, owner, repo, workflow, gateID string, since time.Time) (workflowRun, bool, error) {
	p, err := apiclient.Path("/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs", owner, repo, workflow)
	if err != nil {
		return workflowRun{}, false, fmt.Errorf("githubactions: %w", err)
	}
	q := url.Values{
		"event":    {"workflow_dispatch"},
		"created":  {">=" + since.UTC().Format(time.RFC3339)},
		"per_page": {"100"},
	}
	var out workflowRuns
	if _, err := c.do(ctx, http.MethodGet, p+"?"+q.Encode(), nil, "find run", &out); err != nil {
		return workflowRun{}, false, err
	}
	var best workflowRun
	for _, r := range out.WorkflowRuns {
		if hasWord(r.DisplayTitle, gateID) && (best.ID == 0 || r.ID < best.ID) {
			best = r
		}
	}
	return best, best.ID != 0, nil
}

// hasWord reports whether s contains w delimited by characters that cannot
// be part of a gate id, so gate g-1 does not match a title naming g-12.
func hasWord(s, w string) bool {
	if w == "" {
		return false
	}
	isID := func(r byte) bool {
		return r == '-' || r == '_' || r == '.' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')
	}
	for i := 0; ; {
		j := strings.Index(s[i:], w)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(w)
		if (start == 0 || !isID(s[start-1])) && (end == len(s) || !isID(s[end])) {
			return true
		}
		i = start + 1
	}
}

// Status fetches the run, first finding it by gate id if the dispatch did
// not identify it.
//
// GitHub API docs: https://docs.github.com/rest/actions/workflow-runs#get-a-workflow-run
//
//meta:operation GET /repos/{owner}/{repo}/actions/runs/{run_id}
func (c *Client) Status(ctx context.Context, run pipelines.Run) (pipelines.Run, error) {
	if run.ID == "" {
		return c.resolve(ctx, run)
	}
	owner, repo, err := repoOf(run)
	if err != nil {
		return run, err
	}
	p, err := apiclient.Path("/repos/{owner}/{repo}/actions/runs/{run_id}", owner, repo, run.ID)
	if err != nil {
		return run, fmt.Errorf("githubactions: %w", err)
	}
	var wr workflowRun
	if _, err := c.do(ctx, http.MethodGet, p, nil, "run status", &wr); err != nil {
		return run, err
	}
	return toRun(wr, run.Ref), nil
}

// resolve looks for a run the dispatch did not identify.
func (c *Client) resolve(ctx context.Context, run pipelines.Run) (pipelines.Run, error) {
	owner, repo, err := repoOf(run)
	if err != nil {
		return run, err
	}
	gate, input := run.Ref[RefGateID], run.Ref[RefGateIDInput]
	at, terr := time.Parse(time.RFC3339, run.Ref[RefDispatchedAt])
	if gate == "" || input == "" || run.Ref[RefWorkflow] == "" || terr != nil {
		return run, fmt.Errorf("%w: run has no id and its ref cannot find it", ErrRunNotFound)
	}
	found, ok, err := c.findRun(ctx, owner, repo, run.Ref[RefWorkflow], gate, at.Add(-clockSkew))
	if err != nil {
		return run, err
	}
	if ok {
		return toRun(found, run.Ref), nil
	}
	if waited := c.now().Sub(at); waited > RunAppearTimeout {
		return run, fmt.Errorf("%w: no run of %s whose name carries gate id %s appeared within %s of the dispatch; make the workflow's run-name include ${{ inputs.%s }}",
			ErrRunNotFound, run.Ref[RefWorkflow], gate, RunAppearTimeout, input)
	}
	return run, nil
}

func repoOf(run pipelines.Run) (string, string, error) {
	owner, repo := run.Ref[RefOwner], run.Ref[RefRepo]
	if owner == "" || repo == "" {
		return "", "", fmt.Errorf("githubactions: run %q: ref lacks owner/repo", run.ID)
	}
	return owner, repo, nil
}

func toRun(wr workflowRun, ref map[string]string) pipelines.Run {
	detail := "github: " + wr.Status
	if wr.Conclusion != "" {
		detail += " (" + wr.Conclusion + ")"
	}
	return pipelines.Run{
		ID:     strconv.FormatInt(wr.ID, 10),
		URL:    wr.HTMLURL,
		Status: MapStatus(wr.Status, wr.Conclusion),
		Detail: detail,
		Ref:    ref,
	}
}

// MapStatus maps a workflow run's status and conclusion onto gatebot's
// states (providers.md §6). waiting means an environment's required
// reviewers have not approved yet, so the run counts as running.
func MapStatus(status, conclusion string) pipelines.Status {
	st, _ := mapKnown(status, conclusion)
	return st
}

// mapKnown maps the documented status and conclusion values; known is
// false for others: an unknown status counts as running, an unknown
// conclusion of a completed run as failed.
func mapKnown(status, conclusion string) (pipelines.Status, bool) {
	switch status {
	case "requested", "queued", "pending":
		return pipelines.StatusQueued, true
	case "in_progress", "waiting":
		return pipelines.StatusRunning, true
	case "completed":
	default:
		return pipelines.StatusRunning, false
	}
	switch conclusion {
	case "success", "neutral", "skipped":
		return pipelines.StatusSucceeded, true
	case "failure", "timed_out", "startup_failure", "action_required", "stale":
		return pipelines.StatusFailed, true
	case "cancelled":
		return pipelines.StatusCancelled, true
	default:
		return pipelines.StatusFailed, false
	}
}

// Cancel asks GitHub to cancel the run (202 Accepted; the run then moves to
// completed/cancelled). A run not yet identified is looked up first.
//
// GitHub API docs: https://docs.github.com/rest/actions/workflow-runs#cancel-a-workflow-run
//
//meta:operation POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel
func (c *Client) Cancel(ctx context.Context, run pipelines.Run) error {
	if run.ID == "" {
		r, err := c.resolve(ctx, run)
		if err != nil {
			return err
		}
		if r.ID == "" {
			return fmt.Errorf("%w: the run has not appeared yet; try again shortly", ErrRunNotFound)
		}
		run = r
	}
	owner, repo, err := repoOf(run)
	if err != nil {
		return err
	}
	p, err := apiclient.Path("/repos/{owner}/{repo}/actions/runs/{run_id}/cancel", owner, repo, run.ID)
	if err != nil {
		return fmt.Errorf("githubactions: %w", err)
	}
	_, err = c.do(ctx, http.MethodPost, p, nil, "cancel run", nil)
	return err
}
