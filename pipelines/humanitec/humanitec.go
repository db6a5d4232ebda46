// Package humanitec starts and follows Humanitec Platform Orchestrator
// pipeline runs for gatebot (pipelines.Provider, Canceler and Checker).
//
// API: the Humanitec OpenAPI, operations createPipelineRun, getPipelineRun
// and cancelPipelineRun (https://api-docs.humanitec.com/, spec mirrored in
// humanitec/humanitec-go-autogen docs/openapi.json), and the API-triggered
// pipelines guide
// (https://developer.humanitec.com/integration-and-extensions/humanitec-pipelines/api-triggered-pipelines).
//
// Usage:
//
//	c, err := humanitec.New(humanitec.Config{BaseURL: "https://api.humanitec.io", Token: tok, Org: "acme"},
//		humanitec.WithLogger(logger))
//	run, err := c.Trigger(ctx, pipelines.Request{GateID: "g_…", Target: map[string]any{"app": "api", "pipeline_id": "deploy"}, Inputs: in})
//
// It imports only pipelines, pipelines/apiclient and the standard library.
package humanitec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/apiclient"
)

// ProviderType is the config `type` of this provider.
const ProviderType = "humanitec"

// DefaultBaseURL is Humanitec's public API root.
const DefaultBaseURL = "https://api.humanitec.io"

// DefaultUIURL is the Platform Orchestrator web UI for DefaultBaseURL.
const DefaultUIURL = "https://app.humanitec.io"

// ErrNotCancellable reports Humanitec's 409 on cancel: the run is in a state
// (completed, failed, …) from which it cannot be cancelled. The error also
// wraps the *pipelines.APIError.
var ErrNotCancellable = errors.New("humanitec: run cannot be cancelled in its current state")

// Config is one configured Humanitec provider.
type Config struct {
	// BaseURL is the API root; empty means DefaultBaseURL.
	BaseURL string `yaml:"base_url"`
	// Token is a service user's API token, sent as a Bearer token.
	Token apiclient.Secret `yaml:"token"`
	// Org is the Humanitec organization id.
	Org string `yaml:"org"`
	// UIURL is the Platform Orchestrator web UI root that run links point
	// at; empty means https://app.humanitec.io when BaseURL is Humanitec's
	// public API, and no links otherwise.
	UIURL string `yaml:"ui_url"`
}

// Validate reports every problem with c, each naming its field.
func (c Config) Validate() []error {
	var errs []error
	if c.BaseURL != "" {
		if _, err := apiclient.ParseBaseURL(c.BaseURL); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Token == "" {
		errs = append(errs, errors.New("token is required (a Humanitec service user API token)"))
	}
	if c.UIURL != "" {
		if _, err := apiclient.ParseBaseURL(c.UIURL); err != nil {
			errs = append(errs, fmt.Errorf("ui_url: %w", err))
		}
	}
	if strings.TrimSpace(c.Org) == "" {
		errs = append(errs, errors.New("org is required (the Humanitec organization id)"))
	} else if _, err := apiclient.Path("/{org}", c.Org); err != nil {
		errs = append(errs, fmt.Errorf("org: %v", err))
	}
	return errs
}

// Option configures a Client.
type Option = apiclient.Option

// WithHTTPClient sets the HTTP client (it is copied); nil, like no option,
// means the default with a 30-second timeout.
func WithHTTPClient(hc *http.Client) Option {
	return func(s *apiclient.Settings) error { s.HTTPClient = hc; return nil }
}

// WithLogger sets the logger; nil discards.
func WithLogger(l *slog.Logger) Option { return apiclient.WithLogger(l) }

// Client is a Humanitec pipelines client. It is safe for concurrent use.
type Client struct {
	org string
	ui  string // web UI root without trailing slash; "" builds no links
	api *apiclient.Client
	log *slog.Logger
	now func() time.Time
}

var (
	_ pipelines.Provider = (*Client)(nil)
	_ pipelines.Canceler = (*Client)(nil)
	_ pipelines.Checker  = (*Client)(nil)
)

// New validates cfg and returns a Client.
func New(cfg Config, opts ...Option) (*Client, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("humanitec: %w", errors.Join(errs...))
	}
	o, err := apiclient.ApplyOptions(opts)
	if err != nil {
		return nil, err
	}
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
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
	})
	if err != nil {
		return nil, fmt.Errorf("humanitec: %w", err)
	}
	ui := strings.TrimRight(cfg.UIURL, "/")
	if ui == "" && strings.TrimRight(base, "/") == DefaultBaseURL {
		ui = DefaultUIURL
	}
	return &Client{org: cfg.Org, ui: ui, api: api, log: o.Logger.With("provider", ProviderType), now: o.Now}, nil
}

