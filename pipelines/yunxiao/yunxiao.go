// Package yunxiao starts, follows and stops Alibaba Cloud Yunxiao (云效) Flow
// pipeline runs for gatebot through the new `oapi` endpoints with a personal
// access token (pipelines.Provider, Canceler and Checker).
//
// API: CreatePipelineRun, GetPipelineRun and UpdatePipelineRun
// (https://help.aliyun.com/zh/yunxiao/developer-reference/createpipelinerun,
// …/getpipelinerun, …/updatepipelinerun). The central edition's paths carry
// /organizations/{organizationId}/, the region edition's do not. The legacy
// AK/SK-signed RPC APIs (ExecutePipeline …) are deliberately not used.
//
// Yunxiao has no idempotency key, and neither the run list nor the run
// detail is documented to return the run's comment, so a run cannot be found
// again by gate id: crash safety rests on gatebot's per-gate lock in front of
// Trigger. The gate id is still written into the run's comment for people
// reading the run history.
//
// It imports only pipelines, pipelines/apiclient and the standard library.
package yunxiao

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/apiclient"
)

// ProviderType is the config `type` of this provider.
const ProviderType = "yunxiao"

// DefaultCentralBaseURL is the central edition's service access point.
const DefaultCentralBaseURL = "https://openapi-rdc.aliyuncs.com"

// Editions of Yunxiao.
const (
	EditionCentral = "central"
	EditionRegion  = "region"
)

// ReservedEnv is the variable name Yunxiao reserves for itself.
const ReservedEnv = "version"

// Config is one configured Yunxiao provider.
type Config struct {
	// BaseURL is the API root: DefaultCentralBaseURL for the central
	// edition (the default), the organization's own domain for the region
	// edition (required there).
	BaseURL string `yaml:"base_url"`
	// Token is a personal access token (pt-…), sent as x-yunxiao-token.
	Token apiclient.Secret `yaml:"token"`
	// Edition is "central" (default) or "region".
	Edition string `yaml:"edition"`
	// OrganizationID is the organization id; required for the central
	// edition, unused (and refused) for the region edition.
	OrganizationID string `yaml:"organization_id"`
	// RunURL, optional, links runs in the web UI, whose routes are not
	// documented: a template with {organization_id}, {pipeline_id}, {run_id} placeholders.
	RunURL apiclient.RunURL `yaml:"run_url"`
}

func (c Config) edition() string {
	if c.Edition == "" {
		return EditionCentral
	}
	return c.Edition
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
		errs = append(errs, errors.New("token is required (a Yunxiao personal access token, pt-…)"))
	}
	switch c.edition() {
	case EditionCentral:
		if strings.TrimSpace(c.OrganizationID) == "" {
			errs = append(errs, errors.New("organization_id is required for edition central"))
		} else if _, err := apiclient.Path("/{x}", c.OrganizationID); err != nil {
			errs = append(errs, fmt.Errorf("organization_id: %v", err))
		}
	case EditionRegion:
		if c.BaseURL == "" {
			errs = append(errs, errors.New("base_url is required for edition region (the organization's own domain, e.g. https://myorg.devops.aliyuncs.com)"))
		}
		if c.OrganizationID != "" {
			errs = append(errs, errors.New("organization_id is not used by edition region (its paths have no organization); remove it"))
		}
	default:
		errs = append(errs, fmt.Errorf("edition %q must be central or region", c.Edition))
	}
	if err := c.RunURL.Check("run_url", "organization_id", "pipeline_id", "run_id"); err != nil {
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

// Client is a Yunxiao Flow client. It is safe for concurrent use.
type Client struct {
	runURL  apiclient.RunURL
	edition string
	org     string
	api     *apiclient.Client
	log     *slog.Logger
}

var (
	_ pipelines.Provider = (*Client)(nil)
	_ pipelines.Canceler = (*Client)(nil)
	_ pipelines.Checker  = (*Client)(nil)
)

// New validates cfg and returns a Client.
func New(cfg Config, opts ...Option) (*Client, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("yunxiao: %w", errors.Join(errs...))
	}
	o, err := apiclient.ApplyOptions(opts)
	if err != nil {
		return nil, err
	}
	base := cfg.BaseURL
	if base == "" {
		base = DefaultCentralBaseURL
	}
	auth := apiclient.HeaderToken{Header: "x-yunxiao-token", Token: cfg.Token}
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
		return nil, fmt.Errorf("yunxiao: %w", err)
	}
	return &Client{runURL: cfg.RunURL, edition: cfg.edition(), org: cfg.OrganizationID, api: api, log: o.Logger.With("provider", ProviderType)}, nil
}

