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
	token   = "MIIstatic-x-auth-token-5ecr3t"
	project = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
	v5ID    = "794514e0a3184e5db0a4740112deee0f"
	runID   = "9c02f9a00d8d469c83ebcd1aeec0077e"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newClient(t *testing.T, ex ...pipelinestest.Exchange) (*codearts.Client, *pipelinestest.SyncBuffer, *clock) {
	t.Helper()
	srv := pipelinestest.NewServer(t, ex...)
	logger, logs := pipelinestest.Logger()
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	c, err := codearts.New(codearts.Config{BaseURL: srv.URL, Token: token, ProjectID: project},
		codearts.WithLogger(logger), codearts.WithHTTPClient(srv.Client()), codearts.WithNow(clk.now))
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

var fullReq = pipelines.Request{
	GateID: "g_abcdefghij0123456789", Pipeline: "deploy-api", Requester: "carol", Approvers: []string{"alice", "bob"},
	Target: map[string]any{"pipeline_id": v5ID, "choose_stages": []any{"build"}, "choose_jobs": []any{"job1", "job2"},
		"sources": []any{map[string]any{"type": "code", "params": map[string]any{"git_type": "codehub", "git_url": "https://example.com/api.git", "codehub_id": "123", "default_branch": "main",
			"build_params": map[string]any{"build_type": "branch", "target_branch": "main", "event_type": "Manual"}}}}},
	Inputs: map[string]any{"VERSION": "1.4.2", "DRY_RUN": false},
}

var ref = map[string]string{"pipeline_id": v5ID, "api": "v5"}

func TestTrigger(t *testing.T) {
	t.Parallel()
	minReq := pipelines.Request{GateID: "g_1", Target: map[string]any{"pipeline_id": v5ID}}
	malformed := func(t *testing.T, err error) {
		if !errors.Is(err, apiclient.ErrMalformedResponse) {
			t.Errorf("err = %v", err)
		}
	}
	tests := []struct {
		name    string
		req     pipelines.Request
		ex      pipelinestest.Exchange
		timeout time.Duration
		want    pipelines.Run
		check   func(*testing.T, error)
	}{
		{name: "full", req: fullReq, ex: pipelinestest.Exchange{Golden: "v5-run", Body: `{"pipeline_run_id":"` + runID + `"}`},
			want: pipelines.Run{ID: runID, Status: pipelines.StatusQueued, Ref: ref}},
		{name: "no run id", req: minReq, ex: pipelinestest.Exchange{Golden: "v5-run-min", Body: `{}`}, check: malformed},
		{name: "not JSON", req: minReq, ex: pipelinestest.Exchange{Golden: "v5-run-min", Body: `<html>`}, check: malformed},
		{name: "400", req: minReq,
			ex:    pipelinestest.Exchange{Golden: "v5-run-min", Status: 400, Body: `{"error_code":"DEVPIPE.00011104","error_msg":"pipeline not found"}`},
			check: wantAPIErr(apiErr{Status: 400, Code: "DEVPIPE.00011104", Msg: "pipeline not found"})},
		{name: "429", req: minReq,
			ex:    pipelinestest.Exchange{Golden: "v5-run-min", Status: 429, Header: http.Header{"Retry-After": {"15"}}, Body: `{"error_code":"APIGW.0308","error_msg":"The throttling threshold has been reached"}`},
			check: wantAPIErr(apiErr{Status: 429, Code: "APIGW.0308", Msg: "The throttling threshold has been reached", RetryAfter: 15 * time.Second, Temporary: true})},
		{name: "500", req: minReq,
			ex:    pipelinestest.Exchange{Golden: "v5-run-min", Status: 500, Body: `{"error_code":"DEVPIPE.00011500","error_msg":"internal"}`},
			check: wantAPIErr(apiErr{Status: 500, Code: "DEVPIPE.00011500", Msg: "internal", Temporary: true})},
		{name: "timeout", req: minReq, timeout: 100 * time.Millisecond, ex: pipelinestest.Exchange{Golden: "v5-run-min", Hang: true},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, context.DeadlineExceeded) || !pipelines.IsTemporary(err) {
					t.Errorf("err = %v", err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, logs, _ := newClient(t, tt.ex)
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

func detail(status string) string {
	return `{"id":"` + runID + `","pipeline_id":"` + v5ID + `","status":"` + status + `","run_number":12,"detail_url":"https://devcloud.cn-north-4.huaweicloud.com/cicd/project/` + project + `/pipeline/detail/` + v5ID + `/` + runID + `"}`
}

func TestStatusAndCancel(t *testing.T) {
	t.Parallel()
	c, logs, _ := newClient(t,
		pipelinestest.Exchange{Golden: "v5-detail", Body: detail("SUSPEND")},
		pipelinestest.Exchange{Golden: "v5-detail", Body: detail("IGNORED")},
		pipelinestest.Exchange{Golden: "v5-detail", Body: `{"id":"` + runID + `","detail_url":"javascript:alert(1)"}`},
		pipelinestest.Exchange{Golden: "v5-detail", Body: `{"id":"other","status":"RUNNING"}`},
		pipelinestest.Exchange{Golden: "v5-detail", Status: 404, Body: `{"error_code":"DEVPIPE.00011104","error_msg":"pipeline run not found"}`},
		pipelinestest.Exchange{Golden: "v5-stop", Body: `{"success":true}`},
		pipelinestest.Exchange{Golden: "v5-stop", Body: `{"success":false}`},
	)
	run := pipelines.Run{ID: runID, Status: pipelines.StatusQueued, Ref: ref}
	got, err := c.Status(t.Context(), run)
	want := pipelines.Run{ID: runID, Status: pipelines.StatusRunning, Detail: "SUSPEND", Ref: ref,
		URL: "https://devcloud.cn-north-4.huaweicloud.com/cicd/project/" + project + "/pipeline/detail/" + v5ID + "/" + runID}
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got, err := c.Status(t.Context(), run); err != nil || got.Status != pipelines.StatusCancelled || !got.Status.Terminal() {
		t.Errorf("IGNORED: %+v %v", got, err)
	}
	if _, err := c.Status(t.Context(), run); !errors.Is(err, apiclient.ErrMalformedResponse) {
		t.Errorf("no status: %v", err)
	}
	if _, err := c.Status(t.Context(), run); !errors.Is(err, apiclient.ErrMalformedResponse) {
		t.Errorf("another run's answer: %v", err)
	}
	_, err = c.Status(t.Context(), run)
	if !errors.Is(err, pipelines.ErrRunLost) {
		t.Errorf("404: %v, want ErrRunLost", err)
	}
	wantAPIErr(apiErr{Status: 404, Code: "DEVPIPE.00011104", Msg: "pipeline run not found"})(t, err)
	if err := c.Cancel(t.Context(), run); err != nil {
		t.Fatal(err)
	}
	wantAPIErr(apiErr{Status: 200, Msg: "CodeArts did not stop the run"})(t, c.Cancel(t.Context(), run))
	pipelinestest.AssertNoSecret(t, token, logs.String())
}

// TestUnknownStatusEnds shows that an undocumented status is followed as
// running, but for at most an hour: never a gate polled forever.
func TestUnknownStatusEnds(t *testing.T) {
	t.Parallel()
	c, logs, clk := newClient(t,
		pipelinestest.Exchange{Golden: "v5-detail", Body: detail("WARPED")},
		pipelinestest.Exchange{Golden: "v5-detail", Body: detail("WARPED")},
		pipelinestest.Exchange{Golden: "v5-detail", Body: detail("WARPED")},
		pipelinestest.Exchange{Golden: "v5-detail", Body: detail("RUNNING")},
	)
	run := pipelines.Run{ID: runID, Ref: ref}
	first, err := c.Status(t.Context(), run)
	if err != nil || first.Status != pipelines.StatusRunning || first.Ref["unknown_status_since"] != "2026-03-01T12:00:00Z" || !strings.Contains(first.Detail, "does not document") {
		t.Fatalf("first: %+v %v", first, err)
	}
	if run.Ref["unknown_status_since"] != "" {
		t.Error("Status modified the caller's Ref map")
	}
	clk.add(59 * time.Minute)
	if got, err := c.Status(t.Context(), first); err != nil || got.Status != pipelines.StatusRunning {
		t.Fatalf("after 59m: %+v %v", got, err)
	}
	clk.add(time.Minute)
	got, err := c.Status(t.Context(), first)
	if err != nil || got.Status != pipelines.StatusFailed || !strings.Contains(got.Detail, "undocumented status WARPED") {
		t.Fatalf("after 1h: %+v %v", got, err)
	}
	// A documented status clears the mark.
	if got, err := c.Status(t.Context(), first); err != nil || got.Status != pipelines.StatusRunning || got.Ref["unknown_status_since"] != "" {
		t.Fatalf("known again: %+v %v", got, err)
	}
	if !strings.Contains(logs.String(), "undocumented pipeline run status") {
		t.Error("undocumented status not logged")
	}
}

func TestMapV5Status(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in    string
		want  pipelines.Status
		known bool
	}{
		{"INIT", pipelines.StatusQueued, true},
		{"QUEUED", pipelines.StatusQueued, true},
		{"REDISPATCH", pipelines.StatusQueued, true},
		{"RUNNING", pipelines.StatusRunning, true},
		{"ASYNC_RUNNING", pipelines.StatusRunning, true},
		{"PAUSED", pipelines.StatusRunning, true},
		{"SUSPEND", pipelines.StatusRunning, true},
		{"COMPLETED", pipelines.StatusSucceeded, true},
		{"FAILED", pipelines.StatusFailed, true},
		{"ASYNC_FAILED", pipelines.StatusFailed, true},
		{"CANCELED", pipelines.StatusCancelled, true},
		{"IGNORED", pipelines.StatusCancelled, true},
		{"SKIPPED", pipelines.StatusCancelled, true},
		{"UNSELECTED", pipelines.StatusCancelled, true},
		{"completed", pipelines.StatusSucceeded, true},
		{"SUCCESS", pipelines.StatusRunning, false},
		{"", pipelines.StatusRunning, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			st, known := codearts.MapV5Status(tt.in)
			if st != tt.want || known != tt.known {
				t.Errorf("MapV5Status(%q) = %s, %v; want %s, %v", tt.in, st, known, tt.want, tt.known)
			}
		})
	}
}

func TestOldReleaseTaskRunsEnd(t *testing.T) {
	t.Parallel()
	c, _, _ := newClient(t)
	old := pipelines.Run{ID: "286541", Ref: map[string]string{"pipeline_id": "caf409b1-10df-483a-b14d-7b05f7e12c88", "api": "v3-action"}}
	if _, err := c.Status(t.Context(), old); !errors.Is(err, pipelines.ErrRunLost) || !strings.Contains(err.Error(), "ServiceStage") {
		t.Errorf("Status: %v", err)
	}
	if err := c.Cancel(t.Context(), old); !errors.Is(err, pipelines.ErrRunLost) {
		t.Errorf("Cancel: %v", err)
	}
}

func TestCheckPipeline(t *testing.T) {
	t.Parallel()
	c, _, _ := newClient(t)
	str := &pipelines.Input{Type: pipelines.TypeString}
	tests := []struct {
		name string
		def  pipelines.Definition
		want []string
	}{
		{"ok with inputs", pipelines.Definition{Target: map[string]any{"pipeline_id": v5ID, "choose_jobs": []any{"j"}, "sources": []any{map[string]any{"type": "code"}}}, Inputs: map[string]*pipelines.Input{"version": str}}, nil},
		{"release task keys", pipelines.Definition{Target: map[string]any{"pipeline_id": v5ID, "approval_task": "deploy-prod", "selected_tasks": []any{}}},
			[]string{"target.approval_task is not a known key", "target.selected_tasks is not a known key"}},
		{"bad", pipelines.Definition{Target: map[string]any{"sources": "x", "choose_stages": "x"}},
			[]string{"target.pipeline_id is required", "target.choose_stages must be a list", "target.sources:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			errs := c.CheckPipeline(tt.def)
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
	if errs := c.CheckPipeline(tests[1].def); !strings.Contains(errs[0].Error(), "type: servicestage") {
		t.Errorf("no hint: %v", errs[0])
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	iam := &codearts.IAMConfig{Domain: "acme", User: "bot", Password: "pw", Region: "cn-north-4"}
	tests := []struct {
		name string
		cfg  codearts.Config
		want []string
	}{
		{"token", codearts.Config{BaseURL: "https://cloudpipeline-ext.cn-north-4.myhuaweicloud.com", Token: "t", ProjectID: project}, nil},
		{"iam, api v5", codearts.Config{BaseURL: "https://x", IAM: iam, ProjectID: project, API: "v5"}, nil},
		{"empty", codearts.Config{}, []string{"base_url is required", "project_id is required", "token or iam is required"}},
		{"v3-action", codearts.Config{BaseURL: "https://x", Token: "t", ProjectID: project, API: "v3-action"}, []string{"type: servicestage"}},
		{"other api, both credentials", codearts.Config{BaseURL: "https://x", Token: "t", IAM: iam, ProjectID: project, API: "v4"}, []string{`api "v4" is not supported`, "token and iam are exclusive"}},
		{"empty iam", codearts.Config{BaseURL: "https://x", ProjectID: project, IAM: &codearts.IAMConfig{}}, []string{"iam.domain is required", "iam.user is required", "iam.password is required", "iam.url or iam.region is required", "iam.project or iam.region is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			errs := tt.cfg.Validate()
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
	if _, err := codearts.New(codearts.Config{API: "v3-action"}); !errors.Is(err, codearts.ErrReleaseTaskAPI) {
		t.Errorf("New: %v", err)
	}
}

func TestDescription(t *testing.T) {
	t.Parallel()
	got := codearts.Description(pipelines.Request{GateID: "g_1", Pipeline: "deploy", Requester: "carol", Approvers: []string{"alice", "bob"}, Message: strings.Repeat("x", 2000)})
	if !strings.HasPrefix(got, "gatebot g_1: deploy, requested by carol, approved in Teams by alice, bob: xxx") || len(got) > 1024 {
		t.Errorf("Description = %q… (%d)", got[:80], len(got))
	}
}