// parseError reads Humanitec's {"error":"API-000","message":"…"} body.
func parseError(b []byte) (string, string) {
	var e struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &e) != nil {
		return "", ""
	}
	return e.Error, e.Message
}

// Target keys.
const (
	keyApp       = "app"
	keyPipeline  = "pipeline_id"
	keyGateInput = "gate_id_input"
)

// CheckPipeline validates a pipeline definition for Humanitec: target.app
// and target.pipeline_id are required path segments; target.gate_id_input,
// optional, names a string input of the pipeline_call trigger that carries
// the gate id (so no gatebot input may use that name). Inputs of every
// gatebot type are forwarded typed, matching the pipeline_call trigger's
// typed inputs, so none is refused here.
func (c *Client) CheckPipeline(def pipelines.Definition) []error {
	t := apiclient.Target(def.Target)
	errs := t.CheckKeys(keyApp, keyPipeline, keyGateInput)
	if gi, err := t.String(keyGateInput, false); err != nil {
		errs = append(errs, err)
	} else if gi != "" && slices.Contains(def.InputNames(), gi) {
		errs = append(errs, fmt.Errorf("inputs.%s: reserved for the gate id (see target.%s)", gi, keyGateInput))
	}
	for _, k := range []string{keyApp, keyPipeline} {
		v, err := t.String(k, true)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := apiclient.Path("/{x}", v); err != nil {
			errs = append(errs, fmt.Errorf("target.%s: %v", k, err))
		}
	}
	return errs
}

type target struct{ app, pipeline, gateInput string }

func readTarget(t apiclient.Target) (target, error) {
	app, err1 := t.String(keyApp, true)
	pl, err2 := t.String(keyPipeline, true)
	gi, err3 := t.String(keyGateInput, false)
	if err := errors.Join(err1, err2, err3); err != nil {
		return target{}, fmt.Errorf("humanitec: %w", err)
	}
	return target{app: app, pipeline: pl, gateInput: gi}, nil
}

// pipelineRun is the part of Humanitec's PipelineRun that gatebot uses.
type pipelineRun struct {
	ID                      string          `json:"id"`
	Etag                    string          `json:"etag"`
	AppID                   string          `json:"app_id"`
	PipelineID              string          `json:"pipeline_id"`
	Status                  string          `json:"status"`
	StatusMessage           string          `json:"status_message"`
	CancellationRequestedAt *string         `json:"cancellation_requested_at"`
	CompletedAt             *string         `json:"completed_at"`
	WaitingFor              json.RawMessage `json:"waiting_for"`
	Inputs                  map[string]any  `json:"inputs"`
}

