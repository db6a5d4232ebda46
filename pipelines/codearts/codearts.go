// Package codearts starts, follows and stops Huawei Cloud CodeArts Pipeline
// runs for gatebot (pipelines.Provider, Canceler and Checker) through the
// v5 API: RunPipeline, ShowPipelineRunDetail and StopPipelineRun
// (https://support.huaweicloud.com/intl/en-us/api-pipeline/RunPipeline.html).
//
// ServiceStage's release-task action API, which older configs reached here
// with `api: v3-action`, is the servicestage provider; such a config fails
// validation with a message naming it.
//
// Every call carries X-Auth-Token: the configured token, or an IAM token
// from pipelines/huaweiiam (cached, refreshed, repeated once after a 401).
//
// RunPipeline takes no idempotency key. Runs carry the gate id at the start
// of their description, so a person can find the run of a gate; a repeated
// trigger is not recognised by this provider, so gatebot never repeats one
// whose outcome is unknown (the gate goes to trigger_failed and a person
// decides, with the run list in CodeArts to check).
//
// It imports only pipelines, pipelines/apiclient, pipelines/huaweiiam and
// the standard library.
package codearts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/apiclient"
	"github.com/gatebot/gatebot/pipelines/huaweiiam"
)

// Client is a CodeArts Pipeline client. It is safe for concurrent use.
type Client struct {
	project string
	hw      *huaweiiam.Client
	now     func() time.Time
	log     *slog.Logger
}

var (
	_ pipelines.Provider = (*Client)(nil)
	_ pipelines.Canceler = (*Client)(nil)
	_ pipelines.Checker  = (*Client)(nil)
)

// New validates cfg and returns a Client. No IAM call is made until the
// first API call needs a token.
func New(cfg Config, opts ...Option) (*Client, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("codearts: %w", errors.Join(errs...))
	}
	o, err := apiclient.ApplyOptions(opts)
	if err != nil {
		return nil, err
	}
	hw, err := huaweiiam.NewClient(huaweiiam.Options{
		Provider: ProviderType, BaseURL: cfg.BaseURL, Token: cfg.Token, IAM: cfg.IAM, Settings: o,
		// Kept from the first releases: CodeArts accepts it, and the
		// golden requests pin it.
		ContentType: "application/json;charset=utf8",
	})
	if err != nil {
		return nil, err
	}
	return &Client{project: cfg.ProjectID, hw: hw, now: o.Now, log: o.Logger.With("provider", ProviderType)}, nil
}

// Target keys.
const (
	keyPipeline     = "pipeline_id"
	keyChooseStages = "choose_stages"
	keyChooseJobs   = "choose_jobs"
	keySources      = "sources"
)

// releaseTaskKeys were target keys of the v3-action mode; they now belong
// to the servicestage provider.
var releaseTaskKeys = []string{"selected_tasks", "approval_task"}

type target struct {
	pipeline     string
	chooseStages []string
	chooseJobs   []string
	sources      []map[string]any
}

func readTarget(t apiclient.Target) (target, []error) {
	var tg target
	var errs []error
	var err error
	if tg.pipeline, err = t.String(keyPipeline, true); err != nil {
		errs = append(errs, err)
	} else if _, err := apiclient.Path("/{x}", tg.pipeline); err != nil {
		errs = append(errs, fmt.Errorf("target.pipeline_id: %v", err))
	}
	if tg.chooseStages, err = t.StringList(keyChooseStages); err != nil {
		errs = append(errs, err)
	}
	if tg.chooseJobs, err = t.StringList(keyChooseJobs); err != nil {
		errs = append(errs, err)
	}
	if _, err := t.Decode(keySources, &tg.sources); err != nil {
		errs = append(errs, err)
	}
	return tg, errs
}

// CheckPipeline validates a pipeline definition: target.pipeline_id and
// optional choose_stages, choose_jobs and sources (passed through as
// RunPipeline documents them); inputs become string variables.
func (c *Client) CheckPipeline(def pipelines.Definition) []error {
	t := apiclient.Target(def.Target)
	var errs []error
	for _, e := range t.CheckKeys(keyPipeline, keyChooseStages, keyChooseJobs, keySources) {
		for _, k := range releaseTaskKeys {
			if strings.HasPrefix(e.Error(), "target."+k+" ") {
				e = fmt.Errorf("%w; %s is a ServiceStage release task key: use a provider of type: servicestage", e, k)
			}
		}
		errs = append(errs, e)
	}
	_, terrs := readTarget(t)
	return append(errs, terrs...)
}

// Description is the run description: the gate id first (so a person can
// find the run of a gate), then who requested and approved it; at most
// 1024 characters, RunPipeline's limit.
func Description(req pipelines.Request) string {
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
	if req.Message != "" {
		b.WriteString(": " + req.Message)
	}
	return apiclient.Truncate(b.String(), 1024)
}

type variable struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

func (c *Client) projectPath(template string, params ...string) (string, error) {
	p, err := apiclient.Path(template, append([]string{c.project}, params...)...)
	if err != nil {
		return "", fmt.Errorf("codearts: %w", err)
	}
	return p, nil
}

