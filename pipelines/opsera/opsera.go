// Package opsera starts, follows and stops Opsera pipelines for gatebot
// (pipelines.Provider, Canceler and Checker) through Opsera's classic
// pipeline API with a personal access token.
//
// API: "Opsera Pipeline API" (https://opsera.atlassian.net/wiki/x/LIArWw):
// POST /api/v1/pipeline/run, /status and /stop. A run has no id of its own:
// it is identified by (pipelineId, runCount), so Run.ID is the run count and
// Run.Ref keeps the pipeline id.
//
// Opsera has no idempotency key and no field that could carry the gate id,
// so crash safety rests on gatebot's own per-gate lock in front of Trigger.
//
// It imports only pipelines, pipelines/apiclient and the standard library.
package opsera

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/apiclient"
)

// ProviderType is the config `type` of this provider.
const ProviderType = "opsera"

// DefaultBaseURL is Opsera's SaaS API root.
const DefaultBaseURL = "https://app.opsera.io"

// Config is one configured Opsera provider.
type Config struct {
	// BaseURL is the tenant's API root; empty means DefaultBaseURL.
	BaseURL string `yaml:"base_url"`
	// Token is a personal access token with scope "API Access".
	Token apiclient.Secret `yaml:"token"`
	// RunURL, optional, links runs in the web UI, whose routes are not
	// documented: a template with {pipeline_id}, {run_count} placeholders.
	RunURL apiclient.RunURL `yaml:"run_url"`
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
		errs = append(errs, errors.New("token is required (an Opsera personal access token with scope API Access)"))
	}
	if err := c.RunURL.Check("run_url", "pipeline_id", "run_count"); err != nil {
		errs = append(errs, err)
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

// Client is an Opsera pipeline client. It is safe for concurrent use.
type Client struct {
	runURL apiclient.RunURL
	api    *apiclient.Client
	log    *slog.Logger
}

var (
	_ pipelines.Provider = (*Client)(nil)
	_ pipelines.Canceler = (*Client)(nil)
	_ pipelines.Checker  = (*Client)(nil)
)

// New validates cfg and returns a Client.
func New(cfg Config, opts ...Option) (*Client, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("opsera: %w", errors.Join(errs...))
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
		return nil, fmt.Errorf("opsera: %w", err)
	}
	return &Client{runURL: cfg.RunURL, api: api, log: o.Logger.With("provider", ProviderType)}, nil
}

// answer is Opsera's reply shape on every pipeline endpoint.
type answer struct {
	Status   string               `json:"status"`
	Message  string               `json:"message"`
	RunCount apiclient.FlexString `json:"runCount"`
}

// parseError reads {"status":"failed","message":"…"}; the status word is
// not a code, so only the message is kept.
func parseError(b []byte) (string, string) {
	var a answer
	if json.Unmarshal(b, &a) != nil {
		return "", ""
	}
	return "", a.Message
}

const keyPipeline = "pipeline_id"

// objectID is the shape of Opsera pipeline ids (MongoDB ObjectIds).
var objectID = regexp.MustCompile(`^[0-9a-fA-F]{24}$`)

// CheckPipeline validates a pipeline definition for Opsera: target.pipeline_id
// is required and is a 24-hex-digit ObjectId; no other target key is known;
// and no inputs may be declared, because the run API takes nothing but the
// pipeline id (inputs would silently be dropped).
func (c *Client) CheckPipeline(def pipelines.Definition) []error {
	t := apiclient.Target(def.Target)
	errs := t.CheckKeys(keyPipeline)
	if id, err := t.String(keyPipeline, true); err != nil {
		errs = append(errs, err)
	} else if !objectID.MatchString(id) {
		errs = append(errs, fmt.Errorf("target.pipeline_id %q is not an Opsera pipeline id (24 hexadecimal digits, from the pipeline's URL or Summary panel)", id))
	}
	for _, name := range def.InputNames() {
		errs = append(errs, fmt.Errorf("inputs.%s: Opsera's run API takes only the pipeline id, so pipeline inputs cannot be passed; remove the input", name))
	}
	return errs
}

// Trigger starts the pipeline. The body is exactly {"pipelineId": …}. An
// answer of {"status":"executed", "runCount": N} yields a queued Run with
// ID N; {"status":"failed"} (which Opsera may send with a 2xx, e.g. for a
// paused pipeline) is returned as a permanent *pipelines.APIError carrying
// Opsera's message.
//
// Opsera API docs: "Run Pipeline", POST /api/v1/pipeline/run
// (https://opsera.atlassian.net/wiki/x/LIArWw).
func (c *Client) Trigger(ctx context.Context, req pipelines.Request) (pipelines.Run, error) {
	id, err := apiclient.Target(req.Target).String(keyPipeline, true)
	if err != nil {
		return pipelines.Run{}, fmt.Errorf("opsera: %w", err)
	}
	if len(req.Inputs) > 0 {
		return pipelines.Run{}, errors.New("opsera: the run API takes no inputs; remove them from the pipeline definition")
	}
	a, status, err := c.call(ctx, "/api/v1/pipeline/run", "run pipeline", struct {
		PipelineID string `json:"pipelineId"`
	}{id})
	if err != nil {
		return pipelines.Run{}, err
	}
	if !strings.EqualFold(a.Status, "executed") && !strings.EqualFold(a.Status, "success") {
		return pipelines.Run{}, c.api.Error("run pipeline", status, a.Status, orText(a.Message, "unexpected answer"))
	}
	n := string(a.RunCount)
	if _, err := strconv.ParseUint(n, 10, 64); err != nil {
		return pipelines.Run{}, c.api.Malformed("run pipeline", status, fmt.Sprintf("answer carries no usable runCount (%q)", apiclient.Truncate(n, 40)))
	}
	c.log.InfoContext(ctx, "pipeline run submitted", "gate_id", req.GateID, "pipeline_id", id, "run_count", n)
	return pipelines.Run{ID: n, URL: c.runURL.Expand(map[string]string{"pipeline_id": id, "run_count": n}), Status: pipelines.StatusQueued, Detail: a.Message,
		Ref: map[string]string{keyPipeline: id, "run_count": n}}, nil
}

