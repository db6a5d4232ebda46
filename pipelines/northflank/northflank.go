// Package northflank runs, follows and aborts Northflank pipeline release
// flows for gatebot (pipelines.Provider, Canceler and Checker).
//
// API: Northflank API v1, Pipelines: run-release-flow,
// list-release-flow-runs, get-release-flow-run-details and
// abort-release-flow-run (https://northflank.com/docs/v1/api/pipelines/…).
//
// The run endpoint documents only "200 OK success", so every run is given a
// name that ends in the gate id's unique part (RunName): Trigger first looks
// for a run with that name (so a repeat after a crash finds the first run
// instead of starting a second), then starts the run, then takes data.id
// from the answer if there is one, else lists the runs to find it by name.
//
// Northflank allows 1,000 requests per hour per token. The client reads
// x-ratelimit-remaining / x-ratelimit-reset on every answer and, once the
// budget is spent, fails calls locally with a 429 *pipelines.APIError whose
// RetryAfter says when the budget resets, instead of calling.
//
// It imports only pipelines, pipelines/apiclient and the standard library.
package northflank

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/apiclient"
)

// Client is a Northflank pipelines client. It is safe for concurrent use.
type Client struct {
	runURL apiclient.RunURL
	api    *apiclient.Client
	log    *slog.Logger
	now    func() time.Time
	budget budget
}

var (
	_ pipelines.Provider = (*Client)(nil)
	_ pipelines.Canceler = (*Client)(nil)
	_ pipelines.Checker  = (*Client)(nil)
)

// New validates cfg and returns a Client.
func New(cfg Config, opts ...Option) (*Client, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("northflank: %w", errors.Join(errs...))
	}
	o, err := apiclient.ApplyOptions(opts)
	if err != nil {
		return nil, err
	}
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	c := &Client{runURL: cfg.RunURL, log: o.Logger.With("provider", ProviderType), now: o.Now, budget: budget{remaining: -1}}
	auth := apiclient.BearerToken(cfg.Token)
	api, err := apiclient.New(apiclient.Options{
		Provider:   ProviderType,
		BaseURL:    base,
		HTTPClient: o.HTTPClient,
		Logger:     o.Logger,
		Now:        o.Now,
		Authorize:  auth.Authorize,
		Secrets:    auth.Secrets,
		ParseError: parseError,
		OnResponse: func(r *http.Response) { c.budget.observe(r.Header, c.now()) },
	})
	if err != nil {
		return nil, fmt.Errorf("northflank: %w", err)
	}
	c.api = api
	return c, nil
}

