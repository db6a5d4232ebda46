package servicestage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/apiclient"
	"github.com/gatebot/gatebot/pipelines/huaweiiam"
)

// Client is a ServiceStage release task client. It is safe for concurrent
// use.
type Client struct {
	cfg Config
	hw  *huaweiiam.Client
	now func() time.Time
	log *slog.Logger
}

var (
	_ pipelines.Provider = (*Client)(nil)
	_ pipelines.Canceler = (*Client)(nil)
	_ pipelines.Checker  = (*Client)(nil)
	_ pipelines.Rejecter = (*Client)(nil)
)

// New validates cfg and returns a Client. No IAM call is made until the
// first API call needs a token.
func New(cfg Config, opts ...Option) (*Client, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("servicestage: %w", errors.Join(errs...))
	}
	o, err := apiclient.ApplyOptions(opts)
	if err != nil {
		return nil, err
	}
	hw, err := huaweiiam.NewClient(huaweiiam.Options{
		Provider: ProviderType, BaseURL: cfg.BaseURL, Token: cfg.Token, IAM: cfg.IAM, Settings: o,
		// The seed's header table: Content-Type is mandatory on every
		// call, application/json;charset=utf8.
		ContentType: "application/json;charset=utf8", ContentTypeAlways: true,
	})
	if err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, hw: hw, now: o.Now, log: o.Logger.With("provider", ProviderType)}, nil
}

// Action is an action_id of the action API.
type Action string

// The documented action_id values.
const (
	ActionStart    Action = "start"
	ActionStop     Action = "stop"
	ActionRetry    Action = "retry"
	ActionApproval Action = "approval"
	ActionContinue Action = "continue"
	ActionRollback Action = "rollback"
)

// SelectedTask is one entry of the start action's selected_tasks: the
// tasks of one stage to execute.
type SelectedTask struct {
	StageName string   `json:"stage_name"`
	Tasks     []string `json:"tasks"`
}

// The approval_type values.
const (
	ApprovalAgree  = "agree"
	ApprovalRefuse = "refuse"
)

// ActionBody is the action API's body; empty fields are left out, so start
// without SelectedTasks sends {} (all tasks).
type ActionBody struct {
	SelectedTasks []SelectedTask `json:"selected_tasks,omitempty"`
	TaskName      string         `json:"task_name,omitempty"`
	ApprovalType  string         `json:"approval_type,omitempty"`
	Message       string         `json:"message,omitempty"`
}

// Execution is the action API's answer: the release task execution id, the
// release task id and the release task status code.
type Execution struct {
	ID         string
	PipelineID string
	Status     string
}

// Act performs one action on release task pipelineID. Approval needs a
// task name and approval type agree or refuse; selected_tasks go with start
// only.
//
// Huawei Cloud API docs: POST /v3/{project_id}/pipeline/pipelines/{pipeline_id}/action?action_id=…
// (https://support.huaweicloud.com/intl/en-us/api-servicestage/servicestage_06_0248.html).
func (c *Client) Act(ctx context.Context, pipelineID string, action Action, body ActionBody) (Execution, error) {
	switch action {
	case ActionStart, ActionStop, ActionRetry, ActionContinue, ActionRollback:
		if body.TaskName != "" || body.ApprovalType != "" {
			return Execution{}, fmt.Errorf("servicestage: %s takes no task_name or approval_type", action)
		}
	case ActionApproval:
		if body.TaskName == "" {
			return Execution{}, errors.New("servicestage: approval needs task_name")
		}
		if body.ApprovalType != ApprovalAgree && body.ApprovalType != ApprovalRefuse {
			return Execution{}, fmt.Errorf("servicestage: approval_type %q must be agree or refuse", body.ApprovalType)
		}
	default:
		return Execution{}, fmt.Errorf("servicestage: action %q is not one of start, stop, retry, approval, continue, rollback", action)
	}
	if action != ActionStart && len(body.SelectedTasks) > 0 {
		return Execution{}, fmt.Errorf("servicestage: selected_tasks go with start, not %s", action)
	}
	p, err := apiclient.Path("/v3/{project_id}/pipeline/pipelines/{pipeline_id}/action", c.cfg.ProjectID, pipelineID)
	if err != nil {
		return Execution{}, fmt.Errorf("servicestage: %w", err)
	}
	var ans struct {
		ID         apiclient.FlexString `json:"id"`
		PipelineID string               `json:"pipeline_id"`
		Status     apiclient.FlexString `json:"status"`
	}
	op := string(action) + " release task"
	resp, err := c.hw.Do(ctx, http.MethodPost, p+"?"+url.Values{"action_id": {string(action)}}.Encode(), op, body, &ans)
	if err != nil {
		return Execution{}, err
	}
	if ans.PipelineID != "" && ans.PipelineID != pipelineID {
		return Execution{}, c.hw.API().Malformed(op, resp.StatusCode, "answer is for release task "+ans.PipelineID)
	}
	return Execution{ID: string(ans.ID), PipelineID: pipelineID, Status: string(ans.Status)}, nil
}

