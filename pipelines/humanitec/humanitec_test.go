package humanitec_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/apiclient"
	"github.com/gatebot/gatebot/pipelines/humanitec"
	"github.com/gatebot/gatebot/pipelines/pipelinestest"
	"github.com/google/go-cmp/cmp"
)

const token = "hum-token-5ecr3t-value"

func newClient(t *testing.T, ex ...pipelinestest.Exchange) (*humanitec.Client, *pipelinestest.SyncBuffer) {
	t.Helper()
	srv := pipelinestest.NewServer(t, ex...)
	logger, logs := pipelinestest.Logger()
	c, err := humanitec.New(humanitec.Config{BaseURL: srv.URL, Token: token, Org: "acme"},
		humanitec.WithLogger(logger), humanitec.WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	return c, logs
}

var req = pipelines.Request{
	GateID:   "g_abcdefghij0123456789",
	Pipeline: "deploy-api",
	Target:   map[string]any{"app": "api", "pipeline_id": "deploy"},
	Inputs:   map[string]any{"version": "1.4.2", "replicas": float64(3), "dry_run": false},
}

const runBody = `{"id":"0123abcd","etag":"1234567890abcdef","org_id":"acme","app_id":"api","env_ids":[],"pipeline_id":"deploy","status":"executing","status_message":"running job deploy","created_at":"2026-01-02T03:04:05Z","trigger":"pipeline_call","inputs":{"version":"1.4.2"},"run_as":"s-0123","timeout_seconds":3600,"waiting_for":{},"completed_at":null}`

// apiErr is the comparable part of a *pipelines.APIError.
type apiErr struct {
	Status     int
	Code, Msg  string
	RetryAfter time.Duration
	Temporary  bool
}

func asAPIErr(t *testing.T, err error) apiErr {
	t.Helper()
	var ae *pipelines.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v (%T), want *pipelines.APIError", err, err)
	}
	if ae.Provider != "humanitec" {
		t.Errorf("Provider = %q", ae.Provider)
	}
	return apiErr{ae.StatusCode, ae.Code, ae.Message, ae.RetryAfter, ae.Temporary()}
}

func TestTrigger(t *testing.T) {
	tests := []struct {
		name    string
		req     pipelines.Request
		ex      pipelinestest.Exchange
		timeout time.Duration
		want    pipelines.Run
		check   func(t *testing.T, err error)
	}{
		{
			name: "201 with run",
			req:  req,
			ex:   pipelinestest.Exchange{Golden: "trigger", Status: 201, Header: http.Header{"Etag": {`"1234567890abcdef"`}}, Body: runBody},
			want: pipelines.Run{ID: "0123abcd", Status: pipelines.StatusRunning, Detail: "executing: running job deploy",
				Ref: map[string]string{"app": "api", "pipeline_id": "deploy", "etag": "1234567890abcdef"}},
		},
		{
			name: "200 with run, etag from header, no inputs",
			req:  pipelines.Request{GateID: "g_x", Target: req.Target},
			ex:   pipelinestest.Exchange{Golden: "trigger-no-inputs", Status: 200, Header: http.Header{"Etag": {`"e2"`}}, Body: `{"id":"r2","status":"queued"}`},
			want: pipelines.Run{ID: "r2", Status: pipelines.StatusQueued, Detail: "queued",
				Ref: map[string]string{"app": "api", "pipeline_id": "deploy", "etag": "e2"}},
		},
		{
			name: "204 no run created",
			req:  req,
			ex:   pipelinestest.Exchange{Golden: "trigger", Status: 204},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, pipelines.ErrNoRun) {
					t.Errorf("err = %v, want ErrNoRun", err)
				}
			},
		},
		{
			name: "400 provider error",
			req:  req,
			ex:   pipelinestest.Exchange{Golden: "trigger", Status: 400, Body: `{"error":"API-000","message":"inputs.version: required","details":{}}`},
			check: func(t *testing.T, err error) {
				if got, want := asAPIErr(t, err), (apiErr{Status: 400, Code: "API-000", Msg: "inputs.version: required"}); got != want {
					t.Errorf("got %+v want %+v", got, want)
				}
			},
		},
		{
			name: "404 echoing the token is redacted",
			req:  req,
			ex:   pipelinestest.Exchange{Golden: "trigger", Status: 404, Body: `{"error":"API-404","message":"no pipeline for Bearer ` + token + `"}`},
			check: func(t *testing.T, err error) {
				if got := asAPIErr(t, err); got.Msg != "no pipeline for Bearer [REDACTED]" {
					t.Errorf("message = %q", got.Msg)
				}
			},
		},
		{
			name: "500",
			req:  req,
			ex:   pipelinestest.Exchange{Golden: "trigger", Status: 500, Body: `oops`},
			check: func(t *testing.T, err error) {
				if got, want := asAPIErr(t, err), (apiErr{Status: 500, Msg: "oops", Temporary: true}); got != want {
					t.Errorf("got %+v want %+v", got, want)
				}
			},
		},
		{
			name: "429 with Retry-After",
			req:  req,
			ex:   pipelinestest.Exchange{Golden: "trigger", Status: 429, Header: http.Header{"Retry-After": {"30"}}},
			check: func(t *testing.T, err error) {
				if got, want := asAPIErr(t, err), (apiErr{Status: 429, Msg: "Too Many Requests", RetryAfter: 30 * time.Second, Temporary: true}); got != want {
					t.Errorf("got %+v want %+v", got, want)
				}
			},
		},
		{
			name: "malformed 201",
			req:  req,
			ex:   pipelinestest.Exchange{Golden: "trigger", Status: 201, Body: `{"id":`},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, apiclient.ErrMalformedResponse) || pipelines.IsTemporary(err) {
					t.Errorf("err = %v, want permanent ErrMalformedResponse", err)
				}
			},
		},
		{
			name: "201 without id",
			req:  req,
			ex:   pipelinestest.Exchange{Golden: "trigger", Status: 201, Body: `{"status":"queued"}`},
			check: func(t *testing.T, err error) {
				if got := asAPIErr(t, err); got.Status != 201 || !errors.Is(err, apiclient.ErrMalformedResponse) || !strings.Contains(err.Error(), "no run id") {
					t.Errorf("got %+v, %v", got, err)
				}
			},
		},
		{
			name:    "timeout",
			req:     req,
			ex:      pipelinestest.Exchange{Golden: "trigger", Hang: true},
			timeout: 100 * time.Millisecond,
			check: func(t *testing.T, err error) {
				if !errors.Is(err, context.DeadlineExceeded) || !pipelines.IsTemporary(err) {
					t.Errorf("err = %v, want temporary deadline exceeded", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, logs := newClient(t, tt.ex)
			ctx := t.Context()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			run, err := c.Trigger(ctx, tt.req)
			if tt.check == nil {
				if err != nil {
					t.Fatalf("Trigger: %v", err)
				}
				if diff := cmp.Diff(tt.want, run); diff != "" {
					t.Errorf("run (-want +got):\n%s", diff)
				}
			} else {
				if err == nil {
					t.Fatalf("Trigger succeeded: %+v", run)
				}
				tt.check(t, err)
				pipelinestest.AssertNoSecret(t, token, err.Error())
			}
			pipelinestest.AssertNoSecret(t, token, logs.String())
		})
	}
}