// Trigger creates a pipeline run with the typed inputs. It sends the gate
// id as Idempotency-Key, but does not rely on it: the API declares the
// header and documents no replay behaviour. With target.gate_id_input set,
// the gate id is also stamped into that input, and Trigger first looks
// for a run of the pipeline stamped with the gate (created since
// req.Since) and returns it instead of creating another; a 409 answer to
// the create is looked up the same way. A 204 answer ("valid, but no run
// was created") is reported as an error wrapping pipelines.ErrNoRun.
//
// Humanitec API docs: createPipelineRun,
// POST /orgs/{orgId}/apps/{appId}/pipelines/{pipelineId}/runs
// (https://api-docs.humanitec.com/#tag/PipelineRuns/operation/createPipelineRun).
func (c *Client) Trigger(ctx context.Context, req pipelines.Request) (pipelines.Run, error) {
	tg, err := readTarget(req.Target)
	if err != nil {
		return pipelines.Run{}, err
	}
	if req.GateID == "" {
		return pipelines.Run{}, errors.New("humanitec: trigger: gate id is required (it is the Idempotency-Key)")
	}
	p, err := apiclient.Path("/orgs/{orgId}/apps/{appId}/pipelines/{pipelineId}/runs", c.org, tg.app, tg.pipeline)
	if err != nil {
		return pipelines.Run{}, fmt.Errorf("humanitec: %w", err)
	}
	inputs := maps.Clone(req.Inputs)
	if inputs == nil {
		inputs = map[string]any{} // the body requires "inputs"
	}
	if tg.gateInput != "" {
		inputs[tg.gateInput] = req.GateID
		if pr, found, err := c.findRun(ctx, tg, req); err != nil {
			return pipelines.Run{}, fmt.Errorf("humanitec: look for an earlier run of this gate: %w", err)
		} else if found {
			c.log.InfoContext(ctx, "pipeline run already exists for this gate; not creating another", "gate_id", req.GateID, "run_id", pr.ID)
			return c.run(pr, tg), nil
		}
	}
	hr, err := c.api.NewRequest(ctx, http.MethodPost, p, struct {
		Inputs map[string]any `json:"inputs"`
	}{inputs})
	if err != nil {
		return pipelines.Run{}, err
	}
	hr.Header.Set("Idempotency-Key", req.GateID)
	var pr pipelineRun
	resp, err := c.api.Do(hr, "trigger run", &pr)
	var ae *pipelines.APIError
	if errors.As(err, &ae) && ae.StatusCode == http.StatusConflict {
		return c.afterConflict(ctx, tg, req, err)
	}
	if err != nil {
		return pipelines.Run{}, err
	}
	if resp.StatusCode == http.StatusNoContent {
		return pipelines.Run{}, fmt.Errorf("humanitec: trigger run on %s/%s: %w", tg.app, tg.pipeline, pipelines.ErrNoRun)
	}
	if pr.ID == "" {
		return pipelines.Run{}, c.api.Malformed("trigger run", resp.StatusCode, "answer carries no run id")
	}
	if pr.Etag == "" {
		pr.Etag = strings.Trim(resp.Header.Get("Etag"), `"`)
	}
	c.log.InfoContext(ctx, "pipeline run created", "gate_id", req.GateID, "app", tg.app, "pipeline_id", tg.pipeline, "run_id", pr.ID)
	return c.run(pr, tg), nil
}

func (c *Client) run(pr pipelineRun, tg target) pipelines.Run {
	st, detail := mapStatus(pr)
	ref := map[string]string{keyApp: tg.app, keyPipeline: tg.pipeline}
	if pr.Etag != "" {
		ref["etag"] = pr.Etag
	}
	return pipelines.Run{ID: pr.ID, URL: c.runURL(tg, pr.ID), Status: st, Detail: detail, Ref: ref}
}

