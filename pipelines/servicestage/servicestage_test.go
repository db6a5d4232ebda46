package servicestage_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/apiclient"
	"github.com/gatebot/gatebot/pipelines/huaweiiam"
	"github.com/gatebot/gatebot/pipelines/pipelinestest"
	"github.com/gatebot/gatebot/pipelines/servicestage"
	"github.com/google/go-cmp/cmp"
)

const (
	token     = "MIIstatic-x-auth-token-5ecr3t"
	project   = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
	releaseID = "caf409b1-10df-483a-b14d-7b05f7e12c88"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newClient(t *testing.T, cfg servicestage.Config, ex ...pipelinestest.Exchange) (*servicestage.Client, *pipelinestest.SyncBuffer, *clock) {
	t.Helper()
	srv := pipelinestest.NewServer(t, ex...)
	logger, logs := pipelinestest.Logger()
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	cfg.BaseURL, cfg.ProjectID = srv.URL, project
	if cfg.IAM == nil {
		cfg.Token = token
	}
	c, err := servicestage.New(cfg, servicestage.WithLogger(logger), servicestage.WithHTTPClient(srv.Client()), servicestage.WithNow(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	return c, logs, clk
}

type apiErr struct {
	Status     int
	Code, Msg  string
	RetryAfter time.Duration
	Temporary  bool
}

func wantAPIErr(want apiErr) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var ae *pipelines.APIError
		if !errors.As(err, &ae) {
			t.Fatalf("err = %v, want *pipelines.APIError", err)
		}
		if got := (apiErr{ae.StatusCode, ae.Code, ae.Message, ae.RetryAfter, ae.Temporary()}); got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	}
}

func malformed(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, apiclient.ErrMalformedResponse) {
		t.Errorf("err = %v, want ErrMalformedResponse", err)
	}
}

// selected is the seed's example request.
var selected = []any{
	map[string]any{"stage_name": "899tih", "tasks": []any{"ujgdh4"}},
	map[string]any{"stage_name": "uipfzw", "tasks": []any{"ax8hus"}},
}

func ref(execution string) map[string]string {
	return map[string]string{"pipeline_id": releaseID, "execution_id": execution}
}

func TestTrigger(t *testing.T) {
	t.Parallel()
	withTasks := pipelines.Request{GateID: "g_abc", Pipeline: "release-api", Target: map[string]any{"pipeline_id": releaseID, "selected_tasks": selected}}
	allTasks := pipelines.Request{GateID: "g_abc", Target: map[string]any{"pipeline_id": releaseID}}
	tests := []struct {
		name    string
		req     pipelines.Request
		ex      pipelinestest.Exchange
		timeout time.Duration
		want    pipelines.Run
		check   func(*testing.T, error)
	}{
		{name: "seed example: selected tasks, numeric id", req: withTasks,
			ex:   pipelinestest.Exchange{Golden: "start-selected", Body: `{ "id": 286541, "pipeline_id": "` + releaseID + `", "status": 4 }`},
			want: pipelines.Run{ID: "286541", Status: pipelines.StatusRunning, Detail: "releasing (4)", Ref: ref("286541")}},
		{name: "all tasks, string id", req: allTasks,
			ex:   pipelinestest.Exchange{Golden: "start-all", Body: `{"id":"286542","pipeline_id":"` + releaseID + `","status":1}`},
			want: pipelines.Run{ID: "286542", Status: pipelines.StatusQueued, Detail: "initialization successful (1)", Ref: ref("286542")}},
		{name: "no status", req: allTasks,
			ex:   pipelinestest.Exchange{Golden: "start-all", Body: `{"id":286543}`},
			want: pipelines.Run{ID: "286543", Status: pipelines.StatusQueued, Detail: "started", Ref: ref("286543")}},
		{name: "no id", req: allTasks, ex: pipelinestest.Exchange{Golden: "start-all", Body: `{"pipeline_id":"` + releaseID + `","status":4}`}, check: malformed},
		{name: "another release task", req: allTasks, ex: pipelinestest.Exchange{Golden: "start-all", Body: `{"id":1,"pipeline_id":"other","status":4}`}, check: malformed},
		{name: "not JSON", req: allTasks, ex: pipelinestest.Exchange{Golden: "start-all", Body: `{"id":[1]}`}, check: malformed},
		{name: "400", req: allTasks,
			ex:    pipelinestest.Exchange{Golden: "start-all", Status: 400, Body: `{"error_code":"SVCSTG.00100400","error_msg":"Release task is already running"}`},
			check: wantAPIErr(apiErr{Status: 400, Code: "SVCSTG.00100400", Msg: "Release task is already running"})},
		{name: "404", req: allTasks,
			ex:    pipelinestest.Exchange{Golden: "start-all", Status: 404, Body: `{"error_code":"SVCSTG.00100404","error_msg":"not found"}`},
			check: wantAPIErr(apiErr{Status: 404, Code: "SVCSTG.00100404", Msg: "not found"})},
		{name: "500", req: allTasks,
			ex:    pipelinestest.Exchange{Golden: "start-all", Status: 500, Body: `{"error_code":"SVCSTG.00100500","error_msg":"internal"}`},
			check: wantAPIErr(apiErr{Status: 500, Code: "SVCSTG.00100500", Msg: "internal", Temporary: true})},
		{name: "429", req: allTasks,
			ex:    pipelinestest.Exchange{Golden: "start-all", Status: 429, Header: http.Header{"Retry-After": {"15"}}, Body: `{"error_code":"APIGW.0308","error_msg":"The throttling threshold has been reached"}`},
			check: wantAPIErr(apiErr{Status: 429, Code: "APIGW.0308", Msg: "The throttling threshold has been reached", RetryAfter: 15 * time.Second, Temporary: true})},
		{name: "timeout", req: allTasks, timeout: 100 * time.Millisecond, ex: pipelinestest.Exchange{Golden: "start-all", Hang: true},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, context.DeadlineExceeded) || !pipelines.IsTemporary(err) {
					t.Errorf("err = %v", err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, logs, _ := newClient(t, servicestage.Config{}, tt.ex)
			ctx := t.Context()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			run, err := c.Trigger(ctx, tt.req)
			if tt.check == nil {
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, run); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			} else {
				if err == nil {
					t.Fatalf("no error; run %+v", run)
				}
				tt.check(t, err)
				pipelinestest.AssertNoSecret(t, token, err.Error())
			}
			pipelinestest.AssertNoSecret(t, token, logs.String())
		})
	}
}

