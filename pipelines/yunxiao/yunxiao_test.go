package yunxiao_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/apiclient"
	"github.com/gatebot/gatebot/pipelines/pipelinestest"
	"github.com/gatebot/gatebot/pipelines/yunxiao"
	"github.com/google/go-cmp/cmp"
)

const token = "pt-0fh3yx5ecr3tvalue0484"

func newClient(t *testing.T, edition string, ex ...pipelinestest.Exchange) (*yunxiao.Client, *pipelinestest.SyncBuffer) {
	t.Helper()
	srv := pipelinestest.NewServer(t, ex...)
	logger, logs := pipelinestest.Logger()
	cfg := yunxiao.Config{BaseURL: srv.URL, Token: token, Edition: edition}
	if edition != yunxiao.EditionRegion {
		cfg.OrganizationID = "5ebbc0228123212b59xxxxx"
	}
	c, err := yunxiao.New(cfg, yunxiao.WithLogger(logger), yunxiao.WithHTTPClient(srv.Client()))
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

var fullTarget = map[string]any{
	"pipeline_id":              "123",
	"env_names":                map[string]any{"version": "APP_VERSION"},
	"branchModeBranchs":        []any{"branch1", "branch2"},
	"runningBranchs":           map[string]any{"https://codeup.aliyun.com/60c1abb32c5969c370c5fcd0/Codeup-Demo.git": "master1"},
	"runningTags":              map[string]any{"https://codeup.aliyun.com/60c1abb32c5969c370c5fcd0/Codeup-Demo.git": "1.0"},
	"runningPipelineArtifacts": map[string]any{"3184679": "12"},
	"runningAcrArtifacts":      map[string]any{"yunxiao-registry.cn-beijing.cr.aliyuncs.com/build-steps/tool-registry": "89b20155-2024-05-14-21-52-44"},
	"runningPackagesArtifacts": map[string]any{"generic/flow_generic_repo/Artifacts_3183732": "2024-06-04-17-58-34"},
	"needCreateBranch":         false,
	"releaseBranch":            "release/1.4",
}

var req = pipelines.Request{
	GateID:    "g_abcdefghij0123456789",
	Pipeline:  "deploy-api",
	Target:    fullTarget,
	Inputs:    map[string]any{"version": "1.4.2", "replicas": float64(3), "canary": true},
	Requester: "carol",
	Approvers: []string{"alice", "bob"},
}

func TestTrigger(t *testing.T) {
	minimal := pipelines.Request{GateID: "g_1", Target: map[string]any{"pipeline_id": 123}}
	tests := []struct {
		name    string
		edition string
		req     pipelines.Request
		ex      pipelinestest.Exchange
		timeout time.Duration
		want    pipelines.Run
		check   func(*testing.T, error)
	}{
		{name: "central, every param", edition: "central", req: req,
			ex:   pipelinestest.Exchange{Golden: "trigger-central", Body: "1234"},
			want: pipelines.Run{ID: "1234", Status: pipelines.StatusQueued, Ref: map[string]string{"pipeline_id": "123"}}},
		{name: "region, minimal (numeric pipeline id)", edition: "region", req: minimal,
			ex:   pipelinestest.Exchange{Golden: "trigger-region", Body: "7\n"},
			want: pipelines.Run{ID: "7", Status: pipelines.StatusQueued, Ref: map[string]string{"pipeline_id": "123"}}},
		{name: "quoted id", edition: "central", req: minimal,
			ex:   pipelinestest.Exchange{Golden: "trigger-central-minimal", Body: `"42"`},
			want: pipelines.Run{ID: "42", Status: pipelines.StatusQueued, Ref: map[string]string{"pipeline_id": "123"}}},
		{name: "not an integer", edition: "central", req: minimal,
			ex: pipelinestest.Exchange{Golden: "trigger-central-minimal", Body: `{"pipelineRunId":1}`},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, apiclient.ErrMalformedResponse) {
					t.Errorf("err = %v", err)
				}
			}},
		{name: "401 expired token", edition: "central", req: minimal,
			ex:    pipelinestest.Exchange{Golden: "trigger-central-minimal", Status: 401, Body: `{"errorCode":"ExpiredTokenError","errorMessage":"token ` + token + ` expired"}`},
			check: wantAPIErr(apiErr{Status: 401, Code: "ExpiredTokenError", Msg: "token [REDACTED] expired"})},
		{name: "403 errorDescription", edition: "central", req: minimal,
			ex:    pipelinestest.Exchange{Golden: "trigger-central-minimal", Status: 403, Body: `{"errorCode":"Forbidden.InvalidUser.UserNotInCurrentOrganization","errorDescription":"user not in organization"}`},
			check: wantAPIErr(apiErr{Status: 403, Code: "Forbidden.InvalidUser.UserNotInCurrentOrganization", Msg: "user not in organization"})},
		{name: "429", edition: "central", req: minimal,
			ex:    pipelinestest.Exchange{Golden: "trigger-central-minimal", Status: 429, Header: http.Header{"Retry-After": {"3"}}, Body: `{"errorCode":"TooManyRequests","errorMessage":"slow down"}`},
			check: wantAPIErr(apiErr{Status: 429, Code: "TooManyRequests", Msg: "slow down", RetryAfter: 3 * time.Second, Temporary: true})},
		{name: "500", edition: "central", req: minimal,
			ex:    pipelinestest.Exchange{Golden: "trigger-central-minimal", Status: 500, Body: `{"errorCode":"InternalServerError","message":"boom"}`},
			check: wantAPIErr(apiErr{Status: 500, Code: "InternalServerError", Msg: "boom", Temporary: true})},
		{name: "timeout", edition: "central", req: minimal, timeout: 100 * time.Millisecond,
			ex: pipelinestest.Exchange{Golden: "trigger-central-minimal", Hang: true},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, context.DeadlineExceeded) || !pipelines.IsTemporary(err) {
					t.Errorf("err = %v", err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, logs := newClient(t, tt.edition, tt.ex)
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

func TestTriggerRefusesReservedVersion(t *testing.T) {
	c, _ := newClient(t, "central") // no request may be sent
	_, err := c.Trigger(t.Context(), pipelines.Request{GateID: "g_1", Target: map[string]any{"pipeline_id": "1"}, Inputs: map[string]any{"version": "1.0"}})
	if err == nil || !strings.Contains(err.Error(), `"version", which Yunxiao reserves`) {
		t.Errorf("err = %v", err)
	}
	_, err = c.Trigger(t.Context(), pipelines.Request{GateID: "g_1", Target: map[string]any{"pipeline_id": "1", "runningTags": "v1"}})
	if err == nil || !strings.Contains(err.Error(), "target.runningTags") {
		t.Errorf("err = %v", err)
	}
}

func TestStatus(t *testing.T) {
	run := pipelines.Run{ID: "1234", Status: pipelines.StatusQueued, Ref: map[string]string{"pipeline_id": "123"}}
	tests := []struct {
		status string
		want   pipelines.Status
	}{
		{"INIT", pipelines.StatusQueued},
		{"QUEUED", pipelines.StatusQueued},
		{"RUNNING", pipelines.StatusRunning},
		{"WAITING", pipelines.StatusRunning},
		{"SUCCESS", pipelines.StatusSucceeded},
		{"FAIL", pipelines.StatusFailed},
		{"FAILED", pipelines.StatusFailed},
		{"CANCELED", pipelines.StatusCancelled},
		{"SOMETHING_NEW", pipelines.StatusRunning},
	}
	for _, tt := range tests {
		t.Run(tt.status, func(t *testing.T) {
			c, _ := newClient(t, "central", pipelinestest.Exchange{Golden: "status-central",
				Body: `{"pipelineRunId":1234,"pipelineId":123,"status":"` + tt.status + `","triggerMode":1,"createTime":1717000000000,"stages":[]}`})
			got, err := c.Status(t.Context(), run)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tt.want || got.Detail != tt.status || got.ID != "1234" {
				t.Errorf("got %+v, want %s", got, tt.want)
			}
		})
	}
	c, _ := newClient(t, "region",
		pipelinestest.Exchange{Golden: "status-region", Body: `{"pipelineRunId":1234,"status":"SUCCESS"}`},
		pipelinestest.Exchange{Golden: "status-region", Body: `{"pipelineRunId":1234}`},
		pipelinestest.Exchange{Golden: "status-region", Status: 404, Body: `{"errorCode":"NotFound","errorMessage":"run not found"}`},
	)
	if got, err := c.Status(t.Context(), run); err != nil || got.Status != pipelines.StatusSucceeded {
		t.Errorf("region: %+v %v", got, err)
	}
	if _, err := c.Status(t.Context(), run); !errors.Is(err, apiclient.ErrMalformedResponse) {
		t.Errorf("no status: %v", err)
	}
	_, err := c.Status(t.Context(), run)
	wantAPIErr(apiErr{Status: 404, Code: "NotFound", Msg: "run not found"})(t, err)
}

func TestCancel(t *testing.T) {
	run := pipelines.Run{ID: "1234", Ref: map[string]string{"pipeline_id": "123"}}
	c, _ := newClient(t, "central",
		pipelinestest.Exchange{Golden: "stop-central", Body: "true"},
		pipelinestest.Exchange{Golden: "stop-central", Body: "false"},
		pipelinestest.Exchange{Golden: "stop-central", Status: 400, Body: `{"errorCode":"BadRequest","errorMessage":"run finished"}`},
	)
	if err := c.Cancel(t.Context(), run); err != nil {
		t.Fatal(err)
	}
	wantAPIErr(apiErr{Status: 200, Msg: "Yunxiao refused to stop the run"})(t, c.Cancel(t.Context(), run))
	wantAPIErr(apiErr{Status: 400, Code: "BadRequest", Msg: "run finished"})(t, c.Cancel(t.Context(), run))
	if err := c.Cancel(t.Context(), pipelines.Run{ID: "1"}); err == nil {
		t.Error("run without pipeline accepted")
	}
}

func TestCheckPipeline(t *testing.T) {
	c, _ := newClient(t, "central")
	str := &pipelines.Input{Type: pipelines.TypeString}
	tests := []struct {
		name string
		def  pipelines.Definition
		want []string
	}{
		{"ok", pipelines.Definition{Name: "p", Target: fullTarget, Inputs: map[string]*pipelines.Input{"version": str}}, nil},
		{"reserved version", pipelines.Definition{Name: "p", Target: map[string]any{"pipeline_id": "1"}, Inputs: map[string]*pipelines.Input{"version": str, "VERSION": str}},
			[]string{`inputs.version: would be sent to Yunxiao as the variable "version", which Yunxiao reserves for itself (the run's own version); rename the input or send it under another name with target.env_names: {version: APP_VERSION}`}},
		{"renamed onto version", pipelines.Definition{Name: "p", Target: map[string]any{"pipeline_id": "1", "env_names": map[string]any{"v": "version"}}, Inputs: map[string]*pipelines.Input{"v": str}},
			[]string{`inputs.v: would be sent to Yunxiao as the variable "version"`}},
		{"bad shapes", pipelines.Definition{Name: "p", Target: map[string]any{"branchModeBranchs": "main", "needCreateBranch": "yes", "env_names": map[string]any{"nope": "X"}, "stage": 1}},
			[]string{"target.stage is not a known key", "target.branchModeBranchs must be a list", "target.needCreateBranch must be true or false", "target.pipeline_id is required", `target.env_names.nope: p has no input "nope"`}},
		{"collision", pipelines.Definition{Name: "p", Target: map[string]any{"pipeline_id": "1", "env_names": map[string]any{"a": "B"}}, Inputs: map[string]*pipelines.Input{"a": str, "B": str}},
			[]string{`inputs.a: sent as "B", like inputs.B`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := c.CheckPipeline(tt.def)
			if len(errs) != len(tt.want) {
				t.Fatalf("errs = %v", errs)
			}
			for i, w := range tt.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("errs[%d] = %v\nwant %q", i, errs[i], w)
				}
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  yunxiao.Config
		want []string
	}{
		{yunxiao.Config{Token: "t", OrganizationID: "o"}, nil},
		{yunxiao.Config{Token: "t", Edition: "region", BaseURL: "https://myorg.devops.aliyuncs.com"}, nil},
		{yunxiao.Config{}, []string{"token is required", "organization_id is required for edition central"}},
		{yunxiao.Config{Token: "t", Edition: "region", OrganizationID: "o"}, []string{"base_url is required for edition region", "organization_id is not used by edition region"}},
		{yunxiao.Config{Token: "t", Edition: "global"}, []string{`edition "global" must be central or region`}},
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

func TestComment(t *testing.T) {
	got := yunxiao.Comment(req)
	if want := "gatebot g_abcdefghij0123456789: deploy-api, requested by carol, approved in Teams by alice, bob"; got != want {
		t.Errorf("Comment = %q", got)
	}
}