// Retry runs a failed release task again (see Act).
func (c *Client) Retry(ctx context.Context, pipelineID string) (Execution, error) {
	return c.Act(ctx, pipelineID, ActionRetry, ActionBody{})
}

// Continue resumes a paused release task (see Act).
func (c *Client) Continue(ctx context.Context, pipelineID string) (Execution, error) {
	return c.Act(ctx, pipelineID, ActionContinue, ActionBody{})
}

// Rollback rolls a release task back (see Act).
func (c *Client) Rollback(ctx context.Context, pipelineID string) (Execution, error) {
	return c.Act(ctx, pipelineID, ActionRollback, ActionBody{})
}

// Approve answers the approval task taskName of a release task waiting for
// it: agree when approve is true, else refuse, with message as the
// approval information (see Act).
func (c *Client) Approve(ctx context.Context, pipelineID, taskName string, approve bool, message string) (Execution, error) {
	kind := ApprovalRefuse
	if approve {
		kind = ApprovalAgree
	}
	return c.Act(ctx, pipelineID, ActionApproval, ActionBody{TaskName: taskName, ApprovalType: kind, Message: message})
}

// Target keys.
const (
	keyPipeline      = "pipeline_id"
	keySelectedTasks = "selected_tasks"
	keyApprovalTask  = "approval_task"
)

// Run.Ref keys.
const (
	refPipeline  = "pipeline_id"
	refExecution = "execution_id"
)

