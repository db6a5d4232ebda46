package azuredevops_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/apiclient"
	"github.com/gatebot/gatebot/pipelines/azuredevops"
	"github.com/gatebot/gatebot/pipelines/pipelinestest"
	"github.com/google/go-cmp/cmp"
)

const token = "adoPatTestTokenThatMustNeverLeak42"

var basic = base64.StdEncoding.EncodeToString([]byte(":" + token))

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func newClient(t *testing.T, base string) *azuredevops.Client {
	t.Helper()
	var logs bytes.Buffer
	c, err := azuredevops.New(azuredevops.Config{BaseURL: base, Organization: "acme", Project: "Platform Team", Token: token},
		azuredevops.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		azuredevops.WithNow(func() time.Time { return t0 }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if strings.Contains(logs.String(), token) || strings.Contains(logs.String(), basic) {
			t.Errorf("token in logs:\n%s", logs.String())
		}
	})
	return c
}

func request(target map[string]any) pipelines.Request {
	if target == nil {
		target = map[string]any{"pipeline_id": 42, "ref": "main", "gate_id_variable": "GATEBOT_GATE_ID"}
	}
	return pipelines.Request{
		GateID:   "g-123",
		Pipeline: "deploy-api",
		Target:   target,
		Inputs:   map[string]any{"version": "1.4.2", "replicas": float64(3), "dry_run": false},
	}
}

const runBody = `{"_links":{"self":{"href":"https://dev.azure.com/acme/x/_apis/pipelines/42/runs/1234"},"web":{"href":"https://dev.azure.com/acme/x/_build/results?buildId=1234"}},
"pipeline":{"id":42,"name":"deploy"},"state":"inProgress","createdDate":"2026-11-22T10:00:01Z","url":"https://dev.azure.com/acme/x/_apis/pipelines/42/runs/1234","id":1234,"name":"20261122.1"}`

