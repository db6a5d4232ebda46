// Package codearts starts, follows and stops Huawei Cloud CodeArts release
// tasks and pipelines for gatebot (pipelines.Provider, Canceler and
// Checker), and relays Teams approval decisions to release tasks waiting
// for one (Approve).
//
// Two APIs, chosen by Config.API:
//
//   - "v3-action" (default), the seed contract: "Operating a Release Task
//     Based on the Release Task ID", POST
//     /v3/{project_id}/pipeline/pipelines/{pipeline_id}/action?action_id=…
//     with start (optional selected_tasks), stop, continue and approval
//     (task_name, approval_type agree|refuse, message)
//     (https://support.huaweicloud.com/intl/en-us/api-servicestage/servicestage_06_0248.html);
//   - "v5", CodeArts Pipeline's RunPipeline, ShowPipelineRunDetail and
//     StopPipelineRun (https://support.huaweicloud.com/api-pipeline/RunPipeline.html).
//
// Every call carries X-Auth-Token: the configured token, or an IAM token
// obtained with a password identity, cached until shortly before it expires
// and refreshed by one caller at a time; a 401 drops the cached token and
// the call is repeated once with a fresh one.
//
// Neither API takes an idempotency key. v5 runs carry the gate id at the
// start of their description; the v3 action API has no field for it.
// Crash safety rests on gatebot's per-gate lock in front of Trigger.
//
// It imports only pipelines, pipelines/apiclient, x/sync and the standard
// library.
package codearts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/apiclient"
)

// Client is a CodeArts client. It is safe for concurrent use.
type Client struct {
	mode    string
	project string
	static  apiclient.Secret
	iam     *iamTokens // nil with a static token
	api     *apiclient.Client
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
	c := &Client{mode: cfg.api(), project: cfg.ProjectID, static: cfg.Token, log: o.Logger.With("provider", ProviderType)}
	secrets := func() []apiclient.Secret {
		s := []apiclient.Secret{c.static}
		if c.iam != nil {
			s = append(s, c.iam.cfg.Password)
			s = append(s, c.iam.current()...)
		}
		return s
	}
	if cfg.IAM != nil {
		t, err := newIAMTokens(*cfg.IAM, o.HTTPClient, o.Logger, o.Now, secrets)
		if err != nil {
			return nil, err
		}
		c.iam = t
	}
	api, err := apiclient.New(apiclient.Options{
		Provider:    ProviderType,
		BaseURL:     cfg.BaseURL,
		HTTPClient:  o.HTTPClient,
		Logger:      o.Logger,
		Now:         o.Now,
		ContentType: "application/json;charset=utf8", // as the seed's header table says
		Secrets:     secrets,
		ParseError:  parseError,
	})
	if err != nil {
		return nil, fmt.Errorf("codearts: %w", err)
	}
	c.api = api
	return c, nil
}

// do sends one call with X-Auth-Token. With IAM, a 401 drops the cached
// token and the call is made once more with a fresh one: a 401 means the
// request was not carried out, so repeating it is safe.
func (c *Client) do(ctx context.Context, method, path, op string, body, v any) (*apiclient.Response, error) {
	for attempt := 0; ; attempt++ {
		tok := c.static
		if c.iam != nil {
			var err error
			if tok, err = c.iam.Token(ctx); err != nil {
				return nil, fmt.Errorf("codearts: %s: %w", op, err)
			}
		}
		req, err := c.api.NewRequest(ctx, method, path, body)
		if err != nil {
			return nil, err
		}
		req.Header.Set("X-Auth-Token", tok.Reveal())
		if req.Header.Get("Content-Type") == "" {
			// The v3 pages list Content-Type as mandatory on every call,
			// bodiless GETs included.
			req.Header.Set("Content-Type", "application/json;charset=utf8")
		}
		resp, err := c.api.Do(req, op, v)
		var ae *pipelines.APIError
		if c.iam != nil && attempt == 0 && errors.As(err, &ae) && ae.StatusCode == http.StatusUnauthorized {
			c.log.WarnContext(ctx, "IAM token refused; obtaining a new one", "op", op)
			c.iam.invalidate(tok)
			continue
		}
		return resp, err
	}
}