// parseError reads Yunxiao's error body: errorCode with errorMessage (or
// errorDescription, or message), per the error code center
// (https://www.alibabacloud.com/help/en/yunxiao/developer-reference/error-code-center).
func parseError(b []byte) (string, string) {
	var e struct {
		Code    string `json:"errorCode"`
		Message string `json:"errorMessage"`
		Desc    string `json:"errorDescription"`
		Msg     string `json:"message"`
	}
	if json.Unmarshal(b, &e) != nil {
		return "", ""
	}
	msg := e.Message
	if msg == "" {
		msg = e.Desc
	}
	if msg == "" {
		msg = e.Msg
	}
	return e.Code, msg
}

// Target keys. The run parameters keep the names the API gives them in
// `params`, so they can be copied from Yunxiao's documentation.
const (
	keyPipeline         = "pipeline_id"
	keyEnvNames         = "env_names"
	keyBranchMode       = "branchModeBranchs"
	keyRunningBranchs   = "runningBranchs"
	keyRunningTags      = "runningTags"
	keyPipelineArtifact = "runningPipelineArtifacts"
	keyAcrArtifacts     = "runningAcrArtifacts"
	keyPackages         = "runningPackagesArtifacts"
	keyNeedCreateBranch = "needCreateBranch"
	keyReleaseBranch    = "releaseBranch"
)

var targetKeys = []string{keyPipeline, keyEnvNames, keyBranchMode, keyRunningBranchs, keyRunningTags,
	keyPipelineArtifact, keyAcrArtifacts, keyPackages, keyNeedCreateBranch, keyReleaseBranch}

// params is CreatePipelineRun's `params`, in the documented key order.
type params struct {
	BranchModeBranchs        []string          `json:"branchModeBranchs,omitempty"`
	Envs                     map[string]string `json:"envs,omitempty"`
	RunningBranchs           map[string]string `json:"runningBranchs,omitempty"`
	RunningTags              map[string]string `json:"runningTags,omitempty"`
	RunningPipelineArtifacts map[string]string `json:"runningPipelineArtifacts,omitempty"`
	RunningAcrArtifacts      map[string]string `json:"runningAcrArtifacts,omitempty"`
	RunningPackagesArtifacts map[string]string `json:"runningPackagesArtifacts,omitempty"`
	NeedCreateBranch         *bool             `json:"needCreateBranch,omitempty"`
	ReleaseBranch            string            `json:"releaseBranch,omitempty"`
	Comment                  string            `json:"comment,omitempty"`
}

type target struct {
	pipeline string
	envNames map[string]string
	p        params
}