func TestTrigger(t *testing.T) {
	web := "https://dev.azure.com/acme/x/_build/results?buildId=1234"
	tests := []struct {
		name    string
		target  map[string]any
		ex      pipelinestest.Exchange
		want    pipelines.Run
		wantErr func(*testing.T, error)
	}{
		{
			name: "template parameters",
			ex:   pipelinestest.Exchange{Golden: "run-template-parameters", Status: 200, Body: runBody},
			want: pipelines.Run{ID: "1234", URL: web, Status: pipelines.StatusRunning, Detail: "azure devops: inProgress", Ref: map[string]string{"pipeline_id": "42"}},
		},
		{
			name:   "variables, custom gate variable, full ref",
			target: map[string]any{"pipeline_id": "42", "ref": "refs/tags/v1.4.2", "inputs_as": "variables", "gate_id_variable": "GATE"},
			ex:     pipelinestest.Exchange{Golden: "run-variables", Status: 200, Body: runBody},
			want:   pipelines.Run{ID: "1234", URL: web, Status: pipelines.StatusRunning, Detail: "azure devops: inProgress", Ref: map[string]string{"pipeline_id": "42"}},
		},
		{
			name:   "no gate variable unless the target names one",
			target: map[string]any{"pipeline_id": 42, "ref": "main"},
			ex:     pipelinestest.Exchange{Golden: "run-no-gate-variable", Status: 200, Body: runBody},
			want:   pipelines.Run{ID: "1234", URL: web, Status: pipelines.StatusRunning, Detail: "azure devops: inProgress", Ref: map[string]string{"pipeline_id": "42"}},
		},
		{
			name: "400 variable not settable at queue time",
			ex:   pipelinestest.Exchange{Golden: "run-template-parameters", Status: 400, Body: `{"$id":"1","innerException":null,"message":"You can't set the following variables (GATEBOT_GATE_ID). If you want to be able to set these variables, then edit the pipeline and select Settable at queue time on the variables tab of the pipeline editor.","typeName":"Microsoft.Azure.Pipelines.WebApi.PipelineValidationException, Microsoft.Azure.Pipelines.WebApi","typeKey":"PipelineValidationException","errorCode":0,"eventId":3000}`},
			wantErr: func(t *testing.T, err error) {
				apiErr(400, "PipelineValidationException", "You can't set the following variables (GATEBOT_GATE_ID). If you want to be able to set these variables, then edit the pipeline and select Settable at queue time on the variables tab of the pipeline editor.", false, 0)(t, err)
				if err == nil || !strings.Contains(err.Error(), `"Limit variables that can be set at queue time"`) || !strings.Contains(err.Error(), `"Settable at queue time"`) {
					t.Errorf("err = %v, want it to name both settings", err)
				}
			},
		},
		{
			name:    "203 sign-in page for a bad PAT",
			ex:      pipelinestest.Exchange{Golden: "run-template-parameters", Status: 203, Header: http.Header{"Content-Type": {"text/html"}}, Body: `<html><title>Azure DevOps Services | Sign In</title></html>`},
			wantErr: apiErr(203, "", "authentication failed (Azure DevOps answered with a sign-in page): check the token", false, 0),
		},
		{
			name:    "401 echoing the credentials",
			ex:      pipelinestest.Exchange{Golden: "run-template-parameters", Status: 401, Body: `{"message":"bad Basic ` + basic + ` for ` + token + `","typeKey":"UnauthorizedRequestException"}`},
			wantErr: apiErr(401, "UnauthorizedRequestException", "bad Basic [REDACTED] for [REDACTED]", false, 0),
		},
		{
			name:    "429 throttled",
			ex:      pipelinestest.Exchange{Golden: "run-template-parameters", Status: 429, Header: http.Header{"Retry-After": {"17"}, "X-RateLimit-Resource": {"ATCPU"}}, Body: `{"message":"Request was blocked due to exceeding usage of resource 'ATCPU'."}`},
			wantErr: apiErr(429, "", "Request was blocked due to exceeding usage of resource 'ATCPU'.", true, 17*time.Second),
		},
		{
			name:    "503",
			ex:      pipelinestest.Exchange{Golden: "run-template-parameters", Status: 503, Header: http.Header{"Content-Type": {"text/html"}}, Body: `<html>down</html>`},
			wantErr: apiErr(503, "", "Service Unavailable", true, 0),
		},
		{
			name: "malformed",
			ex:   pipelinestest.Exchange{Golden: "run-template-parameters", Status: 200, Body: `{"id":"x"}`},
			wantErr: func(t *testing.T, err error) {
				if !errors.Is(err, apiclient.ErrMalformedResponse) {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name:    "no id",
			ex:      pipelinestest.Exchange{Golden: "run-template-parameters", Status: 200, Body: `{}`},
			wantErr: apiErr(200, "", "Azure DevOps answered without a run id", false, 0),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, pipelinestest.NewServer(t, tt.ex).URL)
			got, err := c.Trigger(t.Context(), request(tt.target))
			if tt.wantErr != nil {
				if err != nil && (strings.Contains(err.Error(), token) || strings.Contains(err.Error(), basic)) {
					t.Errorf("token in error %q", err)
				}
				tt.wantErr(t, err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestTriggerTimeout(t *testing.T) {
	c := newClient(t, pipelinestest.NewServer(t, pipelinestest.Exchange{Golden: "run-template-parameters", Hang: true}).URL)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Trigger(ctx, request(nil))
	var ae *pipelines.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 0 || !ae.Temporary() || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want a temporary transport APIError wrapping DeadlineExceeded", err)
	}
}

func apiErr(status int, code, msg string, temporary bool, retryAfter time.Duration) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var ae *pipelines.APIError
		if !errors.As(err, &ae) {
			t.Fatalf("err = %v (%T), want *pipelines.APIError", err, err)
		}
		if ae.Provider != "azure_devops" || ae.StatusCode != status || ae.Code != code || ae.Message != msg || ae.Temporary() != temporary || ae.RetryAfter != retryAfter {
			t.Errorf("APIError = {%s %d %q %q temporary=%v retry=%s}, want {azure_devops %d %q %q %v %s}",
				ae.Provider, ae.StatusCode, ae.Code, ae.Message, ae.Temporary(), ae.RetryAfter, status, code, msg, temporary, retryAfter)
		}
	}
}

func TestStatus(t *testing.T) {
	run := pipelines.Run{ID: "1234", Status: pipelines.StatusRunning, Ref: map[string]string{"pipeline_id": "42"}}
	tests := []struct {
		name   string
		body   string
		want   pipelines.Status
		detail string
	}{
		{"in progress", `{"id":1234,"state":"inProgress","_links":{"web":{"href":"W"}}}`, pipelines.StatusRunning, "azure devops: inProgress"},
		{"succeeded", `{"id":1234,"state":"completed","result":"succeeded","_links":{"web":{"href":"W"}}}`, pipelines.StatusSucceeded, "azure devops: completed (succeeded)"},
		{"canceling", `{"id":1234,"state":"canceling","_links":{"web":{"href":"W"}}}`, pipelines.StatusRunning, "azure devops: canceling"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, pipelinestest.NewServer(t, pipelinestest.Exchange{Golden: "get-run", Status: 200, Body: tt.body}).URL)
			got, err := c.Status(t.Context(), run)
			if err != nil {
				t.Fatal(err)
			}
			want := pipelines.Run{ID: "1234", URL: "W", Status: tt.want, Detail: tt.detail, Ref: run.Ref}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
	t.Run("no state", func(t *testing.T) {
		c := newClient(t, pipelinestest.NewServer(t, pipelinestest.Exchange{Golden: "get-run", Status: 200, Body: `{"id":1234}`}).URL)
		if _, err := c.Status(t.Context(), run); err == nil {
			t.Error("no error")
		}
	})
	t.Run("404", func(t *testing.T) {
		c := newClient(t, pipelinestest.NewServer(t, pipelinestest.Exchange{Golden: "get-run", Status: 404, Body: `{"message":"Run 1234 not found","typeKey":"PipelineRunNotFoundException"}`}).URL)
		_, err := c.Status(t.Context(), run)
		apiErr(404, "PipelineRunNotFoundException", "Run 1234 not found", false, 0)(t, err)
	})
	t.Run("run without pipeline id", func(t *testing.T) {
		c := newClient(t, pipelinestest.NewServer(t).URL)
		if _, err := c.Status(t.Context(), pipelines.Run{ID: "1"}); err == nil {
			t.Error("no error")
		}
	})
}

func TestMapStatus(t *testing.T) {
	tests := []struct {
		state, result string
		want          pipelines.Status
	}{
		{"inProgress", "", pipelines.StatusRunning},
		{"canceling", "", pipelines.StatusRunning},
		{"unknown", "", pipelines.StatusRunning},
		{"completed", "succeeded", pipelines.StatusSucceeded},
		{"completed", "failed", pipelines.StatusFailed},
		{"completed", "unknown", pipelines.StatusFailed},
		{"completed", "canceled", pipelines.StatusCancelled},
	}
	for _, tt := range tests {
		if got := azuredevops.MapStatus(tt.state, tt.result); got != tt.want {
			t.Errorf("MapStatus(%q, %q) = %q, want %q", tt.state, tt.result, got, tt.want)
		}
	}
}

func TestCancel(t *testing.T) {
	run := pipelines.Run{ID: "1234", Ref: map[string]string{"pipeline_id": "42"}}
	t.Run("ok", func(t *testing.T) {
		c := newClient(t, pipelinestest.NewServer(t, pipelinestest.Exchange{Golden: "cancel", Status: 200, Body: `{"id":1234,"status":"cancelling"}`}).URL)
		if err := c.Cancel(t.Context(), run); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("already completed", func(t *testing.T) {
		c := newClient(t, pipelinestest.NewServer(t, pipelinestest.Exchange{Golden: "cancel", Status: 400, Body: `{"message":"The build 1234 has already completed.","typeKey":"InvalidBuildStatusException"}`}).URL)
		apiErr(400, "InvalidBuildStatusException", "The build 1234 has already completed.", false, 0)(t, c.Cancel(t.Context(), run))
	})
	t.Run("no id", func(t *testing.T) {
		c := newClient(t, pipelinestest.NewServer(t).URL)
		if err := c.Cancel(t.Context(), pipelines.Run{}); err == nil {
			t.Error("no error")
		}
	})
}

func TestConfigAndCheck(t *testing.T) {
	if errs := (azuredevops.Config{}).Validate(); len(errs) != 3 {
		t.Errorf("Validate(empty) = %v, want organization, project, token", errs)
	}
	if errs := (azuredevops.Config{BaseURL: "https://dev.azure.com/acme", Organization: "a", Project: "p", Token: "t"}).Validate(); len(errs) != 0 {
		t.Errorf("Validate = %v", errs)
	}
	c, err := azuredevops.New(azuredevops.Config{Organization: "a", Project: "p", Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		def  pipelines.Definition
		want []string
	}{
		{"ok", pipelines.Definition{Target: map[string]any{"pipeline_id": 42, "ref": "main"}, Inputs: map[string]*pipelines.Input{"version": {}}}, nil},
		{"bad target", pipelines.Definition{Target: map[string]any{"pipeline_id": "deploy", "inputs_as": "params", "branch": "x"}},
			[]string{"target.branch: unknown key", "not a pipeline id", "ref is required", "not one of"}},
		{"reserved variable", pipelines.Definition{Target: map[string]any{"pipeline_id": 1, "ref": "main", "inputs_as": "variables", "gate_id_variable": "GATEBOT_GATE_ID"}, Inputs: map[string]*pipelines.Input{"GATEBOT_GATE_ID": {}}}, []string{"reserved"}},
		{"bad input name", pipelines.Definition{Target: map[string]any{"pipeline_id": 1, "ref": "main"}, Inputs: map[string]*pipelines.Input{"a b": {}}}, []string{"not a valid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := c.CheckPipeline(tt.def)
			if len(errs) != len(tt.want) {
				t.Fatalf("CheckPipeline = %v, want %d errors", errs, len(tt.want))
			}
			for i, e := range errs {
				if !strings.Contains(e.Error(), tt.want[i]) {
					t.Errorf("error %d = %v, want %q", i, e, tt.want[i])
				}
			}
		})
	}
}