// call posts body to path and decodes Opsera's answer, turning a
// {"status":"failed"} into an error whatever the HTTP status.
func (c *Client) call(ctx context.Context, path, op string, body any) (answer, int, error) {
	hr, err := c.api.NewRequest(ctx, http.MethodPost, path, body)
	if err != nil {
		return answer{}, 0, err
	}
	var a answer
	resp, err := c.api.Do(hr, op, &a)
	if err != nil {
		return answer{}, 0, err
	}
	if strings.EqualFold(a.Status, "failed") && op != "pipeline status" {
		return answer{}, 0, c.api.Error(op, resp.StatusCode, "failed", orText(a.Message, "Opsera reported failure"))
	}
	return a, resp.StatusCode, nil
}

func orText(s, dflt string) string {
	if strings.TrimSpace(s) == "" {
		return dflt
	}
	return s
}

// mapStatus maps Opsera's status word. The full set is not documented:
// the only documented answer is {"status":"success","message":"Pipeline:
// X's Run 3 was successful."}. failed→failed, stopped→cancelled and
// queued/pending→queued are inferred (the run endpoint's and stop
// endpoint's words); anything else→running. Status does not trust
// "success" alone: see runSucceeded.
func mapStatus(s string) pipelines.Status {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "success", "successful", "succeeded", "completed":
		return pipelines.StatusSucceeded
	case "failed", "failure", "error":
		return pipelines.StatusFailed
	case "stopped", "cancelled", "canceled", "aborted":
		return pipelines.StatusCancelled
	case "queued", "pending":
		return pipelines.StatusQueued
	default:
		return pipelines.StatusRunning
	}
}

func refOf(run pipelines.Run) (id string, count uint64, err error) {
	id = run.Ref[keyPipeline]
	cs := run.Ref["run_count"]
	if cs == "" {
		cs = run.ID
	}
	count, perr := strconv.ParseUint(cs, 10, 64)
	if id == "" || perr != nil {
		return "", 0, errors.New("opsera: run reference lacks pipeline_id or a numeric run count")
	}
	return id, count, nil
}

// Status asks for the state of run number runCount. On this endpoint
// {"status":"failed"} describes the run, not the call, so it maps to a
// failed run with Opsera's message as detail.
//
// Opsera API docs: "Pipeline Status", POST /api/v1/pipeline/status with
// {"pipelineId","runCount"} (https://opsera.atlassian.net/wiki/x/LIArWw).
func (c *Client) Status(ctx context.Context, run pipelines.Run) (pipelines.Run, error) {
	id, count, err := refOf(run)
	if err != nil {
		return run, err
	}
	a, _, err := c.call(ctx, "/api/v1/pipeline/status", "pipeline status", struct {
		PipelineID string `json:"pipelineId"`
		RunCount   uint64 `json:"runCount"`
	}{id, count})
	if err != nil {
		return run, err
	}
	out := run
	if out.URL == "" {
		out.URL = c.runURL.Expand(map[string]string{"pipeline_id": id, "run_count": strconv.FormatUint(count, 10)})
	}
	out.Status = mapStatus(a.Status)
	out.Detail = strings.TrimSpace(a.Status + ": " + a.Message)
	out.Detail = strings.TrimSuffix(out.Detail, ":")
	if out.Status == pipelines.StatusSucceeded && !runSucceeded(a.Message, count) {
		// "success" may describe the call ("status retrieved"), not the
		// run: only the documented sentence "… Run N was successful."
		// counts as the run's success.
		out.Status = pipelines.StatusRunning
		out.Detail += " (Opsera did not say run " + strconv.FormatUint(count, 10) + " was successful; still following it)"
	}
	return out, nil
}

// runSucceeded reports whether msg is Opsera's documented success
// sentence for run n ("Pipeline: X's Run 3 was successful.").
func runSucceeded(msg string, n uint64) bool {
	m := runSuccessful.FindStringSubmatch(msg)
	return m != nil && m[1] == strconv.FormatUint(n, 10)
}

var runSuccessful = regexp.MustCompile(`(?i)\brun\s+#?([0-9]+)\s+was\s+successful\b`)

// Cancel stops the pipeline. Opsera's stop is per pipeline, not per run,
// and soft: the current operation finishes first, so the run reaches its
// final state only later.
//
// Opsera API docs: "Stop Pipeline", POST /api/v1/pipeline/stop with
// {"pipelineId"} (https://opsera.atlassian.net/wiki/x/LIArWw).
func (c *Client) Cancel(ctx context.Context, run pipelines.Run) error {
	id, _, err := refOf(run)
	if err != nil {
		return err
	}
	_, _, err = c.call(ctx, "/api/v1/pipeline/stop", "stop pipeline", struct {
		PipelineID string `json:"pipelineId"`
	}{id})
	return err
}