func readTarget(t apiclient.Target) (target, []error) {
	var tg target
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	tg.pipeline, err = t.String(keyPipeline, true)
	add(err)
	if err == nil {
		if _, perr := apiclient.Path("/{x}", tg.pipeline); perr != nil {
			add(fmt.Errorf("target.pipeline_id: %v", perr))
		}
	}
	tg.envNames, err = t.StringMap(keyEnvNames)
	add(err)
	tg.p.BranchModeBranchs, err = t.StringList(keyBranchMode)
	add(err)
	for key, dst := range map[string]*map[string]string{
		keyRunningBranchs:   &tg.p.RunningBranchs,
		keyRunningTags:      &tg.p.RunningTags,
		keyPipelineArtifact: &tg.p.RunningPipelineArtifacts,
		keyAcrArtifacts:     &tg.p.RunningAcrArtifacts,
		keyPackages:         &tg.p.RunningPackagesArtifacts,
	} {
		*dst, err = t.StringMap(key)
		add(err)
	}
	if v, ok := t[keyNeedCreateBranch]; ok && v != nil {
		b, isBool := v.(bool)
		if !isBool {
			add(fmt.Errorf("target.%s must be true or false", keyNeedCreateBranch))
		} else {
			tg.p.NeedCreateBranch = &b
		}
	}
	tg.p.ReleaseBranch, err = t.String(keyReleaseBranch, false)
	add(err)
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return tg, errs
}

// envName is the variable an input is sent under.
func (tg target) envName(input string) string {
	if n, ok := tg.envNames[input]; ok {
		return n
	}
	return input
}

func reservedErr(input, env string) error {
	how := "rename the input"
	if input == env {
		how += fmt.Sprintf(" or send it under another name with target.env_names: {%s: APP_VERSION}", input)
	}
	return fmt.Errorf("inputs.%s: would be sent to Yunxiao as the variable %q, which Yunxiao reserves for itself (the run's own version); %s", input, env, how)
}