// parseError reads {"error":{"status":404,"message":"Not found","id":"…"}}.
func parseError(b []byte) (string, string) {
	var e struct {
		Error struct {
			ID      string `json:"id"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &e) != nil {
		return "", ""
	}
	return e.Error.ID, e.Error.Message
}

// budget tracks the hourly request budget from x-ratelimit-* headers.
type budget struct {
	mu        sync.Mutex
	remaining int // -1: unknown
	reset     time.Time
}

func (b *budget) observe(h http.Header, now time.Time) {
	rem, err := strconv.Atoi(strings.TrimSpace(h.Get("x-ratelimit-remaining")))
	if err != nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.remaining = rem
	if t, ok := parseReset(h.Get("x-ratelimit-reset"), now); ok {
		b.reset = t
	}
}

// parseReset reads x-ratelimit-reset, which may be a Unix time in seconds
// or milliseconds or a number of seconds from now (the header's unit is not
// documented, so all three are told apart by size).
func parseReset(v string, now time.Time) (time.Time, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, false
	}
	switch {
	case n > 1e12:
		return time.UnixMilli(n), true
	case n > 1e9:
		return time.Unix(n, 0), true
	default:
		return now.Add(time.Duration(n) * time.Second), true
	}
}

// exhausted reports how long until the budget resets when it is spent.
func (b *budget) exhausted(now time.Time) (time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.remaining != 0 {
		return 0, false
	}
	if !now.Before(b.reset) {
		b.remaining = -1 // a new window: unknown until the next answer
		return 0, false
	}
	return b.reset.Sub(now), true
}

// do sends a request unless the budget is spent; a 429 without
// Retry-After gets its RetryAfter from the budget's reset time.
func (c *Client) do(ctx context.Context, method, path, op string, body, v any) (*apiclient.Response, error) {
	if wait, spent := c.budget.exhausted(c.now()); spent {
		return nil, &pipelines.APIError{Provider: ProviderType, Op: op, StatusCode: http.StatusTooManyRequests,
			Code: "budget_exhausted", RetryAfter: wait,
			Message: fmt.Sprintf("Northflank API budget (1,000 requests/hour) is spent; not calling until it resets in %s", wait.Round(time.Second))}
	}
	hr, err := c.api.NewRequest(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	resp, err := c.api.Do(hr, op, v)
	var ae *pipelines.APIError
	if errors.As(err, &ae) && ae.StatusCode == http.StatusTooManyRequests && ae.RetryAfter == 0 {
		if wait, spent := c.budget.exhausted(c.now()); spent {
			ae.RetryAfter = wait
		}
	}
	return resp, err
}

// Target keys.
const (
	keyProject      = "project_id"
	keyPipeline     = "pipeline_id"
	keyStage        = "stage"
	keyName         = "name"
	keyDescription  = "description"
	keyOverrides    = "overrides"
	keyNodeOverride = "releaseNodeOverrides"
)

type target struct {
	project, pipeline, stage string
	name, description        string
	overrides, nodeOverrides map[string]any
}

func readTarget(t apiclient.Target) (target, []error) {
	var tg target
	var errs []error
	for key, dst := range map[string]*string{keyProject: &tg.project, keyPipeline: &tg.pipeline, keyStage: &tg.stage} {
		v, err := t.String(key, true)
		if err == nil {
			_, err = apiclient.Path("/{x}", v)
			if err != nil {
				err = fmt.Errorf("target.%s: %v", key, err)
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
		*dst = v
	}
	var err error
	if tg.name, err = t.String(keyName, false); err != nil {
		errs = append(errs, err)
	}
	if tg.description, err = t.String(keyDescription, false); err != nil {
		errs = append(errs, err)
	}
	if tg.overrides, err = t.Object(keyOverrides); err != nil {
		errs = append(errs, err)
	}
	if tg.nodeOverrides, err = t.Object(keyNodeOverride); err != nil {
		errs = append(errs, err)
	}
	sortErrs(errs)
	return tg, errs
}

// sortErrs orders errors by text, so config check output is stable.
func sortErrs(errs []error) {
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
}

// CheckPipeline validates a pipeline definition for Northflank: project_id,
// pipeline_id and stage are required; overrides and releaseNodeOverrides
// must be mappings; a user-supplied name must satisfy Northflank's name
// rules (it becomes the run name's prefix, shortened to leave room for the
// gate id), and a user-supplied description its description rules.
func (c *Client) CheckPipeline(def pipelines.Definition) []error {
	t := apiclient.Target(def.Target)
	errs := t.CheckKeys(keyProject, keyPipeline, keyStage, keyName, keyDescription, keyOverrides, keyNodeOverride)
	tg, terrs := readTarget(t)
	errs = append(errs, terrs...)
	if tg.name != "" {
		if err := CheckName(tg.name); err != nil {
			errs = append(errs, fmt.Errorf("target.name: %w", err))
		}
	}
	if tg.description != "" {
		if err := CheckDescription(tg.description); err != nil {
			errs = append(errs, fmt.Errorf("target.description: %w", err))
		}
	}
	return errs
}

// releaseFlowRun is a run as the list, get and abort endpoints return it.
type releaseFlowRun struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Status      string `json:"status"`
	Concluded   bool   `json:"concluded"`
}

func (c *Client) runsPath(tg target, rest ...string) (string, error) {
	p, err := apiclient.Path("/v1/projects/{projectId}/pipelines/{pipelineId}/release-flows/{stage}/runs", tg.project, tg.pipeline, tg.stage)
	if err != nil {
		return "", fmt.Errorf("northflank: %w", err)
	}
	if p, err = apiclient.Append(p, rest...); err != nil {
		return "", fmt.Errorf("northflank: %w", err)
	}
	return p, nil
}

// Trigger runs the release flow. The run name (RunName) carries the gate
// id; before starting, Trigger looks for a run with that name and returns it
// if one exists, so a repeat after a crash does not start a second run. The
// description says who approved it in Teams; arguments are the typed inputs;
// overrides and releaseNodeOverrides come from the target as configured.
//
// Northflank API docs: Run release flow,
// POST /v1/projects/{projectId}/pipelines/{pipelineId}/release-flows/{stage}/runs
// (https://northflank.com/docs/v1/api/pipelines/run-release-flow).
func (c *Client) Trigger(ctx context.Context, req pipelines.Request) (pipelines.Run, error) {
	tg, errs := readTarget(req.Target)
	if len(errs) > 0 {
		return pipelines.Run{}, fmt.Errorf("northflank: %w", errors.Join(errs...))
	}
	prefix := tg.name
	if prefix == "" {
		prefix = req.Pipeline
	}
	name, err := RunName(prefix, req.GateID)
	if err != nil {
		return pipelines.Run{}, err
	}
	log := c.log.With("gate_id", req.GateID, "run_name", name)

	if r, found, err := c.findRun(ctx, tg, req.GateID); err != nil {
		return pipelines.Run{}, fmt.Errorf("northflank: look for an earlier run of this gate: %w", err)
	} else if found {
		log.InfoContext(ctx, "release flow run already exists for this gate", "run_id", r.ID)
		return c.run(r, tg), nil
	}

	body := struct {
		Name                 string         `json:"name"`
		Description          string         `json:"description,omitempty"`
		Arguments            map[string]any `json:"arguments,omitempty"`
		Overrides            map[string]any `json:"overrides,omitempty"`
		ReleaseNodeOverrides map[string]any `json:"releaseNodeOverrides,omitempty"`
	}{name, Description(tg.description, req), req.Inputs, tg.overrides, tg.nodeOverrides}
	path, err := c.runsPath(tg)
	if err != nil {
		return pipelines.Run{}, err
	}
	resp, err := c.do(ctx, http.MethodPost, path, "run release flow", body, nil)
	if err != nil {
		return pipelines.Run{}, err
	}
	// The answer is documented only as "200 OK success"; use data.id when
	// Northflank sends it.
	var ans struct {
		Data releaseFlowRun `json:"data"`
	}
	if json.Unmarshal(resp.Body, &ans) == nil && ans.Data.ID != "" {
		if ans.Data.Name == "" {
			ans.Data.Name = name
		}
		log.InfoContext(ctx, "release flow run started", "run_id", ans.Data.ID)
		return c.run(ans.Data, tg), nil
	}
	r, found, err := c.findRun(ctx, tg, req.GateID)
	if err != nil {
		return pipelines.Run{}, fmt.Errorf("northflank: run started but listing runs to find its id failed (look for %q): %w", name, err)
	}
	if !found {
		return pipelines.Run{}, c.api.Malformed("run release flow", resp.StatusCode,
			fmt.Sprintf("run accepted but no run named %q is listed", name))
	}
	log.InfoContext(ctx, "release flow run started", "run_id", r.ID)
	return c.run(r, tg), nil
}

// listPages bounds how far back findRun looks: a repeat after a crash
// comes soon after the first attempt, and every page costs budget.
const (
	listPages   = 2
	listPerPage = 100
)

// findRun lists the release flow's runs, newest first, for one whose name
// was generated for gateID.
//
// Northflank API docs: List release flow runs,
// GET /v1/projects/{projectId}/pipelines/{pipelineId}/release-flows/{stage}/runs
// (https://northflank.com/docs/v1/api/pipelines/list-release-flow-runs).
func (c *Client) findRun(ctx context.Context, tg target, gateID string) (releaseFlowRun, bool, error) {
	base, err := c.runsPath(tg)
	if err != nil {
		return releaseFlowRun{}, false, err
	}
	cursor := ""
	for page := 0; page < listPages; page++ {
		q := url.Values{"per_page": {strconv.Itoa(listPerPage)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var ans struct {
			Data struct {
				Runs []releaseFlowRun `json:"runs"`
			} `json:"data"`
			Pagination struct {
				HasNextPage bool   `json:"hasNextPage"`
				Cursor      string `json:"cursor"`
			} `json:"pagination"`
		}
		if _, err := c.do(ctx, http.MethodGet, base+"?"+q.Encode(), "list release flow runs", nil, &ans); err != nil {
			return releaseFlowRun{}, false, err
		}
		for _, r := range ans.Data.Runs {
			if matchesGate(r.Name, gateID) && r.ID != "" {
				return r, true, nil
			}
		}
		if !ans.Pagination.HasNextPage || ans.Pagination.Cursor == "" {
			break
		}
		cursor = ans.Pagination.Cursor
	}
	return releaseFlowRun{}, false, nil
}

func (c *Client) run(r releaseFlowRun, tg target) pipelines.Run {
	ref := map[string]string{keyProject: tg.project, keyPipeline: tg.pipeline, keyStage: tg.stage}
	if r.Name != "" {
		ref[keyName] = r.Name
	}
	st := pipelines.StatusQueued
	detail := r.Status
	if r.Status != "" {
		st = MapStatus(r.Status, r.Concluded)
	}
	return pipelines.Run{ID: r.ID, URL: c.link(tg, r.ID), Status: st, Detail: detail, Ref: ref}
}

// runURLKeys are the placeholders of Config.RunURL.
var runURLKeys = []string{"project_id", "pipeline_id", "stage", "run_id"}

func (c *Client) link(tg target, id string) string {
	return c.runURL.Expand(map[string]string{"project_id": tg.project, "pipeline_id": tg.pipeline, "stage": tg.stage, "run_id": id})
}

// MapStatus maps a release flow run's status onto gatebot's states:
// pending/queued→queued; running, waiting, retrying, async_wait,
// approval_wait, aborting, unknown→running; success→succeeded;
// failure→failed; aborted and skipped→cancelled. concluded=true is
// terminal: a concluded run whose status is not terminal is cancelled if it
// was aborting, else failed.
func MapStatus(status string, concluded bool) pipelines.Status {
	st, _ := mapKnown(status)
	if concluded && !st.Terminal() {
		if strings.EqualFold(status, "aborting") {
			return pipelines.StatusCancelled
		}
		return pipelines.StatusFailed
	}
	return st
}

// mapKnown maps the documented status enum; known is false for anything
// else, which counts as running.
func mapKnown(status string) (pipelines.Status, bool) {
	switch strings.ToLower(status) {
	case "pending", "queued":
		return pipelines.StatusQueued, true
	case "running", "waiting", "retrying", "async_wait", "approval_wait", "aborting", "unknown":
		return pipelines.StatusRunning, true
	case "success":
		return pipelines.StatusSucceeded, true
	case "failure", "failed":
		return pipelines.StatusFailed, true
	case "aborted", "skipped":
		return pipelines.StatusCancelled, true
	default:
		return pipelines.StatusRunning, false
	}
}

func refTarget(run pipelines.Run) (target, error) {
	tg := target{project: run.Ref[keyProject], pipeline: run.Ref[keyPipeline], stage: run.Ref[keyStage]}
	if tg.project == "" || tg.pipeline == "" || tg.stage == "" || run.ID == "" {
		return tg, errors.New("northflank: run reference lacks project_id, pipeline_id, stage or run id")
	}
	return tg, nil
}

// Status fetches the run. Northflank's budget makes polling more often than
// every ~30 s per run unwise; the caller's poller sets the pace.
//
// Northflank API docs: Get release flow run details,
// GET /v1/projects/{projectId}/pipelines/{pipelineId}/release-flows/{stage}/runs/{runId}
// (https://northflank.com/docs/v1/api/pipelines/get-release-flow-run-details).
func (c *Client) Status(ctx context.Context, run pipelines.Run) (pipelines.Run, error) {
	tg, err := refTarget(run)
	if err != nil {
		return run, err
	}
	path, err := c.runsPath(tg, run.ID)
	if err != nil {
		return run, err
	}
	var ans struct {
		Data releaseFlowRun `json:"data"`
	}
	resp, err := c.do(ctx, http.MethodGet, path, "get release flow run", nil, &ans)
	if err != nil {
		return run, err
	}
	if ans.Data.Status == "" {
		return run, c.api.Malformed("get release flow run", resp.StatusCode, "answer carries no data.status")
	}
	out := run
	out.Status = MapStatus(ans.Data.Status, ans.Data.Concluded)
	out.Detail = ans.Data.Status
	if out.URL == "" {
		out.URL = c.link(tg, run.ID)
	}
	return out, nil
}

// Cancel aborts the run; Northflank answers 200 with the aborting run.
//
// Northflank API docs: Abort release flow run,
// POST /v1/projects/{projectId}/pipelines/{pipelineId}/release-flows/{stage}/runs/{runId}/abort
// (https://northflank.com/docs/v1/api/pipelines/abort-release-flow-run).
func (c *Client) Cancel(ctx context.Context, run pipelines.Run) error {
	tg, err := refTarget(run)
	if err != nil {
		return err
	}
	path, err := c.runsPath(tg, run.ID, "abort")
	if err != nil {
		return err
	}
	_, err = c.do(ctx, http.MethodPost, path, "abort release flow run", nil, nil)
	return err
}

// RepeatableTrigger is always true: every run's name carries the gate id
// (RunName) and Trigger first lists the release flow's runs for one named
// after the gate, so a repeat after a 5xx, a timeout or a crash finds the
// earlier run instead of starting a second one.
func (c *Client) RepeatableTrigger(context.Context, pipelines.Request) bool { return true }

var _ pipelines.Idempotent = (*Client)(nil)