func TestTriggerRefusesBadTargetsWithoutCalling(t *testing.T) {
	c, _ := newClient(t) // any request fails the test
	for _, tg := range []map[string]any{
		{"app": "api"},
		{"pipeline_id": "deploy"},
		{"app": "..", "pipeline_id": "deploy"},
		{"app": []any{"x"}, "pipeline_id": "deploy"},
	} {
		if _, err := c.Trigger(t.Context(), pipelines.Request{GateID: "g_1", Target: tg}); err == nil {
			t.Errorf("target %v accepted", tg)
		}
	}
	if _, err := c.Trigger(t.Context(), pipelines.Request{Target: req.Target}); err == nil {
		t.Error("missing gate id accepted")
	}
}

func TestStatusMapping(t *testing.T) {
	ref := map[string]string{"app": "api", "pipeline_id": "deploy", "etag": "old"}
	tests := []struct {
		body       string
		wantStatus pipelines.Status
		wantDetail string
	}{
		{`{"id":"r1","status":"queued","completed_at":null}`, pipelines.StatusQueued, "queued"},
		{`{"id":"r1","status":"executing","waiting_for":{}}`, pipelines.StatusRunning, "executing"},
		{`{"id":"r1","status":"executing","waiting_for":{"job-1":{"approval":true}}}`, pipelines.StatusRunning, "executing (waiting for approval)"},
		{`{"id":"r1","status":"cancelling"}`, pipelines.StatusRunning, "cancelling"},
		{`{"id":"r1","status":"succeeded","completed_at":"2026-01-02T03:04:05Z"}`, pipelines.StatusSucceeded, "succeeded"},
		{`{"id":"r1","status":"failed","status_message":"step 2 failed","completed_at":"2026-01-02T03:04:05Z"}`, pipelines.StatusFailed, "failed: step 2 failed"},
		{`{"id":"r1","status":"timed_out","completed_at":"2026-01-02T03:04:05Z"}`, pipelines.StatusFailed, "timed_out"},
		{`{"id":"r1","status":"cancelled","completed_at":"2026-01-02T03:04:05Z"}`, pipelines.StatusCancelled, "cancelled"},
		{`{"id":"r1","status":"brand_new_state"}`, pipelines.StatusRunning, "brand_new_state"},
		{`{"id":"r1","status":"brand_new_state","completed_at":"2026-01-02T03:04:05Z"}`, pipelines.StatusFailed, "brand_new_state"},
		{`{"id":"r1","status":"cancelling","cancellation_requested_at":"2026-01-02T03:00:00Z","completed_at":"2026-01-02T03:04:05Z"}`, pipelines.StatusCancelled, "cancelling"},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			c, _ := newClient(t, pipelinestest.Exchange{Golden: "status", Body: tt.body})
			got, err := c.Status(t.Context(), pipelines.Run{ID: "r1", URL: "https://keep", Ref: ref})
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tt.wantStatus || got.Detail != tt.wantDetail || got.ID != "r1" || got.URL != "https://keep" {
				t.Errorf("got %+v, want %s %q", got, tt.wantStatus, tt.wantDetail)
			}
			if got.Ref["app"] != "api" || got.Ref["pipeline_id"] != "deploy" {
				t.Errorf("ref lost: %v", got.Ref)
			}
		})
	}
}