// mapStatus maps a Humanitec run onto gatebot's states. The spec types
// status as a free string; completed_at is set exactly when the run reached
// "a successful, failed, or cancelled status", so it decides terminality:
// a completed run with an unrecognised status is failed (or cancelled if
// cancellation was requested), and unknown non-terminal strings are
// running. Only "executing" appears in the spec (its example); the other
// words are inferred (providers.md §1), which is why completed_at, not
// the word, decides whether the run ended.
func mapStatus(pr pipelineRun) (pipelines.Status, string) {
	s := strings.ToLower(pr.Status)
	var st pipelines.Status
	switch s {
	case "queued", "pending":
		st = pipelines.StatusQueued
	case "executing", "running", "cancelling":
		st = pipelines.StatusRunning
	case "succeeded", "successful", "completed":
		st = pipelines.StatusSucceeded
	case "failed", "timed_out", "timedout", "error":
		st = pipelines.StatusFailed
	case "cancelled", "canceled":
		st = pipelines.StatusCancelled
	default:
		st = pipelines.StatusRunning
	}
	if pr.CompletedAt != nil && !st.Terminal() {
		if pr.CancellationRequestedAt != nil {
			st = pipelines.StatusCancelled
		} else {
			st = pipelines.StatusFailed
		}
	}
	detail := pr.Status
	if w := strings.TrimSpace(string(pr.WaitingFor)); st == pipelines.StatusRunning && w != "" && w != "{}" && w != "null" {
		detail += " (waiting for approval)"
	}
	if pr.StatusMessage != "" {
		detail += ": " + apiclient.Truncate(pr.StatusMessage, 300)
	}
	return st, detail
}

func refTarget(run pipelines.Run) (target, error) {
	tg := target{app: run.Ref[keyApp], pipeline: run.Ref[keyPipeline]}
	if tg.app == "" || tg.pipeline == "" || run.ID == "" {
		return tg, errors.New("humanitec: run reference lacks app, pipeline_id or run id")
	}
	return tg, nil
}

// Status fetches the run.
//
// Humanitec API docs: getPipelineRun,
// GET /orgs/{orgId}/apps/{appId}/pipelines/{pipelineId}/runs/{runId}
// (https://api-docs.humanitec.com/#tag/PipelineRuns/operation/getPipelineRun).
func (c *Client) Status(ctx context.Context, run pipelines.Run) (pipelines.Run, error) {
	tg, err := refTarget(run)
	if err != nil {
		return run, err
	}
	p, err := apiclient.Path("/orgs/{orgId}/apps/{appId}/pipelines/{pipelineId}/runs/{runId}", c.org, tg.app, tg.pipeline, run.ID)
	if err != nil {
		return run, fmt.Errorf("humanitec: %w", err)
	}
	hr, err := c.api.NewRequest(ctx, http.MethodGet, p, nil)
	if err != nil {
		return run, err
	}
	var pr pipelineRun
	if _, err := c.api.Do(hr, "get run", &pr); err != nil {
		return run, err
	}
	if pr.ID == "" {
		pr.ID = run.ID
	}
	out := c.run(pr, tg)
	if out.URL == "" {
		out.URL = run.URL
	}
	return out, nil
}

// Cancel asks Humanitec to cancel the run: a queued run stops at once, an
// executing one at its next cancellable step. Cancelling an already
// cancelled run succeeds (204); a run in any other terminal state answers
// 409, returned as an error matching ErrNotCancellable and
// *pipelines.APIError. No If-Match is sent: the etag changes as the run
// progresses and a stale one would make the cancel fail with 412.
//
// Humanitec API docs: cancelPipelineRun,
// POST /orgs/{orgId}/apps/{appId}/pipelines/{pipelineId}/runs/{runId}/cancel
// (https://api-docs.humanitec.com/#tag/PipelineRuns/operation/cancelPipelineRun).
func (c *Client) Cancel(ctx context.Context, run pipelines.Run) error {
	tg, err := refTarget(run)
	if err != nil {
		return err
	}
	p, err := apiclient.Path("/orgs/{orgId}/apps/{appId}/pipelines/{pipelineId}/runs/{runId}/cancel", c.org, tg.app, tg.pipeline, run.ID)
	if err != nil {
		return fmt.Errorf("humanitec: %w", err)
	}
	hr, err := c.api.NewRequest(ctx, http.MethodPost, p, nil)
	if err != nil {
		return err
	}
	_, err = c.api.Do(hr, "cancel run", nil)
	var ae *pipelines.APIError
	if errors.As(err, &ae) && ae.StatusCode == http.StatusConflict {
		return fmt.Errorf("%w: %w", ErrNotCancellable, err)
	}
	return err
}

var _ pipelines.Idempotent = (*Client)(nil)