func TestTriggerRefusesInputsAndBadTargets(t *testing.T) {
	t.Parallel()
	c, _, _ := newClient(t, servicestage.Config{})
	for _, req := range []pipelines.Request{
		{GateID: "g", Target: map[string]any{"pipeline_id": releaseID}, Inputs: map[string]any{"v": "1"}},
		{GateID: "g", Target: map[string]any{}},
		{GateID: "g", Target: map[string]any{"pipeline_id": ".."}},
	} {
		if _, err := c.Trigger(t.Context(), req); err == nil {
			t.Errorf("Trigger(%v) made no error", req.Target)
		}
	}
}

func TestRunURL(t *testing.T) {
	t.Parallel()
	tmpl := "https://console.huaweicloud.com/servicestage/?region=cn-north-4#/pipelines/{pipeline_id}/records/{execution_id}?project={project_id}"
	c, _, _ := newClient(t, servicestage.Config{RunURL: tmpl},
		pipelinestest.Exchange{Golden: "start-all", Body: `{"id":286541,"pipeline_id":"` + releaseID + `","status":4}`},
		pipelinestest.Exchange{Golden: "approval-agree-relay", Body: `{}`},
	)
	run, err := c.Trigger(t.Context(), pipelines.Request{GateID: "g_abc", Target: map[string]any{"pipeline_id": releaseID}})
	want := "https://console.huaweicloud.com/servicestage/?region=cn-north-4#/pipelines/" + releaseID + "/records/286541?project=" + project
	if err != nil || run.URL != want {
		t.Errorf("URL = %q, %v; want %q", run.URL, err, want)
	}
	// Without an execution id the template cannot be filled: no link.
	run, err = c.Trigger(t.Context(), pipelines.Request{GateID: "g_abc", Approvers: []string{"alice", "bob"},
		Target: map[string]any{"pipeline_id": releaseID, "approval_task": "deploy-prod"}})
	if err != nil || run.URL != "" {
		t.Errorf("relay URL = %q, %v", run.URL, err)
	}
}

