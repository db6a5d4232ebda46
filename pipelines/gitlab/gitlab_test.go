package gitlab_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/apiclient"
	"github.com/gatebot/gatebot/pipelines/gitlab"
	"github.com/gatebot/gatebot/pipelines/pipelinestest"
	"github.com/google/go-cmp/cmp"
)

const (
	token        = "glpat-TestTokenThatMustNeverLeak"
	triggerToken = "glptt-TriggerTokenThatMustNeverLeak"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func newClient(t *testing.T, cfg gitlab.Config) *gitlab.Client {
	t.Helper()
	var logs bytes.Buffer
	c, err := gitlab.New(cfg,
		gitlab.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		gitlab.WithNow(func() time.Time { return t0 }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if strings.Contains(logs.String(), token) || strings.Contains(logs.String(), triggerToken) {
			t.Errorf("token in logs:\n%s", logs.String())
		}
	})
	return c
}

func request(target map[string]any) pipelines.Request {
	if target == nil {
		target = map[string]any{"project": "acme/platform/api", "ref": "main"}
	}
	return pipelines.Request{
		GateID:   "g-123",
		Pipeline: "deploy-api",
		Target:   target,
		Inputs:   map[string]any{"version": "1.4.2", "replicas": float64(3), "dry_run": false},
	}
}

const created = `{"id":4711,"iid":12,"project_id":278964,"sha":"a91957a8","ref":"main","status":"created","source":"api","web_url":"https://gitlab.com/acme/platform/api/-/pipelines/4711","created_at":"2026-11-22T10:00:01.000Z"}`

func TestTrigger(t *testing.T) {
	tokenOnly := gitlab.Config{Token: token}
	trigger := gitlab.Config{Token: token, TriggerToken: triggerToken}
	tests := []struct {
		name    string
		cfg     gitlab.Config
		target  map[string]any
		ex      pipelinestest.Exchange
		want    pipelines.Run
		wantErr func(*testing.T, error)
	}{
		{
			name: "create with variables", cfg: tokenOnly,
			ex:   pipelinestest.Exchange{Golden: "create-variables", Status: 201, Body: created},
			want: pipelines.Run{ID: "4711", URL: "https://gitlab.com/acme/platform/api/-/pipelines/4711", Status: pipelines.StatusQueued, Detail: "gitlab: created", Ref: map[string]string{"project": "278964"}},
		},
		{
			name: "create with spec:inputs", cfg: tokenOnly, target: map[string]any{"project": 278964, "ref": "v1.4.2", "inputs_as": "inputs"},
			ex:   pipelinestest.Exchange{Golden: "create-inputs", Status: 201, Body: created},
			want: pipelines.Run{ID: "4711", URL: "https://gitlab.com/acme/platform/api/-/pipelines/4711", Status: pipelines.StatusQueued, Detail: "gitlab: created", Ref: map[string]string{"project": "278964"}},
		},
		{
			name: "spec:inputs with the gate id as an input, no variables", cfg: tokenOnly,
			target: map[string]any{"project": 278964, "ref": "v1.4.2", "inputs_as": "inputs", "gate_id_input": "gatebot_gate_id"},
			ex:     pipelinestest.Exchange{Golden: "create-inputs-gate-input", Status: 201, Body: created},
			want:   pipelines.Run{ID: "4711", URL: "https://gitlab.com/acme/platform/api/-/pipelines/4711", Status: pipelines.StatusQueued, Detail: "gitlab: created", Ref: map[string]string{"project": "278964"}},
		},
		{
			name: "refused pipeline variables name the project setting", cfg: tokenOnly,
			ex: pipelinestest.Exchange{Golden: "create-variables", Status: 400, Body: `{"message":{"base":["Insufficient permissions to set pipeline variables"]}}`},
			wantErr: func(t *testing.T, err error) {
				apiErr(400, "base: Insufficient permissions to set pipeline variables", false, 0)(t, err)
				if err == nil || !strings.Contains(err.Error(), "Minimum role to use pipeline variables") || !strings.Contains(err.Error(), "inputs_as: inputs") {
					t.Errorf("err = %v, want it to name the project setting", err)
				}
			},
		},
		{
			name: "trigger token, form body, no PRIVATE-TOKEN", cfg: trigger,
			ex:   pipelinestest.Exchange{Golden: "trigger-token", Status: 201, Body: `{"id":4711,"status":"pending","web_url":"https://gitlab.com/acme/platform/api/-/pipelines/4711"}`},
			want: pipelines.Run{ID: "4711", URL: "https://gitlab.com/acme/platform/api/-/pipelines/4711", Status: pipelines.StatusQueued, Detail: "gitlab: pending", Ref: map[string]string{"project": "acme/platform/api"}},
		},
		{
			name: "400 reference not found", cfg: tokenOnly,
			ex:      pipelinestest.Exchange{Golden: "create-variables", Status: 400, Body: `{"message":{"base":["Reference not found"],"ref":["is invalid"]}}`},
			wantErr: apiErr(400, "base: Reference not found; ref: is invalid", false, 0),
		},
		{
			name: "404 echoing the trigger token", cfg: trigger,
			ex:      pipelinestest.Exchange{Golden: "trigger-token", Status: 404, Body: `{"message":"404 Not Found: token ` + triggerToken + `"}`},
			wantErr: apiErr(404, "404 Not Found: token [REDACTED]", false, 0),
		},
		{
			name: "403 oauth-style error", cfg: tokenOnly,
			ex:      pipelinestest.Exchange{Golden: "create-variables", Status: 403, Body: `{"error":"insufficient_scope","error_description":"The request requires higher privileges than provided by the access token."}`},
			wantErr: apiErr(403, "The request requires higher privileges than provided by the access token.", false, 0),
		},
		{
			name: "429 with Retry-After", cfg: tokenOnly,
			ex:      pipelinestest.Exchange{Golden: "create-variables", Status: 429, Header: http.Header{"Retry-After": {"60"}, "RateLimit-Remaining": {"0"}}, Body: `{"message":"Retry later"}`},
			wantErr: apiErr(429, "Retry later", true, time.Minute),
		},
		{
			name: "500", cfg: tokenOnly,
			ex:      pipelinestest.Exchange{Golden: "create-variables", Status: 500, Body: `{"message":"500 Internal Server Error"}`},
			wantErr: apiErr(500, "500 Internal Server Error", true, 0),
		},
		{
			name: "malformed answer", cfg: tokenOnly,
			ex: pipelinestest.Exchange{Golden: "create-variables", Status: 201, Body: `<html>`},
			wantErr: func(t *testing.T, err error) {
				if !errors.Is(err, apiclient.ErrMalformedResponse) {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name: "answer without an id", cfg: tokenOnly,
			ex:      pipelinestest.Exchange{Golden: "create-variables", Status: 201, Body: `{}`},
			wantErr: apiErr(201, "GitLab answered without a pipeline id", false, 0),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.BaseURL = pipelinestest.NewServer(t, tt.ex).URL
			c := newClient(t, tt.cfg)
			got, err := c.Trigger(t.Context(), request(tt.target))
			if tt.wantErr != nil {
				if err != nil && (strings.Contains(err.Error(), token) || strings.Contains(err.Error(), triggerToken)) {
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

func TestTriggerRefusals(t *testing.T) {
	c := newClient(t, gitlab.Config{BaseURL: pipelinestest.NewServer(t).URL, TriggerToken: triggerToken})
	tests := []struct {
		name   string
		req    pipelines.Request
		substr string
	}{
		{"inputs_as inputs in trigger mode", request(map[string]any{"project": "1", "ref": "main", "inputs_as": "inputs"}), "not available with trigger_token"},
		{"bad target", request(map[string]any{"project": "1", "branch": "main"}), "target.branch: unknown key"},
		{"no gate", pipelines.Request{Target: map[string]any{"project": "1", "ref": "main"}}, "empty gate id"},
		{"dot-dot project", request(map[string]any{"project": "..", "ref": "main"}), "not a valid path segment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Trigger(t.Context(), tt.req)
			if err == nil || !strings.Contains(err.Error(), tt.substr) {
				t.Errorf("err = %v, want %q", err, tt.substr)
			}
		})
	}
}

func TestTriggerTimeout(t *testing.T) {
	c := newClient(t, gitlab.Config{BaseURL: pipelinestest.NewServer(t, pipelinestest.Exchange{Golden: "create-variables", Hang: true}).URL, Token: token})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Trigger(ctx, request(nil))
	var ae *pipelines.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 0 || !ae.Temporary() || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want a temporary transport APIError wrapping DeadlineExceeded", err)
	}
}

func apiErr(status int, msg string, temporary bool, retryAfter time.Duration) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var ae *pipelines.APIError
		if !errors.As(err, &ae) {
			t.Fatalf("err = %v (%T), want *pipelines.APIError", err, err)
		}
		if ae.Provider != "gitlab" || ae.StatusCode != status || ae.Message != msg || ae.Temporary() != temporary || ae.RetryAfter != retryAfter {
			t.Errorf("APIError = {%s %d %q temporary=%v retry=%s}, want {gitlab %d %q %v %s}",
				ae.Provider, ae.StatusCode, ae.Message, ae.Temporary(), ae.RetryAfter, status, msg, temporary, retryAfter)
		}
	}
}

func TestStatus(t *testing.T) {
	run := pipelines.Run{ID: "4711", Status: pipelines.StatusQueued, Ref: map[string]string{"project": "278964"}}
	tests := []struct {
		name    string
		cfg     gitlab.Config
		golden  string
		body    string
		want    pipelines.Status
		wantErr bool
	}{
		{"running", gitlab.Config{Token: token}, "get-pipeline", `{"id":4711,"status":"running","web_url":"https://gitlab.com/p/-/pipelines/4711"}`, pipelines.StatusRunning, false},
		{"success", gitlab.Config{Token: token}, "get-pipeline", `{"id":4711,"status":"success","web_url":"https://gitlab.com/p/-/pipelines/4711"}`, pipelines.StatusSucceeded, false},
		{"trigger-only: no credentials", gitlab.Config{TriggerToken: triggerToken}, "get-pipeline-anonymous", `{"id":4711,"status":"canceled","web_url":"https://gitlab.com/p/-/pipelines/4711"}`, pipelines.StatusCancelled, false},
		{"no status", gitlab.Config{Token: token}, "get-pipeline", `{"id":4711}`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.BaseURL = pipelinestest.NewServer(t, pipelinestest.Exchange{Golden: tt.golden, Status: 200, Body: tt.body}).URL
			got, err := newClient(t, tt.cfg).Status(t.Context(), run)
			if tt.wantErr {
				if err == nil {
					t.Error("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := pipelines.Run{ID: "4711", URL: "https://gitlab.com/p/-/pipelines/4711", Status: tt.want, Detail: got.Detail, Ref: run.Ref}
			if d := cmp.Diff(want, got); d != "" || !strings.HasPrefix(got.Detail, "gitlab: ") {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
	t.Run("run without project", func(t *testing.T) {
		c := newClient(t, gitlab.Config{BaseURL: pipelinestest.NewServer(t).URL, Token: token})
		if _, err := c.Status(t.Context(), pipelines.Run{ID: "1"}); err == nil {
			t.Error("no error")
		}
	})
}

func TestMapStatus(t *testing.T) {
	tests := map[string]pipelines.Status{
		"created": pipelines.StatusQueued, "waiting_for_resource": pipelines.StatusQueued, "preparing": pipelines.StatusQueued,
		"pending": pipelines.StatusQueued, "scheduled": pipelines.StatusQueued,
		"running": pipelines.StatusRunning, "manual": pipelines.StatusRunning, "canceling": pipelines.StatusRunning, "brand_new": pipelines.StatusRunning,
		"success": pipelines.StatusSucceeded, "failed": pipelines.StatusFailed,
		"canceled": pipelines.StatusCancelled, "skipped": pipelines.StatusCancelled,
	}
	for in, want := range tests {
		if got := gitlab.MapStatus(in); got != want {
			t.Errorf("MapStatus(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCancel(t *testing.T) {
	run := pipelines.Run{ID: "4711", Ref: map[string]string{"project": "acme/platform/api"}}
	t.Run("ok", func(t *testing.T) {
		c := newClient(t, gitlab.Config{BaseURL: pipelinestest.NewServer(t, pipelinestest.Exchange{Golden: "cancel", Status: 200, Body: `{"id":4711,"status":"canceling"}`}).URL, Token: token})
		if err := c.Cancel(t.Context(), run); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("forbidden", func(t *testing.T) {
		c := newClient(t, gitlab.Config{BaseURL: pipelinestest.NewServer(t, pipelinestest.Exchange{Golden: "cancel", Status: 403, Body: `{"message":"403 Forbidden"}`}).URL, Token: token})
		apiErr(403, "403 Forbidden", false, 0)(t, c.Cancel(t.Context(), run))
	})
	t.Run("trigger token only", func(t *testing.T) {
		c := newClient(t, gitlab.Config{BaseURL: pipelinestest.NewServer(t).URL, TriggerToken: triggerToken})
		if err := c.Cancel(t.Context(), run); !errors.Is(err, pipelines.ErrNotSupported) {
			t.Errorf("err = %v, want ErrNotSupported", err)
		}
	})
}

func TestConfigAndCheck(t *testing.T) {
	for _, tt := range []struct {
		cfg  gitlab.Config
		want int
	}{
		{gitlab.Config{BaseURL: "https://gitlab.com", Token: "x"}, 0},
		{gitlab.Config{BaseURL: "https://gitlab.com", TriggerToken: "x"}, 0},
		{gitlab.Config{}, 2},
		{gitlab.Config{BaseURL: "gitlab.com", Token: "x"}, 1},
	} {
		if errs := tt.cfg.Validate(); len(errs) != tt.want {
			t.Errorf("Validate(%+v) = %v, want %d errors", tt.cfg, errs, tt.want)
		}
	}
	in := func(names ...string) map[string]*pipelines.Input {
		m := map[string]*pipelines.Input{}
		for _, n := range names {
			m[n] = &pipelines.Input{}
		}
		return m
	}
	tests := []struct {
		name string
		cfg  gitlab.Config
		def  pipelines.Definition
		want []string
	}{
		{"ok", gitlab.Config{Token: "x"}, pipelines.Definition{Target: map[string]any{"project": "a/b", "ref": "main"}, Inputs: in("VERSION", "dry_run")}, nil},
		{"variable keys", gitlab.Config{Token: "x"}, pipelines.Definition{Target: map[string]any{"project": "a/b", "ref": "main"}, Inputs: in("GATEBOT_GATE_ID", "dry-run")}, []string{"reserved", "letters, digits and _"}},
		{"inputs allow dashes", gitlab.Config{Token: "x"}, pipelines.Definition{Target: map[string]any{"project": "a/b", "ref": "main", "inputs_as": "inputs"}, Inputs: in("dry-run")}, nil},
		{"gate input only in inputs mode", gitlab.Config{Token: "x"}, pipelines.Definition{Target: map[string]any{"project": "a/b", "ref": "main", "gate_id_input": "gid"}}, []string{"only with inputs_as: inputs"}},
		{"gate input reserved", gitlab.Config{Token: "x"}, pipelines.Definition{Target: map[string]any{"project": "a/b", "ref": "main", "inputs_as": "inputs", "gate_id_input": "gid"}, Inputs: in("gid", "GATEBOT_GATE_ID")}, []string{"inputs.gid: reserved"}},
		{"inputs with trigger token", gitlab.Config{TriggerToken: "x"}, pipelines.Definition{Target: map[string]any{"project": "a/b", "ref": "main", "inputs_as": "inputs"}}, []string{"trigger_token"}},
		{"bad target", gitlab.Config{Token: "x"}, pipelines.Definition{Target: map[string]any{"inputs_as": "env"}}, []string{"project is required", "ref is required", "not one of"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.BaseURL = "https://gitlab.example.com"
			c, err := gitlab.New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
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