// CheckPipeline validates a pipeline definition for Yunxiao: the target
// keys and their shapes, env_names referring to declared inputs, and that no
// input would be sent under the reserved variable name "version".
func (c *Client) CheckPipeline(def pipelines.Definition) []error {
	t := apiclient.Target(def.Target)
	errs := t.CheckKeys(targetKeys...)
	tg, terrs := readTarget(t)
	errs = append(errs, terrs...)
	for _, in := range sortedKeys(tg.envNames) {
		if _, ok := def.Inputs[in]; !ok {
			errs = append(errs, fmt.Errorf("target.env_names.%s: %s has no input %q", in, def.Name, in))
		}
		if tg.envNames[in] == "" {
			errs = append(errs, fmt.Errorf("target.env_names.%s: empty variable name", in))
		}
	}
	seen := map[string]string{}
	for _, in := range def.InputNames() {
		env := tg.envName(in)
		if env == ReservedEnv {
			errs = append(errs, reservedErr(in, env))
		}
		if other, dup := seen[env]; dup {
			errs = append(errs, fmt.Errorf("inputs.%s: sent as %q, like inputs.%s", in, env, other))
		}
		seen[env] = in
	}
	return errs
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Comment returns the run comment gatebot sends: it starts with the gate id
// so the run can be told apart in Yunxiao's history.
func Comment(req pipelines.Request) string {
	var b strings.Builder
	b.WriteString("gatebot " + req.GateID)
	if req.Pipeline != "" {
		b.WriteString(": " + req.Pipeline)
	}
	if req.Requester != "" {
		b.WriteString(", requested by " + req.Requester)
	}
	if len(req.Approvers) > 0 {
		b.WriteString(", approved in Teams by " + strings.Join(req.Approvers, ", "))
	}
	return apiclient.Truncate(b.String(), 500)
}

func (c *Client) runsPath(pipeline string, rest ...string) (string, error) {
	var p string
	var err error
	if c.edition == EditionRegion {
		p, err = apiclient.Path("/oapi/v1/flow/pipelines/{pipelineId}/runs", pipeline)
	} else {
		p, err = apiclient.Path("/oapi/v1/flow/organizations/{organizationId}/pipelines/{pipelineId}/runs", c.org, pipeline)
	}
	if err != nil {
		return "", fmt.Errorf("yunxiao: %w", err)
	}
	if p, err = apiclient.Append(p, rest...); err != nil {
		return "", fmt.Errorf("yunxiao: %w", err)
	}
	return p, nil
}

// Trigger runs the pipeline. Inputs go into params.envs as strings (renamed
// through target.env_names), the target's branch, tag and artifact maps are
// copied as given, and params.comment carries the gate id. params is sent
// as a JSON document encoded into a string, as the API requires. The answer
// is the bare integer run id (also the run's number).
//
// Yunxiao API docs: CreatePipelineRun, central edition
// POST /oapi/v1/flow/organizations/{organizationId}/pipelines/{pipelineId}/runs,
// region edition POST /oapi/v1/flow/pipelines/{pipelineId}/runs
// (https://help.aliyun.com/zh/yunxiao/developer-reference/createpipelinerun).
func (c *Client) Trigger(ctx context.Context, req pipelines.Request) (pipelines.Run, error) {
	tg, errs := readTarget(req.Target)
	if len(errs) > 0 {
		return pipelines.Run{}, fmt.Errorf("yunxiao: %w", errors.Join(errs...))
	}
	p := tg.p
	if len(req.Inputs) > 0 {
		p.Envs = make(map[string]string, len(req.Inputs))
		for in, v := range pipelines.StringInputs(req.Inputs) {
			env := tg.envName(in)
			if env == ReservedEnv {
				return pipelines.Run{}, fmt.Errorf("yunxiao: %w", reservedErr(in, env))
			}
			p.Envs[env] = v
		}
	}
	p.Comment = Comment(req)
	encoded, err := json.Marshal(p)
	if err != nil {
		return pipelines.Run{}, fmt.Errorf("yunxiao: encode params: %w", err)
	}
	path, err := c.runsPath(tg.pipeline)
	if err != nil {
		return pipelines.Run{}, err
	}
	hr, err := c.api.NewRequest(ctx, http.MethodPost, path, struct {
		Params string `json:"params"`
	}{string(encoded)})
	if err != nil {
		return pipelines.Run{}, err
	}
	resp, err := c.api.Do(hr, "run pipeline", nil)
	if err != nil {
		return pipelines.Run{}, err
	}
	id, ok := parseRunID(resp.Body)
	if !ok {
		return pipelines.Run{}, c.api.Malformed("run pipeline", resp.StatusCode,
			fmt.Sprintf("want a bare integer run id, got %q", apiclient.Truncate(string(resp.Body), 60)))
	}
	c.log.InfoContext(ctx, "pipeline run created", "gate_id", req.GateID, "pipeline_id", tg.pipeline, "run_id", id)
	return pipelines.Run{ID: id, URL: c.link(tg.pipeline, id), Status: pipelines.StatusQueued, Ref: map[string]string{keyPipeline: tg.pipeline}}, nil
}

func (c *Client) link(pipeline, id string) string {
	return c.runURL.Expand(map[string]string{"organization_id": c.org, "pipeline_id": pipeline, "run_id": id})
}

// parseRunID reads the bare integer answer (1234), tolerating a JSON
// string ("1234").
func parseRunID(b []byte) (string, bool) {
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return "", false
	}
	return strconv.FormatUint(n, 10), true
}

// pipelineRun is the part of GetPipelineRun's answer gatebot uses.
type pipelineRun struct {
	PipelineRunID apiclient.FlexString `json:"pipelineRunId"`
	Status        string               `json:"status"`
}

// MapStatus maps a Yunxiao run status onto gatebot's states. Documented:
// FAIL, SUCCESS, RUNNING; the official MCP server also filters on CANCELED
// and WAITING; INIT, QUEUED and FAILED have been seen by clients. WAITING
// (a manual gate) counts as running; unknown values are running until
// Yunxiao reports a terminal one.
func MapStatus(s string) pipelines.Status {
	st, _ := mapKnown(s)
	return st
}