func TestStatusErrors(t *testing.T) {
	ref := map[string]string{"app": "api", "pipeline_id": "deploy"}
	c, _ := newClient(t,
		pipelinestest.Exchange{Golden: "status", Status: 404, Body: `{"error":"API-404","message":"run not found"}`},
		pipelinestest.Exchange{Golden: "status", Status: 200, Body: `<html>`},
	)
	_, err := c.Status(t.Context(), pipelines.Run{ID: "r1", Ref: ref})
	if got := asAPIErr(t, err); got.Status != 404 || got.Code != "API-404" {
		t.Errorf("404: %+v", got)
	}
	if _, err := c.Status(t.Context(), pipelines.Run{ID: "r1", Ref: ref}); !errors.Is(err, apiclient.ErrMalformedResponse) {
		t.Errorf("malformed: %v", err)
	}
	if _, err := c.Status(t.Context(), pipelines.Run{ID: "r1"}); err == nil {
		t.Error("run without ref accepted")
	}
}

func TestCancel(t *testing.T) {
	run := pipelines.Run{ID: "r1", Ref: map[string]string{"app": "api", "pipeline_id": "deploy", "etag": "e"}}
	tests := []struct {
		name  string
		ex    pipelinestest.Exchange
		check func(t *testing.T, err error)
	}{
		{"204", pipelinestest.Exchange{Golden: "cancel", Status: 204}, func(t *testing.T, err error) {
			if err != nil {
				t.Errorf("err = %v", err)
			}
		}},
		{"409 not cancellable", pipelinestest.Exchange{Golden: "cancel", Status: 409, Body: `{"error":"API-409","message":"run is completed"}`}, func(t *testing.T, err error) {
			if !errors.Is(err, humanitec.ErrNotCancellable) {
				t.Errorf("err = %v, want ErrNotCancellable", err)
			}
			if got := asAPIErr(t, err); got.Status != 409 || got.Msg != "run is completed" {
				t.Errorf("got %+v", got)
			}
		}},
		{"503", pipelinestest.Exchange{Golden: "cancel", Status: 503, Header: http.Header{"Retry-After": {"5"}}}, func(t *testing.T, err error) {
			if got := asAPIErr(t, err); got.RetryAfter != 5*time.Second || !got.Temporary || errors.Is(err, humanitec.ErrNotCancellable) {
				t.Errorf("got %+v", got)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newClient(t, tt.ex)
			tt.check(t, c.Cancel(t.Context(), run))
		})
	}
}

func TestCheckPipeline(t *testing.T) {
	c, _ := newClient(t)
	tests := []struct {
		target map[string]any
		want   []string
	}{
		{map[string]any{"app": "api", "pipeline_id": "deploy"}, nil},
		{map[string]any{"app": "api", "pipeline_id": 7}, nil},
		{map[string]any{}, []string{"target.app is required", "target.pipeline_id is required"}},
		{map[string]any{"app": "..", "pipeline_id": "x", "pipeline": "typo"}, []string{"target.pipeline is not a known key", "target.app: path parameter"}},
	}
	for _, tt := range tests {
		errs := c.CheckPipeline(pipelines.Definition{Name: "p", Target: tt.target})
		if len(errs) != len(tt.want) {
			t.Errorf("%v: errs = %v, want %d", tt.target, errs, len(tt.want))
			continue
		}
		for i, w := range tt.want {
			if !strings.Contains(errs[i].Error(), w) {
				t.Errorf("%v: errs[%d] = %v, want %q", tt.target, i, errs[i], w)
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  humanitec.Config
		want []string
	}{
		{humanitec.Config{Token: "t", Org: "acme"}, nil},
		{humanitec.Config{BaseURL: "https://api.humanitec.io", Token: "t", Org: "acme"}, nil},
		{humanitec.Config{}, []string{"token is required", "org is required"}},
		{humanitec.Config{BaseURL: "api.humanitec.io", Token: "t", Org: "acme"}, []string{"base_url"}},
		{humanitec.Config{BaseURL: "ftp://x", Token: "t", Org: ".."}, []string{"base_url", "org:"}},
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
	if _, err := humanitec.New(humanitec.Config{}); err == nil {
		t.Error("New accepted an invalid config")
	}
}
