package codearts_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/apiclient"
	"github.com/gatebot/gatebot/pipelines/codearts"
	"github.com/gatebot/gatebot/pipelines/pipelinestest"
	"github.com/google/go-cmp/cmp"
)

const (
	token     = "MIIstatic-x-auth-token-5ecr3t"
	project   = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
	releaseID = "caf409b1-10df-483a-b14d-7b05f7e12c88"
	v5ID      = "794514e0a3184e5db0a4740112deee0f"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newClient(t *testing.T, api string, ex ...pipelinestest.Exchange) (*codearts.Client, *pipelinestest.SyncBuffer) {
	t.Helper()
	srv := pipelinestest.NewServer(t, ex...)
	logger, logs := pipelinestest.Logger()
	c, err := codearts.New(codearts.Config{BaseURL: srv.URL, Token: token, ProjectID: project, API: api},
		codearts.WithLogger(logger), codearts.WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	return c, logs
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

var selected = []any{
	map[string]any{"stage_name": "899tih", "tasks": []any{"ujgdh4"}},
	map[string]any{"stage_name": "uipfzw", "tasks": []any{"ax8hus"}},
}

func TestTriggerV3(t *testing.T) {
	withTasks := pipelines.Request{GateID: "g_abc", Pipeline: "release-api", Target: map[string]any{"pipeline_id": releaseID, "selected_tasks": selected}}
	allTasks := pipelines.Request{GateID: "g_abc", Target: map[string]any{"pipeline_id": releaseID}}
	ref := map[string]string{"pipeline_id": releaseID, "api": "v3-action"}
	tests := []struct {
		name    string
		req     pipelines.Request
		ex      pipelinestest.Exchange
		timeout time.Duration
		want    pipelines.Run
		check   func(*testing.T, error)
	}{
		{name: "start selected tasks, numeric id", req: withTasks,
			ex:   pipelinestest.Exchange{Golden: "v3-start-selected", Body: `{ "id": 286541, "pipeline_id": "` + releaseID + `", "status": 4 }`},
			want: pipelines.Run{ID: "286541", Status: pipelines.StatusRunning, Detail: "releasing (4)", Ref: ref}},
		{name: "start all tasks, string id", req: allTasks,
			ex:   pipelinestest.Exchange{Golden: "v3-start-all", Body: `{"id":"286542","pipeline_id":"` + releaseID + `","status":1}`},
			want: pipelines.Run{ID: "286542", Status: pipelines.StatusQueued, Detail: "initialized (1)", Ref: ref}},
		{name: "no id", req: allTasks,
			ex: pipelinestest.Exchange{Golden: "v3-start-all", Body: `{"pipeline_id":"` + releaseID + `","status":4}`},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, apiclient.ErrMalformedResponse) {
					t.Errorf("err = %v", err)
				}
			}},
		{name: "malformed", req: allTasks,
			ex: pipelinestest.Exchange{Golden: "v3-start-all", Body: `{"id":[1]}`},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, apiclient.ErrMalformedResponse) {
					t.Errorf("err = %v", err)
				}
			}},
		{name: "400", req: allTasks,
			ex:    pipelinestest.Exchange{Golden: "v3-start-all", Status: 400, Body: `{"error_code":"SVCSTG.00100400","error_msg":"Release task is already running"}`},
			check: wantAPIErr(apiErr{Status: 400, Code: "SVCSTG.00100400", Msg: "Release task is already running"})},
		{name: "404", req: allTasks,
			ex:    pipelinestest.Exchange{Golden: "v3-start-all", Status: 404, Body: `{"error_code":"SVCSTG.00100404","error_msg":"not found"}`},
			check: wantAPIErr(apiErr{Status: 404, Code: "SVCSTG.00100404", Msg: "not found"})},
		{name: "500", req: allTasks,
			ex:    pipelinestest.Exchange{Golden: "v3-start-all", Status: 500, Body: `{"error_code":"SVCSTG.00100500","error_msg":"internal"}`},
			check: wantAPIErr(apiErr{Status: 500, Code: "SVCSTG.00100500", Msg: "internal", Temporary: true})},
		{name: "429", req: allTasks,
			ex:    pipelinestest.Exchange{Golden: "v3-start-all", Status: 429, Header: http.Header{"Retry-After": {"15"}}, Body: `{"error_code":"APIGW.0308","error_msg":"The throttling threshold has been reached"}`},
			check: wantAPIErr(apiErr{Status: 429, Code: "APIGW.0308", Msg: "The throttling threshold has been reached", RetryAfter: 15 * time.Second, Temporary: true})},
		{name: "timeout", req: allTasks, timeout: 100 * time.Millisecond,
			ex: pipelinestest.Exchange{Golden: "v3-start-all", Hang: true},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, context.DeadlineExceeded) || !pipelines.IsTemporary(err) {
					t.Errorf("err = %v", err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, logs := newClient(t, "", tt.ex)
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

func TestTriggerV3RefusesInputs(t *testing.T) {
	c, _ := newClient(t, "")
	_, err := c.Trigger(t.Context(), pipelines.Request{GateID: "g", Target: map[string]any{"pipeline_id": releaseID}, Inputs: map[string]any{"v": "1"}})
	if err == nil || !strings.Contains(err.Error(), "takes no variables") {
		t.Errorf("err = %v", err)
	}
}

func TestMapV3Status(t *testing.T) {
	tests := []struct {
		code   string
		want   pipelines.Status
		detail string
	}{
		{"1", pipelines.StatusQueued, "initialized (1)"},
		{"2", pipelines.StatusSucceeded, "release successful (2)"},
		{"3", pipelines.StatusFailed, "release failed (3)"},
		{"4", pipelines.StatusRunning, "releasing (4)"},
		{"5", pipelines.StatusRunning, "to be approved (5)"},
		{"7", pipelines.StatusRunning, "paused (7)"},
		{"9", pipelines.StatusCancelled, "skipped (9)"},
		{"10", pipelines.StatusRunning, "rolling back (10)"},
		{"11", pipelines.StatusRunning, "status 11"},
		{"", pipelines.StatusRunning, "status "},
	}
	for _, tt := range tests {
		st, d := codearts.MapV3Status(tt.code)
		if st != tt.want || d != tt.detail {
			t.Errorf("MapV3Status(%q) = %s %q, want %s %q", tt.code, st, d, tt.want, tt.detail)
		}
	}
}

func TestStatusV3(t *testing.T) {
	list := func(status string) string {
		return `{"pipelines":[{"id":"other","name":"x","status":2},{"id":"` + releaseID + `","name":"release-api","description":"","create_time":1,"update_time":2,"model_version":2,"config_mode":"ui","status":` + status + `}]}`
	}
	run := pipelines.Run{ID: "286541", Ref: map[string]string{"pipeline_id": releaseID, "api": "v3-action"}}
	c, _ := newClient(t, "",
		pipelinestest.Exchange{Golden: "v3-list", Body: list("5")},
		pipelinestest.Exchange{Golden: "v3-list", Body: list("2")},
		pipelinestest.Exchange{Golden: "v3-list", Body: `{"pipelines":[]}`},
	)
	got, err := c.Status(t.Context(), run)
	if err != nil || got.Status != pipelines.StatusRunning || got.Detail != "to be approved (5)" || got.ID != "286541" {
		t.Errorf("got %+v %v", got, err)
	}
	if got, err := c.Status(t.Context(), run); err != nil || got.Status != pipelines.StatusSucceeded {
		t.Errorf("got %+v %v", got, err)
	}
	_, err = c.Status(t.Context(), run)
	wantAPIErr(apiErr{Status: 200, Msg: "release task " + releaseID + " is not in the project's release task list"})(t, err)
	if _, err := c.Status(t.Context(), pipelines.Run{ID: "1", Ref: map[string]string{"pipeline_id": "x", "api": "v5"}}); err == nil {
		t.Error("run of the other API accepted")
	}
}

func TestActionsV3(t *testing.T) {
	c, _ := newClient(t, "",
		pipelinestest.Exchange{Golden: "v3-stop", Body: `{"id":"286541","pipeline_id":"` + releaseID + `","status":7}`},
		pipelinestest.Exchange{Golden: "v3-continue", Body: `{"id":"286541","pipeline_id":"` + releaseID + `","status":4}`},
		pipelinestest.Exchange{Golden: "v3-approval-agree", Body: `{"id":"286541","pipeline_id":"` + releaseID + `","status":4}`},
		pipelinestest.Exchange{Golden: "v3-approval-refuse", Status: 400, Body: `{"error_code":"SVCSTG.00100400","error_msg":"task is not waiting for approval"}`},
	)
	if err := c.Cancel(t.Context(), pipelines.Run{ID: "286541", Ref: map[string]string{"pipeline_id": releaseID}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Continue(t.Context(), releaseID); err != nil {
		t.Fatal(err)
	}
	if err := c.Approve(t.Context(), releaseID, "deploy-prod", true, "Approved in Teams by alice, bob"); err != nil {
		t.Fatal(err)
	}
	err := c.Approve(t.Context(), releaseID, "deploy-prod", false, "Rejected in Teams by carol: not today")
	wantAPIErr(apiErr{Status: 400, Code: "SVCSTG.00100400", Msg: "task is not waiting for approval"})(t, err)
	if err := c.Approve(t.Context(), releaseID, "", true, ""); err == nil {
		t.Error("approval without task name accepted")
	}
}

func TestV5(t *testing.T) {
	req := pipelines.Request{
		GateID: "g_abcdefghij0123456789", Pipeline: "deploy-api", Requester: "carol", Approvers: []string{"alice", "bob"},
		Target: map[string]any{"pipeline_id": v5ID, "choose_stages": []any{"build"}, "choose_jobs": []any{"job1", "job2"},
			"sources": []any{map[string]any{"type": "code", "params": map[string]any{"git_type": "codehub", "git_url": "https://example.com/api.git", "codehub_id": "123", "default_branch": "main",
				"build_params": map[string]any{"build_type": "branch", "target_branch": "main", "event_type": "Manual"}}}}},
		Inputs: map[string]any{"VERSION": "1.4.2", "DRY_RUN": false},
	}
	c, logs := newClient(t, "v5",
		pipelinestest.Exchange{Golden: "v5-run", Body: `{"pipeline_run_id":"9c02f9a00d8d469c83ebcd1aeec0077e"}`},
		pipelinestest.Exchange{Golden: "v5-detail", Body: `{"id":"9c02f9a00d8d469c83ebcd1aeec0077e","status":"SUSPEND","run_number":12,"detail_url":"https://devcloud.example.com/cicd/project/x/pipeline/detail/` + v5ID + `/9c02f9a00d8d469c83ebcd1aeec0077e"}`},
		pipelinestest.Exchange{Golden: "v5-stop", Body: `{"success":true}`},
		pipelinestest.Exchange{Golden: "v5-stop", Body: `{"success":false}`},
		pipelinestest.Exchange{Golden: "v5-run-min", Body: `{}`},
	)
	run, err := c.Trigger(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := pipelines.Run{ID: "9c02f9a00d8d469c83ebcd1aeec0077e", Status: pipelines.StatusQueued, Ref: map[string]string{"pipeline_id": v5ID, "api": "v5"}}
	if diff := cmp.Diff(want, run); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	got, err := c.Status(t.Context(), run)
	if err != nil || got.Status != pipelines.StatusRunning || got.Detail != "SUSPEND" || !strings.HasPrefix(got.URL, "https://devcloud.example.com/") {
		t.Errorf("status: %+v %v", got, err)
	}
	if err := c.Cancel(t.Context(), run); err != nil {
		t.Fatal(err)
	}
	wantAPIErr(apiErr{Status: 200, Msg: "CodeArts did not stop the run"})(t, c.Cancel(t.Context(), run))
	_, err = c.Trigger(t.Context(), pipelines.Request{GateID: "g_1", Target: map[string]any{"pipeline_id": v5ID}})
	if !errors.Is(err, apiclient.ErrMalformedResponse) {
		t.Errorf("run without id: %v", err)
	}
	if err := c.Approve(t.Context(), v5ID, "t", true, ""); !errors.Is(err, pipelines.ErrNotSupported) {
		t.Errorf("Approve in v5: %v", err)
	}
	if err := c.Continue(t.Context(), v5ID); !errors.Is(err, pipelines.ErrNotSupported) {
		t.Errorf("Continue in v5: %v", err)
	}
	pipelinestest.AssertNoSecret(t, token, logs.String())
}

func TestMapV5Status(t *testing.T) {
	for in, want := range map[string]pipelines.Status{
		"INIT": pipelines.StatusQueued, "QUEUED": pipelines.StatusQueued,
		"RUNNING": pipelines.StatusRunning, "PAUSED": pipelines.StatusRunning, "SUSPEND": pipelines.StatusRunning, "ASYNC_RUNNING": pipelines.StatusRunning,
		"COMPLETED": pipelines.StatusSucceeded, "FAILED": pipelines.StatusFailed, "ASYNC_FAILED": pipelines.StatusFailed,
		"CANCELED": pipelines.StatusCancelled, "IGNORED": pipelines.StatusRunning, "SOMETHING": pipelines.StatusRunning,
	} {
		if got := codearts.MapV5Status(in); got != want {
			t.Errorf("MapV5Status(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestCheckPipeline(t *testing.T) {
	str := &pipelines.Input{Type: pipelines.TypeString}
	v3, _ := newClient(t, "v3-action")
	v5, _ := newClient(t, "v5")
	tests := []struct {
		name string
		c    *codearts.Client
		def  pipelines.Definition
		want []string
	}{
		{"v3 ok", v3, pipelines.Definition{Target: map[string]any{"pipeline_id": releaseID, "selected_tasks": selected}}, nil},
		{"v3 inputs and v5 keys", v3, pipelines.Definition{Target: map[string]any{"pipeline_id": releaseID, "choose_stages": []any{"a"}}, Inputs: map[string]*pipelines.Input{"version": str}},
			[]string{"target.choose_stages is not a known key", "inputs.version: the CodeArts v3 action API takes no variables"}},
		{"v3 bad selected_tasks", v3, pipelines.Definition{Target: map[string]any{"pipeline_id": releaseID, "selected_tasks": []any{map[string]any{"stage": "x"}, map[string]any{"stage_name": "s"}}}},
			[]string{`target.selected_tasks: json: unknown field "stage"`}},
		{"v3 selected_tasks without tasks", v3, pipelines.Definition{Target: map[string]any{"pipeline_id": releaseID, "selected_tasks": []any{map[string]any{"stage_name": "s"}}}},
			[]string{"target.selected_tasks[0]: stage_name and tasks are required"}},
		{"v5 ok with inputs", v5, pipelines.Definition{Target: map[string]any{"pipeline_id": v5ID, "choose_jobs": []any{"j"}, "sources": []any{map[string]any{"type": "code"}}}, Inputs: map[string]*pipelines.Input{"version": str}}, nil},
		{"v5 bad", v5, pipelines.Definition{Target: map[string]any{"selected_tasks": selected, "sources": "x"}},
			[]string{"target.selected_tasks is not a known key", "target.pipeline_id is required", "target.sources:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := tt.c.CheckPipeline(tt.def)
			if len(errs) != len(tt.want) {
				t.Fatalf("errs = %v", errs)
			}
			for i, w := range tt.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("errs[%d] = %v, want %q", i, errs[i], w)
				}
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	iam := &codearts.IAMConfig{Domain: "acme", User: "bot", Password: "pw", Region: "cn-north-4"}
	tests := []struct {
		cfg  codearts.Config
		want []string
	}{
		{codearts.Config{BaseURL: "https://cloudpipeline-ext.cn-north-4.myhuaweicloud.com", Token: "t", ProjectID: project}, nil},
		{codearts.Config{BaseURL: "https://x", IAM: iam, ProjectID: project, API: "v5"}, nil},
		{codearts.Config{}, []string{"base_url is required", "project_id is required", "token or iam is required"}},
		{codearts.Config{BaseURL: "https://x", Token: "t", IAM: iam, ProjectID: project, API: "v4"}, []string{`api "v4" must be v3-action or v5`, "token and iam are exclusive"}},
		{codearts.Config{BaseURL: "https://x", ProjectID: project, IAM: &codearts.IAMConfig{}}, []string{"iam.domain is required", "iam.user is required", "iam.password is required", "iam.url or iam.region is required", "iam.project or iam.region is required"}},
	}
	for _, tt := range tests {
		errs := tt.cfg.Validate()
		if len(errs) != len(tt.want) {
			t.Errorf("%+v: errs = %v", tt.cfg, errs)
			continue
		}
		for i, w := range tt.want {
			if !strings.Contains(errs[i].Error(), w) {
				t.Errorf("errs[%d] = %v, want %q", i, errs[i], w)
			}
		}
	}
}

func TestDescription(t *testing.T) {
	got := codearts.Description(pipelines.Request{GateID: "g_1", Pipeline: "deploy", Requester: "carol", Approvers: []string{"alice", "bob"}, Message: strings.Repeat("x", 2000)})
	if !strings.HasPrefix(got, "gatebot g_1: deploy, requested by carol, approved in Teams by alice, bob: xxx") || len(got) > 1024 {
		t.Errorf("Description = %q… (%d)", got[:80], len(got))
	}
}

func TestRelayApproval(t *testing.T) {
	c, logs := newClient(t, "",
		pipelinestest.Exchange{Golden: "v3-relay-agree", Body: `{"id":286541,"pipeline_id":"` + releaseID + `","status":4}`},
		pipelinestest.Exchange{Golden: "v3-relay-refuse", Body: `{"id":"286542","pipeline_id":"` + releaseID + `","status":3}`},
	)
	relay := map[string]any{"pipeline_id": releaseID, "approval_task": "deploy-prod"}
	run, err := c.Trigger(t.Context(), pipelines.Request{GateID: "g_abc", Target: relay, Approvers: []string{"alice", "bob"}})
	if err != nil {
		t.Fatal(err)
	}
	want := pipelines.Run{ID: "286541", Status: pipelines.StatusRunning, Detail: "releasing (4)",
		Ref: map[string]string{"pipeline_id": releaseID, "api": codearts.APIV3Action}}
	if diff := cmp.Diff(want, run); diff != "" {
		t.Errorf("run (-want +got):\n%s", diff)
	}
	if err := c.Reject(t.Context(), pipelines.Request{GateID: "g_def", Target: relay, Approvers: []string{"carol"}}, "not today"); err != nil {
		t.Fatal(err)
	}
	// A pipeline that starts release tasks has nothing waiting: no call.
	if err := c.Reject(t.Context(), pipelines.Request{GateID: "g_x", Target: map[string]any{"pipeline_id": releaseID}}, "no"); err != nil {
		t.Fatal(err)
	}
	pipelinestest.AssertNoSecret(t, logs.String(), token)
}

func TestRelayApprovalCheck(t *testing.T) {
	c, _ := newClient(t, "")
	errs := c.CheckPipeline(pipelines.Definition{Name: "p", Target: map[string]any{
		"pipeline_id": releaseID, "approval_task": "deploy-prod", "selected_tasks": selected}})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "approval_task and target.selected_tasks do not go together") {
		t.Fatalf("errs = %v", errs)
	}
	if errs := c.CheckPipeline(pipelines.Definition{Name: "p", Target: map[string]any{"pipeline_id": releaseID, "approval_task": "deploy-prod"}}); len(errs) != 0 {
		t.Fatalf("a relay pipeline is valid, got %v", errs)
	}
}