// mapKnown maps the values the docs and the official MCP server list
// (FAIL, SUCCESS, RUNNING, CANCELED, WAITING) and those clients have seen
// (INIT, QUEUED, FAILED); known is false for anything else, which counts as
// running.
func mapKnown(s string) (st pipelines.Status, known bool) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "INIT", "QUEUED", "PENDING":
		return pipelines.StatusQueued, true
	case "RUNNING", "WAITING": // WAITING: a manual gate in the pipeline
		return pipelines.StatusRunning, true
	case "SUCCESS":
		return pipelines.StatusSucceeded, true
	case "FAIL", "FAILED":
		return pipelines.StatusFailed, true
	case "CANCELED", "CANCELLED":
		return pipelines.StatusCancelled, true
	default:
		return pipelines.StatusRunning, false
	}
}

func refPipeline(run pipelines.Run) (string, error) {
	p := run.Ref[keyPipeline]
	if p == "" || run.ID == "" {
		return "", errors.New("yunxiao: run reference lacks pipeline_id or run id")
	}
	return p, nil
}

// Status fetches the run.
//
// Yunxiao API docs: GetPipelineRun,
// GET /oapi/v1/flow/organizations/{organizationId}/pipelines/{pipelineId}/runs/{pipelineRunId}
// (region edition without /organizations/{organizationId})
// (https://help.aliyun.com/zh/yunxiao/developer-reference/getpipelinerun).
func (c *Client) Status(ctx context.Context, run pipelines.Run) (pipelines.Run, error) {
	pl, err := refPipeline(run)
	if err != nil {
		return run, err
	}
	path, err := c.runsPath(pl, run.ID)
	if err != nil {
		return run, err
	}
	hr, err := c.api.NewRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return run, err
	}
	var pr pipelineRun
	resp, err := c.api.Do(hr, "get run", &pr)
	if err != nil {
		return run, err
	}
	if pr.Status == "" {
		return run, c.api.Malformed("get run", resp.StatusCode, "answer carries no status")
	}
	out := run
	if out.URL == "" {
		out.URL = c.link(pl, run.ID)
	}
	out.Status = MapStatus(pr.Status)
	out.Detail = pr.Status
	return out, nil
}

// Cancel stops the run. Yunxiao answers with a boolean; false is reported
// as an error.
//
// UNVERIFIED, still: the method and path come from a third-party client
// citing UpdatePipelineRun ("终止流水线运行",
// https://help.aliyun.com/zh/yunxiao/developer-reference/updatepipelinerun).
// That official page is not among the sources gatebot's authors could read
// (searched 2026-12), and Alibaba's own MCP server
// (aliyun/alibabacloud-devops-mcp-server, operations/flow) has no run-level
// stop, only a per-job one (PUT …/pipelineRuns/{id}/jobs/{jobId}/stop,
// answering a boolean). So the request body (none is sent) and the boolean
// answer are unconfirmed; check them before relying on cancel.
//
// Yunxiao API docs: UpdatePipelineRun,
// PUT /oapi/v1/flow/organizations/{organizationId}/pipelines/{pipelineId}/runs/{pipelineRunId}
// (region edition without /organizations/{organizationId}).
func (c *Client) Cancel(ctx context.Context, run pipelines.Run) error {
	pl, err := refPipeline(run)
	if err != nil {
		return err
	}
	path, err := c.runsPath(pl, run.ID)
	if err != nil {
		return err
	}
	hr, err := c.api.NewRequest(ctx, http.MethodPut, path, nil)
	if err != nil {
		return err
	}
	resp, err := c.api.Do(hr, "stop run", nil)
	if err != nil {
		return err
	}
	switch strings.TrimSpace(string(resp.Body)) {
	case "true", "":
		return nil
	case "false":
		return c.api.Error("stop run", resp.StatusCode, "", "Yunxiao refused to stop the run")
	default:
		return c.api.Malformed("stop run", resp.StatusCode, "want true or false")
	}
}