type target struct {
	pipeline     string
	approvalTask string // relay mode: the task waiting for Teams' decision
	selected     []SelectedTask
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

// CheckPipeline validates a pipeline definition: target.pipeline_id (the
// release task id) and optional selected_tasks [{stage_name, tasks}], or
// approval_task (relay mode: the gate's decision is passed to that task,
// which waits for approval). Inputs are refused: the action API takes no
// variables.
func (c *Client) CheckPipeline(def pipelines.Definition) []error {
	t := apiclient.Target(def.Target)
	errs := t.CheckKeys(keyPipeline, keySelectedTasks, keyApprovalTask)
	_, terrs := readTarget(t)
	errs = append(errs, terrs...)
	for _, name := range def.InputNames() {
		errs = append(errs, fmt.Errorf("inputs.%s: ServiceStage's release task action API takes no variables, so inputs cannot be passed; remove the input", name))
	}
	return errs
}

// Trigger starts the release task (action start with the target's
// selected_tasks, all tasks when none are configured), or, in relay mode
// (target.approval_task), approves the task waiting for the gate's decision
// (action approval, agree). The run followed afterwards is the execution
// the answer names ({id, pipeline_id, status}).
//
// Neither call can carry the gate id, so a repeated trigger is not
// recognisable: this provider does not claim idempotency, and gatebot does
// not repeat a trigger whose outcome is unknown.
func (c *Client) Trigger(ctx context.Context, req pipelines.Request) (pipelines.Run, error) {
	tg, errs := readTarget(req.Target)
	if len(errs) > 0 {
		return pipelines.Run{}, fmt.Errorf("servicestage: %w", errors.Join(errs...))
	}
	if len(req.Inputs) > 0 {
		return pipelines.Run{}, errors.New("servicestage: the release task action API takes no variables; remove the inputs")
	}
	var ex Execution
	var err error
	if tg.approvalTask != "" {
		ex, err = c.Approve(ctx, tg.pipeline, tg.approvalTask, true, decisionMessage("Approved", req, ""))
	} else {
		ex, err = c.Act(ctx, tg.pipeline, ActionStart, ActionBody{SelectedTasks: tg.selected})
	}
	if err != nil {
		return pipelines.Run{}, err
	}
	run := pipelines.Run{ID: ex.ID, Ref: map[string]string{refPipeline: tg.pipeline, refExecution: ex.ID}}
	switch {
	case ex.ID == "" && tg.approvalTask == "":
		return pipelines.Run{}, c.hw.API().Malformed("start release task", http.StatusOK, "answer carries no execution id")
	case ex.ID == "":
		// The approval answer may name no execution; the release task
		// stands for it and is followed through the release task list.
		run.ID = tg.pipeline
		delete(run.Ref, refExecution)
	}
	switch {
	case ex.Status == "" && tg.approvalTask != "":
		run.Status, run.Detail = pipelines.StatusRunning, "approved; release task continues"
	case ex.Status == "":
		run.Status, run.Detail = pipelines.StatusQueued, "started"
	default:
		settle(&run, ex.Status, c.now())
	}
	run.URL = c.cfg.runURL(tg.pipeline, run.Ref[refExecution])
	c.log.InfoContext(ctx, "release task action done", "gate_id", req.GateID, "pipeline_id", tg.pipeline,
		"execution_id", ex.ID, "relay", tg.approvalTask != "")
	return run, nil
}

// Reject relays a rejected or expired gate to the task waiting for it
// (action approval, refuse). Pipelines without target.approval_task have
// nothing waiting, so it does nothing for them.
func (c *Client) Reject(ctx context.Context, req pipelines.Request, reason string) error {
	tg, errs := readTarget(req.Target)
	if len(errs) > 0 {
		return fmt.Errorf("servicestage: %w", errors.Join(errs...))
	}
	if tg.approvalTask == "" {
		return nil
	}
	_, err := c.Approve(ctx, tg.pipeline, tg.approvalTask, false, decisionMessage("Rejected", req, reason))
	return err
}

// decisionMessage is the approval information recorded in ServiceStage.
func decisionMessage(verb string, req pipelines.Request, reason string) string {
	who := strings.Join(req.Approvers, ", ")
	if who == "" {
		who = "gatebot"
	}
	msg := verb + " in Teams by " + who + " (gatebot gate " + req.GateID + ")"
	if reason != "" {
		msg += ": " + reason
	}
	return apiclient.Truncate(msg, apiclient.MaxMessage)
}

// Cancel stops the release task (action stop). The stop action names no
// execution, so when the run's own execution record says it has already
// ended, nothing is stopped: a later execution someone else started is
// left alone.
//
// Huawei Cloud API docs: POST /v3/{project_id}/pipeline/pipelines/{pipeline_id}/action?action_id=stop
// (https://support.huaweicloud.com/intl/en-us/api-servicestage/servicestage_06_0248.html).
func (c *Client) Cancel(ctx context.Context, run pipelines.Run) error {
	pl := run.Ref[refPipeline]
	if pl == "" {
		return errors.New("servicestage: run reference lacks pipeline_id")
	}
	if ex := run.Ref[refExecution]; ex != "" {
		code, found, err := c.recordStatus(ctx, pl, ex)
		if err != nil {
			return err
		}
		if st, _, known := MapStatus(code); found && known && st.Terminal() {
			c.log.InfoContext(ctx, "execution already ended; not stopping the release task", "pipeline_id", pl, "execution_id", ex)
			return nil
		}
	}
	_, err := c.Act(ctx, pl, ActionStop, ActionBody{})
	return err
}