func TestActions(t *testing.T) {
	t.Parallel()
	answer := `{"id":"286541","pipeline_id":"` + releaseID + `","status":4}`
	c, logs, _ := newClient(t, servicestage.Config{},
		pipelinestest.Exchange{Golden: "retry", Body: answer},
		pipelinestest.Exchange{Golden: "continue", Body: answer},
		pipelinestest.Exchange{Golden: "rollback", Body: `{"id":"286541","pipeline_id":"` + releaseID + `","status":10}`},
		pipelinestest.Exchange{Golden: "approval-agree", Body: answer},
		pipelinestest.Exchange{Golden: "approval-refuse", Status: 400, Body: `{"error_code":"SVCSTG.00100400","error_msg":"task is not waiting for approval"}`},
	)
	ctx := t.Context()
	want := servicestage.Execution{ID: "286541", PipelineID: releaseID, Status: "4"}
	if ex, err := c.Retry(ctx, releaseID); err != nil || ex != want {
		t.Errorf("Retry = %+v, %v", ex, err)
	}
	if ex, err := c.Continue(ctx, releaseID); err != nil || ex != want {
		t.Errorf("Continue = %+v, %v", ex, err)
	}
	if ex, err := c.Rollback(ctx, releaseID); err != nil || ex.Status != "10" {
		t.Errorf("Rollback = %+v, %v", ex, err)
	}
	if ex, err := c.Approve(ctx, releaseID, "deploy-prod", true, "Approved in Teams by alice, bob"); err != nil || ex != want {
		t.Errorf("Approve = %+v, %v", ex, err)
	}
	_, err := c.Approve(ctx, releaseID, "deploy-prod", false, "Rejected in Teams by carol: not today")
	wantAPIErr(apiErr{Status: 400, Code: "SVCSTG.00100400", Msg: "task is not waiting for approval"})(t, err)
	// Refused before any call.
	for name, f := range map[string]func() error{
		"approval without task": func() error { _, err := c.Approve(ctx, releaseID, "", true, ""); return err },
		"approval type": func() error {
			_, err := c.Act(ctx, releaseID, servicestage.ActionApproval, servicestage.ActionBody{TaskName: "t", ApprovalType: "maybe"})
			return err
		},
		"unknown action": func() error { _, err := c.Act(ctx, releaseID, "delete", servicestage.ActionBody{}); return err },
		"tasks with stop": func() error {
			_, err := c.Act(ctx, releaseID, servicestage.ActionStop, servicestage.ActionBody{SelectedTasks: []servicestage.SelectedTask{{"s", []string{"t"}}}})
			return err
		},
		"task name with retry": func() error {
			_, err := c.Act(ctx, releaseID, servicestage.ActionRetry, servicestage.ActionBody{TaskName: "t"})
			return err
		},
	} {
		if f() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	pipelinestest.AssertNoSecret(t, token, logs.String())
}

func TestRelay(t *testing.T) {
	t.Parallel()
	c, logs, _ := newClient(t, servicestage.Config{},
		pipelinestest.Exchange{Golden: "approval-agree-relay", Body: `{"id":286541,"pipeline_id":"` + releaseID + `","status":4}`},
		pipelinestest.Exchange{Golden: "approval-agree-relay", Body: `{}`},
		pipelinestest.Exchange{Golden: "approval-refuse-relay", Body: `{"id":"286541","pipeline_id":"` + releaseID + `","status":3}`},
	)
	relay := map[string]any{"pipeline_id": releaseID, "approval_task": "deploy-prod"}
	req := pipelines.Request{GateID: "g_abc", Target: relay, Approvers: []string{"alice", "bob"}}
	run, err := c.Trigger(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(pipelines.Run{ID: "286541", Status: pipelines.StatusRunning, Detail: "releasing (4)", Ref: ref("286541")}, run); diff != "" {
		t.Errorf("run (-want +got):\n%s", diff)
	}
	// An answer without an execution id: the release task stands for it.
	run, err = c.Trigger(t.Context(), req)
	want := pipelines.Run{ID: releaseID, Status: pipelines.StatusRunning, Detail: "approved; release task continues",
		Ref: map[string]string{"pipeline_id": releaseID}}
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, run); diff != "" {
		t.Errorf("run without id (-want +got):\n%s", diff)
	}
	if err := c.Reject(t.Context(), pipelines.Request{GateID: "g_def", Target: relay, Approvers: []string{"carol"}}, "not today"); err != nil {
		t.Fatal(err)
	}
	// A pipeline that starts release tasks has nothing waiting: no call.
	if err := c.Reject(t.Context(), pipelines.Request{GateID: "g_x", Target: map[string]any{"pipeline_id": releaseID}}, "no"); err != nil {
		t.Fatal(err)
	}
	pipelinestest.AssertNoSecret(t, token, logs.String())
}

func TestIAMToken(t *testing.T) {
	t.Parallel()
	const password, iamTok = "iam-Pa55word-5ecr3t", "MIIfirst-iam-token-value-5ecr3t"
	iam := pipelinestest.NewServer(t, pipelinestest.Exchange{Golden: "iam-token", Status: 201,
		Header: http.Header{"X-Subject-Token": {iamTok}}, Body: `{"token":{"expires_at":"2026-03-02T12:00:00.000000Z"}}`})
	c, logs, _ := newClient(t, servicestage.Config{IAM: &huaweiiam.Config{URL: iam.URL, Domain: "acme", User: "gatebot", Password: password, Region: "cn-north-4"}},
		pipelinestest.Exchange{Golden: "start-iam", Body: `{"id":286541,"pipeline_id":"` + releaseID + `","status":4}`},
		pipelinestest.Exchange{Golden: "list-iam", Body: `[{"id":"` + releaseID + `","status":2}]`},
	)
	run, err := c.Trigger(t.Context(), pipelines.Request{GateID: "g_1", Target: map[string]any{"pipeline_id": releaseID}})
	if err != nil {
		t.Fatal(err)
	}
	// Without an execution id the release task list is read, with the
	// cached token.
	run.Ref = map[string]string{"pipeline_id": releaseID}
	if got, err := c.Status(t.Context(), run); err != nil || got.Status != pipelines.StatusSucceeded {
		t.Errorf("Status = %+v, %v", got, err)
	}
	for _, s := range []string{password, iamTok} {
		pipelinestest.AssertNoSecret(t, s, logs.String())
	}
}