// Trigger starts a pipeline run with description "gatebot <gate id>: …",
// inputs as string variables and the target's choose_stages, choose_jobs
// and sources; the answer is {pipeline_run_id}.
//
// Huawei Cloud API docs: POST /v5/{project_id}/api/pipelines/{pipeline_id}/run
// (https://support.huaweicloud.com/intl/en-us/api-pipeline/RunPipeline.html).
func (c *Client) Trigger(ctx context.Context, req pipelines.Request) (pipelines.Run, error) {
	tg, errs := readTarget(req.Target)
	if len(errs) > 0 {
		return pipelines.Run{}, fmt.Errorf("codearts: %w", errors.Join(errs...))
	}
	body := struct {
		Description  string           `json:"description"`
		Variables    []variable       `json:"variables,omitempty"`
		ChooseStages []string         `json:"choose_stages,omitempty"`
		ChooseJobs   []string         `json:"choose_jobs,omitempty"`
		Sources      []map[string]any `json:"sources,omitempty"`
	}{Description: Description(req), ChooseStages: tg.chooseStages, ChooseJobs: tg.chooseJobs, Sources: tg.sources}
	vars := pipelines.StringInputs(req.Inputs)
	names := make([]string, 0, len(vars))
	for n := range vars {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		body.Variables = append(body.Variables, variable{n, vars[n]})
	}
	path, err := c.projectPath("/v5/{project_id}/api/pipelines/{pipeline_id}/run", tg.pipeline)
	if err != nil {
		return pipelines.Run{}, err
	}
	var ans struct {
		PipelineRunID string `json:"pipeline_run_id"`
	}
	resp, err := c.hw.Do(ctx, http.MethodPost, path, "run pipeline", body, &ans)
	if err != nil {
		return pipelines.Run{}, err
	}
	if ans.PipelineRunID == "" {
		return pipelines.Run{}, c.hw.API().Malformed("run pipeline", resp.StatusCode, "answer carries no pipeline_run_id")
	}
	c.log.InfoContext(ctx, "pipeline run started", "gate_id", req.GateID, "pipeline_id", tg.pipeline, "run_id", ans.PipelineRunID)
	return pipelines.Run{ID: ans.PipelineRunID, Status: pipelines.StatusQueued,
		Ref: map[string]string{keyPipeline: tg.pipeline, "api": APIV5}}, nil
}

// refPipeline returns the run's pipeline id. A run started through the old
// v3-action mode belongs to ServiceStage and cannot be followed here:
// ErrRunLost, so the gate ends instead of being polled forever.
func refPipeline(run pipelines.Run) (string, error) {
	if run.Ref["api"] == apiV3Action {
		return "", fmt.Errorf("codearts: run %s is a ServiceStage release task execution (api v3-action), which this provider no longer follows; see it in ServiceStage: %w", run.ID, pipelines.ErrRunLost)
	}
	p := run.Ref[keyPipeline]
	if p == "" || run.ID == "" {
		return "", errors.New("codearts: run reference lacks pipeline_id or run id")
	}
	return p, nil
}

// Status fetches the run's state. CodeArts' detail_url (the run's page in
// the CodeArts console, documented in the answer) becomes Run.URL.
//
// Huawei Cloud API docs: GET /v5/{project_id}/api/pipelines/{pipeline_id}/pipeline-runs/detail?pipeline_run_id=…
// (https://support.huaweicloud.com/intl/en-us/api-pipeline/ShowPipelineRunDetail.html).
func (c *Client) Status(ctx context.Context, run pipelines.Run) (pipelines.Run, error) {
	pl, err := refPipeline(run)
	if err != nil {
		return run, err
	}
	path, err := c.projectPath("/v5/{project_id}/api/pipelines/{pipeline_id}/pipeline-runs/detail", pl)
	if err != nil {
		return run, err
	}
	var ans struct {
		ID        string `json:"id"`
		Status    string `json:"status"`
		DetailURL string `json:"detail_url"`
	}
	resp, err := c.hw.Do(ctx, http.MethodGet, path+"?"+url.Values{"pipeline_run_id": {run.ID}}.Encode(), "get pipeline run", nil, &ans)
	if ae := (*pipelines.APIError)(nil); errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound {
		// The pipeline or run is gone: polling again cannot help.
		return run, fmt.Errorf("%w: %w", pipelines.ErrRunLost, err)
	}
	if err != nil {
		return run, err
	}
	if ans.Status == "" {
		return run, c.hw.API().Malformed("get pipeline run", resp.StatusCode, "answer carries no status")
	}
	if ans.ID != "" && ans.ID != run.ID {
		return run, c.hw.API().Malformed("get pipeline run", resp.StatusCode, "answer is for run "+ans.ID+", not "+run.ID)
	}
	out := run
	st, known := MapV5Status(ans.Status)
	if !known {
		c.log.WarnContext(ctx, "undocumented pipeline run status", "run_id", run.ID, "status", ans.Status)
	}
	settle(&out, st, known, ans.Status, c.now())
	if u, err := url.Parse(ans.DetailURL); err == nil && u.Scheme == "https" && u.Host != "" {
		out.URL = ans.DetailURL
	}
	return out, nil
}

// Cancel stops the run and checks {"success": true}.
//
// Huawei Cloud API docs: POST /v5/{project_id}/api/pipelines/{pipeline_id}/pipeline-runs/{pipeline_run_id}/stop
// (https://support.huaweicloud.com/intl/en-us/api-pipeline/StopPipelineRun.html).
func (c *Client) Cancel(ctx context.Context, run pipelines.Run) error {
	pl, err := refPipeline(run)
	if err != nil {
		return err
	}
	path, err := c.projectPath("/v5/{project_id}/api/pipelines/{pipeline_id}/pipeline-runs/{pipeline_run_id}/stop", pl, run.ID)
	if err != nil {
		return err
	}
	var ans struct {
		Success *bool `json:"success"`
	}
	resp, err := c.hw.Do(ctx, http.MethodPost, path, "stop pipeline run", nil, &ans)
	if err != nil {
		return err
	}
	if ans.Success != nil && !*ans.Success {
		return c.hw.API().Error("stop pipeline run", resp.StatusCode, "", "CodeArts did not stop the run")
	}
	return nil
}