// Target keys.
const (
	keyPipeline      = "pipeline_id"
	keySelectedTasks = "selected_tasks"
	keyChooseStages  = "choose_stages"
	keyChooseJobs    = "choose_jobs"
	keySources       = "sources"
	keyApprovalTask  = "approval_task"
)

// SelectedTask is one entry of the start action's selected_tasks.
type SelectedTask struct {
	StageName string   `json:"stage_name"`
	Tasks     []string `json:"tasks"`
}

type target struct {
	pipeline     string
	approvalTask string // relay mode: the task waiting for Teams' decision
	selected     []SelectedTask
	chooseStages []string
	chooseJobs   []string
	sources      []map[string]any
}

func (c *Client) readTarget(t apiclient.Target) (target, []error) {
	var tg target
	var errs []error
	var err error
	if tg.pipeline, err = t.String(keyPipeline, true); err != nil {
		errs = append(errs, err)
	} else if _, err := apiclient.Path("/{x}", tg.pipeline); err != nil {
		errs = append(errs, fmt.Errorf("target.pipeline_id: %v", err))
	}
	if c.mode == APIV3Action {
		if tg.approvalTask, err = t.String(keyApprovalTask, false); err != nil {
			errs = append(errs, err)
		}
		if _, err := t.Decode(keySelectedTasks, &tg.selected); err != nil {
			return tg, append(errs, err)
		}
		if tg.approvalTask != "" && len(tg.selected) > 0 {
			errs = append(errs, errors.New("target.approval_task and target.selected_tasks do not go together: a relayed decision starts nothing"))
		}
		for i, st := range tg.selected {
			if st.StageName == "" || len(st.Tasks) == 0 {
				errs = append(errs, fmt.Errorf("target.selected_tasks[%d]: stage_name and tasks are required", i))
			}
		}
		return tg, errs
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

// CheckPipeline validates a pipeline definition for the configured API.
// v3-action: target.pipeline_id (the release task id) and optional
// selected_tasks [{stage_name, tasks}], or approval_task (relay mode: the
// gate's decision is passed to that task, which waits for approval); no inputs, because the action API
// takes no variables. v5: target.pipeline_id and optional choose_stages,
// choose_jobs and sources (passed through as RunPipeline documents them);
// inputs become string variables.
func (c *Client) CheckPipeline(def pipelines.Definition) []error {
	t := apiclient.Target(def.Target)
	var errs []error
	if c.mode == APIV3Action {
		errs = t.CheckKeys(keyPipeline, keySelectedTasks, keyApprovalTask)
	} else {
		errs = t.CheckKeys(keyPipeline, keyChooseStages, keyChooseJobs, keySources)
	}
	_, terrs := c.readTarget(t)
	errs = append(errs, terrs...)
	if c.mode == APIV3Action {
		for _, name := range def.InputNames() {
			errs = append(errs, fmt.Errorf("inputs.%s: the CodeArts v3 action API takes no variables, so inputs cannot be passed; remove the input or use api: v5", name))
		}
	}
	return errs
}

// Trigger starts a release task run (v3-action) or a pipeline run (v5).
//
// v3-action: action start with the target's selected_tasks (all tasks when
// none are configured); the answer is {id, pipeline_id, status}, id being a
// number or a string.
//
// v5: RunPipeline with description "gatebot <gate id>: …" (the gate id
// where CodeArts keeps it), inputs as string variables and the target's
// choose_stages, choose_jobs and sources; the answer is {pipeline_run_id}.
//
// Huawei Cloud API docs: POST /v3/{project_id}/pipeline/pipelines/{pipeline_id}/action?action_id=start
// (https://support.huaweicloud.com/intl/en-us/api-servicestage/servicestage_06_0248.html);
// POST /v5/{project_id}/api/pipelines/{pipeline_id}/run
// (https://support.huaweicloud.com/api-pipeline/RunPipeline.html).
func (c *Client) Trigger(ctx context.Context, req pipelines.Request) (pipelines.Run, error) {
	tg, errs := c.readTarget(req.Target)
	if len(errs) > 0 {
		return pipelines.Run{}, fmt.Errorf("codearts: %w", errors.Join(errs...))
	}
	if c.mode == APIV3Action {
		if tg.approvalTask != "" {
			return c.relayApproval(ctx, req, tg)
		}
		return c.triggerV3(ctx, req, tg)
	}
	return c.triggerV5(ctx, req, tg)
}

// relayApproval is Trigger in relay mode: the release task is already
// running and waits at target.approval_task; granting the gate approves
// that task (approval_type agree), and the run followed afterwards is the
// release task's own.
func (c *Client) relayApproval(ctx context.Context, req pipelines.Request, tg target) (pipelines.Run, error) {
	if len(req.Inputs) > 0 {
		return pipelines.Run{}, errors.New("codearts: the v3 action API takes no variables; remove the inputs")
	}
	ans, resp, err := c.action(ctx, tg.pipeline, "approval", actionBody{
		TaskName: tg.approvalTask, ApprovalType: "agree", Message: decisionMessage("Approved", req, ""),
	})
	if err != nil {
		return pipelines.Run{}, err
	}
	id := string(ans.ID)
	if id == "" {
		if resp == nil {
			return pipelines.Run{}, errors.New("codearts: approval: no answer")
		}
		id = tg.pipeline // the answer may omit the execution id; the release task stands for it
	}
	st, detail := MapV3Status(string(ans.Status))
	if string(ans.Status) == "" {
		st, detail = pipelines.StatusRunning, "approved; release task continues"
	}
	c.log.InfoContext(ctx, "release task approval relayed", "gate_id", req.GateID, "pipeline_id", tg.pipeline, "task", tg.approvalTask)
	return pipelines.Run{ID: id, Status: st, Detail: detail,
		Ref: map[string]string{keyPipeline: tg.pipeline, "api": APIV3Action}}, nil
}

// Reject relays a rejected or expired gate to the task waiting for it
// (approval_type refuse). Pipelines without target.approval_task have
// nothing waiting, so it does nothing for them.
func (c *Client) Reject(ctx context.Context, req pipelines.Request, reason string) error {
	tg, errs := c.readTarget(req.Target)
	if len(errs) > 0 {
		return fmt.Errorf("codearts: %w", errors.Join(errs...))
	}
	if c.mode != APIV3Action || tg.approvalTask == "" {
		return nil
	}
	_, _, err := c.action(ctx, tg.pipeline, "approval", actionBody{
		TaskName: tg.approvalTask, ApprovalType: "refuse", Message: decisionMessage("Rejected", req, reason),
	})
	return err
}

// decisionMessage is the approval information recorded in CodeArts.
func decisionMessage(verb string, req pipelines.Request, reason string) string {
	who := strings.Join(req.Approvers, ", ")
	if who == "" {
		who = "gatebot"
	}
	msg := verb + " in Teams by " + who + " (gatebot gate " + req.GateID + ")"
	if reason != "" {
		msg += ": " + reason
	}
	return msg
}

// actionAnswer is the action API's answer.
type actionAnswer struct {
	ID         apiclient.FlexString `json:"id"`
	PipelineID string               `json:"pipeline_id"`
	Status     apiclient.FlexString `json:"status"`
}

func (c *Client) actionPath(pipeline, action string) (string, error) {
	p, err := apiclient.Path("/v3/{project_id}/pipeline/pipelines/{pipeline_id}/action", c.project, pipeline)
	if err != nil {
		return "", fmt.Errorf("codearts: %w", err)
	}
	return p + "?" + url.Values{"action_id": {action}}.Encode(), nil
}

// actionBody is the action API's body; empty fields are left out, so start
// without selected_tasks sends {} (all tasks).
type actionBody struct {
	SelectedTasks []SelectedTask `json:"selected_tasks,omitempty"`
	TaskName      string         `json:"task_name,omitempty"`
	ApprovalType  string         `json:"approval_type,omitempty"`
	Message       string         `json:"message,omitempty"`
}

func (c *Client) action(ctx context.Context, pipeline, action string, body actionBody) (actionAnswer, *apiclient.Response, error) {
	path, err := c.actionPath(pipeline, action)
	if err != nil {
		return actionAnswer{}, nil, err
	}
	var ans actionAnswer
	resp, err := c.do(ctx, http.MethodPost, path, action+" release task", body, &ans)
	return ans, resp, err
}

func (c *Client) triggerV3(ctx context.Context, req pipelines.Request, tg target) (pipelines.Run, error) {
	if len(req.Inputs) > 0 {
		return pipelines.Run{}, errors.New("codearts: the v3 action API takes no variables; remove the inputs or use api: v5")
	}
	ans, resp, err := c.action(ctx, tg.pipeline, "start", actionBody{SelectedTasks: tg.selected})
	if err != nil {
		return pipelines.Run{}, err
	}
	if ans.ID == "" {
		return pipelines.Run{}, c.api.Malformed("start release task", resp.StatusCode, "answer carries no id")
	}
	st, detail := MapV3Status(string(ans.Status))
	c.log.InfoContext(ctx, "release task started", "gate_id", req.GateID, "pipeline_id", tg.pipeline, "run_id", string(ans.ID))
	return pipelines.Run{ID: string(ans.ID), Status: st, Detail: detail,
		Ref: map[string]string{keyPipeline: tg.pipeline, "api": APIV3Action}}, nil
}

// v3Status names the release task states listed for the status field of
// "Obtaining the Release Task List"
// (https://support.huaweicloud.com/intl/en-us/api-servicestage/servicestage_06_0246.html).
var v3Status = map[int]struct {
	name string
	st   pipelines.Status
}{
	1:  {"initialized", pipelines.StatusQueued},
	2:  {"release successful", pipelines.StatusSucceeded},
	3:  {"release failed", pipelines.StatusFailed},
	4:  {"releasing", pipelines.StatusRunning},
	5:  {"to be approved", pipelines.StatusRunning},
	7:  {"paused", pipelines.StatusRunning},
	9:  {"skipped", pipelines.StatusCancelled},
	10: {"rolling back", pipelines.StatusRunning},
}

// MapV3Status maps a release task's numeric status. ASSUMPTION: the action
// API's answer uses the codes listed for the release task list (the
// action page's own table is empty): 1 initialized→queued, 2→succeeded,
// 3→failed, 4 releasing→running, 5 to be approved→running, 7 paused→
// running, 9 skipped→cancelled, 10 rolling back→running; any other code
// (11 and up are not known) is running with the code in the detail.
func MapV3Status(code string) (pipelines.Status, string) {
	n, err := strconv.Atoi(strings.TrimSpace(code))
	if err != nil {
		return pipelines.StatusRunning, "status " + code
	}
	if s, ok := v3Status[n]; ok {
		return s.st, fmt.Sprintf("%s (%d)", s.name, n)
	}
	return pipelines.StatusRunning, fmt.Sprintf("status %d", n)
}

// projectPath fills a path template whose first parameter is the project id.
func (c *Client) projectPath(template string, params ...string) (string, error) {
	p, err := apiclient.Path(template, append([]string{c.project}, params...)...)
	if err != nil {
		return "", fmt.Errorf("codearts: %w", err)
	}
	return p, nil
}

// Description is the v5 run description: the gate id first (so a person
// can find the run of a gate), then who requested and approved it; at most
// 1024 characters.
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

func (c *Client) triggerV5(ctx context.Context, req pipelines.Request, tg target) (pipelines.Run, error) {
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
	resp, err := c.do(ctx, http.MethodPost, path, "run pipeline", body, &ans)
	if err != nil {
		return pipelines.Run{}, err
	}
	if ans.PipelineRunID == "" {
		return pipelines.Run{}, c.api.Malformed("run pipeline", resp.StatusCode, "answer carries no pipeline_run_id")
	}
	c.log.InfoContext(ctx, "pipeline run started", "gate_id", req.GateID, "pipeline_id", tg.pipeline, "run_id", ans.PipelineRunID)
	return pipelines.Run{ID: ans.PipelineRunID, Status: pipelines.StatusQueued,
		Ref: map[string]string{keyPipeline: tg.pipeline, "api": APIV5}}, nil
}

// MapV5Status maps a v5 pipeline run status: INIT, QUEUED→queued; RUNNING,
// PAUSED, SUSPEND (waiting for manual review), ASYNC_RUNNING→running;
// COMPLETED→succeeded; FAILED, ASYNC_FAILED→failed; CANCELED→cancelled;
// anything else running.
func MapV5Status(s string) pipelines.Status {
	switch strings.ToUpper(s) {
	case "INIT", "QUEUED":
		return pipelines.StatusQueued
	case "COMPLETED", "SUCCESS":
		return pipelines.StatusSucceeded
	case "FAILED", "ASYNC_FAILED":
		return pipelines.StatusFailed
	case "CANCELED", "CANCELLED":
		return pipelines.StatusCancelled
	default:
		return pipelines.StatusRunning
	}
}

func (c *Client) refPipeline(run pipelines.Run) (string, error) {
	p := run.Ref[keyPipeline]
	if p == "" || run.ID == "" {
		return "", errors.New("codearts: run reference lacks pipeline_id or run id")
	}
	if api := run.Ref["api"]; api != "" && api != c.mode {
		return "", fmt.Errorf("codearts: run was started with api %s but the provider is now configured for %s", api, c.mode)
	}
	return p, nil
}

// Status fetches the run's state.
//
// v3-action: ASSUMPTION: there is no documented way to fetch one execution,
// so the release task's own status is read from the release task list and
// taken as the state of its latest execution, which is the one gatebot
// started unless someone started another since.
// Huawei Cloud API docs: GET /v3/{project_id}/pipeline/pipelines
// (https://support.huaweicloud.com/intl/en-us/api-servicestage/servicestage_06_0246.html).
//
// v5: ShowPipelineRunDetail,
// GET /v5/{project_id}/api/pipelines/{pipeline_id}/pipeline-runs/detail?pipeline_run_id=…
// (https://support.huaweicloud.com/api-pipeline/ShowPipelineRunDetail.html);
// its detail_url becomes Run.URL.
func (c *Client) Status(ctx context.Context, run pipelines.Run) (pipelines.Run, error) {
	pl, err := c.refPipeline(run)
	if err != nil {
		return run, err
	}
	out := run
	if c.mode == APIV3Action {
		path, err := c.projectPath("/v3/{project_id}/pipeline/pipelines")
		if err != nil {
			return run, err
		}
		var ans struct {
			Pipelines []struct {
				ID     string               `json:"id"`
				Status apiclient.FlexString `json:"status"`
			} `json:"pipelines"`
		}
		resp, err := c.do(ctx, http.MethodGet, path, "list release tasks", nil, &ans)
		if err != nil {
			return run, err
		}
		for _, p := range ans.Pipelines {
			if p.ID == pl {
				out.Status, out.Detail = MapV3Status(string(p.Status))
				return out, nil
			}
		}
		return run, c.api.Error("list release tasks", resp.StatusCode, "", "release task "+pl+" is not in the project's release task list")
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
	resp, err := c.do(ctx, http.MethodGet, path+"?"+url.Values{"pipeline_run_id": {run.ID}}.Encode(), "get pipeline run", nil, &ans)
	if err != nil {
		return run, err
	}
	if ans.Status == "" {
		return run, c.api.Malformed("get pipeline run", resp.StatusCode, "answer carries no status")
	}
	out.Status, out.Detail = MapV5Status(ans.Status), ans.Status
	if ans.DetailURL != "" {
		out.URL = ans.DetailURL
	}
	return out, nil
}

// Cancel stops the run: v3-action stops the release task (action stop);
// v5 stops the pipeline run and checks {"success": true}.
//
// Huawei Cloud API docs: POST /v3/{project_id}/pipeline/pipelines/{pipeline_id}/action?action_id=stop
// (https://support.huaweicloud.com/intl/en-us/api-servicestage/servicestage_06_0248.html);
// POST /v5/{project_id}/api/pipelines/{pipeline_id}/pipeline-runs/{pipeline_run_id}/stop
// (https://support.huaweicloud.com/eu/api-pipeline/StopPipelineRun.html).
func (c *Client) Cancel(ctx context.Context, run pipelines.Run) error {
	pl, err := c.refPipeline(run)
	if err != nil {
		return err
	}
	if c.mode == APIV3Action {
		_, _, err := c.action(ctx, pl, "stop", actionBody{})
		return err
	}
	path, err := c.projectPath("/v5/{project_id}/api/pipelines/{pipeline_id}/pipeline-runs/{pipeline_run_id}/stop", pl, run.ID)
	if err != nil {
		return err
	}
	var ans struct {
		Success *bool `json:"success"`
	}
	resp, err := c.do(ctx, http.MethodPost, path, "stop pipeline run", nil, &ans)
	if err != nil {
		return err
	}
	if ans.Success != nil && !*ans.Success {
		return c.api.Error("stop pipeline run", resp.StatusCode, "", "CodeArts did not stop the run")
	}
	return nil
}

// Continue resumes a paused release task (action continue). Only the
// v3-action API has it.
//
// Huawei Cloud API docs: POST /v3/{project_id}/pipeline/pipelines/{pipeline_id}/action?action_id=continue
// (https://support.huaweicloud.com/intl/en-us/api-servicestage/servicestage_06_0248.html).
func (c *Client) Continue(ctx context.Context, pipelineID string) error {
	if c.mode != APIV3Action {
		return fmt.Errorf("codearts: continue needs api %s: %w", APIV3Action, pipelines.ErrNotSupported)
	}
	_, _, err := c.action(ctx, pipelineID, "continue", actionBody{})
	return err
}

// Approve relays a Teams decision to a release task waiting for approval
// at task taskName: approval_type "agree" when approve is true, else
// "refuse", with message as the approval information. Only the v3-action
// API has it.
//
// Huawei Cloud API docs: POST /v3/{project_id}/pipeline/pipelines/{pipeline_id}/action?action_id=approval
// (https://support.huaweicloud.com/intl/en-us/api-servicestage/servicestage_06_0248.html;
// approval_type values from the Chinese page, servicestage_06_0248).
func (c *Client) Approve(ctx context.Context, pipelineID, taskName string, approve bool, message string) error {
	if c.mode != APIV3Action {
		return fmt.Errorf("codearts: approval needs api %s: %w", APIV3Action, pipelines.ErrNotSupported)
	}
	if taskName == "" {
		return errors.New("codearts: approval: task name is required")
	}
	kind := "refuse"
	if approve {
		kind = "agree"
	}
	_, _, err := c.action(ctx, pipelineID, "approval", actionBody{TaskName: taskName, ApprovalType: kind, Message: message})
	return err
}
