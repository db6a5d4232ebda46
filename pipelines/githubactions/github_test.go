package githubactions_test

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
	"github.com/gatebot/gatebot/pipelines/githubactions"
	"github.com/gatebot/gatebot/pipelines/pipelinestest"
	"github.com/google/go-cmp/cmp"
)

const token = "ghp_TestTokenThatMustNeverLeak0123"

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func bptr(b bool) *bool { return &b }

type env struct {
	c    *githubactions.Client
	logs *bytes.Buffer
}

func newClient(t *testing.T, url string, cfg githubactions.Config, now time.Time) env {
	t.Helper()
	cfg.BaseURL = url
	if cfg.Token == "" {
		cfg.Token = token
	}
	var logs bytes.Buffer
	c, err := githubactions.New(cfg,
		githubactions.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		githubactions.WithNow(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if strings.Contains(logs.String(), token) {
			t.Errorf("token in logs:\n%s", logs.String())
		}
	})
	return env{c: c, logs: &logs}
}

func request() pipelines.Request {
	return pipelines.Request{
		GateID:   "g-123",
		Pipeline: "deploy-api",
		Target:   map[string]any{"owner": "acme", "repo": "api", "workflow": "deploy.yml", "ref": "main", "gate_id_input": "gatebot_gate_id"},
		Inputs:   map[string]any{"version": "1.4.2", "replicas": float64(3), "dry_run": false},
	}
}

func wantRef(extra map[string]string) map[string]string {
	r := map[string]string{
		"owner": "acme", "repo": "api", "workflow": "deploy.yml", "gate_id": "g-123",
		"gate_id_input": "gatebot_gate_id", "dispatched_at": "2026-11-22T10:00:00Z",
	}
	for k, v := range extra {
		r[k] = v
	}
	return r
}

const noRuns = `{"total_count":0,"workflow_runs":[]}`

const runDetails = `{"workflow_run_id":999,"run_url":"https://api.github.com/repos/acme/api/actions/runs/999","html_url":"https://github.com/acme/api/actions/runs/999"}`

func TestTrigger(t *testing.T) {
	tests := []struct {
		name    string
		cfg     githubactions.Config
		target  map[string]any
		script  []pipelinestest.Exchange
		want    pipelines.Run
		wantErr func(*testing.T, error)
	}{
		{
			name: "run details returned",
			script: []pipelinestest.Exchange{
				{Golden: "find-runs", Status: 200, Body: noRuns},
				{Golden: "dispatch", Status: 200, Body: runDetails},
			},
			want: pipelines.Run{ID: "999", URL: "https://github.com/acme/api/actions/runs/999", Status: pipelines.StatusQueued, Detail: "github: dispatched", Ref: wantRef(nil)},
		},
		{
			name: "a run for the gate already exists",
			script: []pipelinestest.Exchange{
				{Golden: "find-runs", Status: 200, Body: `{"total_count":3,"workflow_runs":[
					{"id":1001,"display_title":"Deploy 1.4.2 (g-1234)","status":"queued","html_url":"https://github.com/acme/api/actions/runs/1001","created_at":"2026-11-22T09:59:00Z"},
					{"id":1000,"display_title":"Deploy 1.4.2 (g-123)","status":"in_progress","html_url":"https://github.com/acme/api/actions/runs/1000","created_at":"2026-11-22T09:58:00Z"},
					{"id":900,"display_title":"Deploy 1.4.1","status":"completed","conclusion":"success","created_at":"2026-11-22T08:00:00Z"}]}`},
			},
			want: pipelines.Run{ID: "1000", URL: "https://github.com/acme/api/actions/runs/1000", Status: pipelines.StatusRunning, Detail: "github: in_progress",
				Ref: wantRef(map[string]string{"dispatched_at": "2026-11-22T09:58:00Z"})},
		},
		{
			name: "GHES refuses return_run_details: dispatch again without it",
			script: []pipelinestest.Exchange{
				{Golden: "find-runs", Status: 200, Body: noRuns},
				{Golden: "dispatch", Status: 400, Body: `{"message":"Invalid request.\n\n\"return_run_details\" is not a permitted key.","documentation_url":"https://docs.github.com/enterprise-server@3.20/rest"}`},
				{Golden: "dispatch-no-details", Status: 204},
			},
			want: pipelines.Run{Status: pipelines.StatusQueued, Detail: "github: dispatched; waiting for the run to appear", Ref: wantRef(nil)},
		},
		{
			name: "GHES refuses return_run_details with 422: dispatch again without it",
			script: []pipelinestest.Exchange{
				{Golden: "find-runs", Status: 200, Body: noRuns},
				{Golden: "dispatch", Status: 422, Body: `{"message":"Invalid request.\n\n\"return_run_details\" is not a permitted key.","documentation_url":"https://docs.github.com/enterprise-server@3.19/rest"}`},
				{Golden: "dispatch-no-details", Status: 204},
			},
			want: pipelines.Run{Status: pipelines.StatusQueued, Detail: "github: dispatched; waiting for the run to appear", Ref: wantRef(nil)},
		},
		{
			name:   "no gate_id_input: the input is not sent",
			target: map[string]any{"owner": "acme", "repo": "api", "workflow": "deploy.yml", "ref": "main"},
			script: []pipelinestest.Exchange{
				{Golden: "dispatch-gate-input-unset", Status: 200, Body: runDetails},
			},
			want: pipelines.Run{ID: "999", URL: "https://github.com/acme/api/actions/runs/999", Status: pipelines.StatusQueued, Detail: "github: dispatched", Ref: wantRef(map[string]string{"gate_id_input": ""})},
		},
		{
			name: "return_run_details off",
			cfg:  githubactions.Config{ReturnRunDetails: bptr(false)},
			script: []pipelinestest.Exchange{
				{Golden: "find-runs", Status: 200, Body: noRuns},
				{Golden: "dispatch-no-details", Status: 204},
			},
			want: pipelines.Run{Status: pipelines.StatusQueued, Detail: "github: dispatched; waiting for the run to appear", Ref: wantRef(nil)},
		},
		{
			name:   "no gate id input: no lookup, no stamp",
			target: map[string]any{"owner": "acme", "repo": "api", "workflow": 4711, "ref": "v1.4", "gate_id_input": ""},
			script: []pipelinestest.Exchange{
				{Golden: "dispatch-no-gate-input", Status: 200, Body: runDetails},
			},
			want: pipelines.Run{ID: "999", URL: "https://github.com/acme/api/actions/runs/999", Status: pipelines.StatusQueued, Detail: "github: dispatched",
				Ref: wantRef(map[string]string{"workflow": "4711", "gate_id_input": ""})},
		},
		{
			name:   "no gate id input and no run details",
			cfg:    githubactions.Config{ReturnRunDetails: bptr(false)},
			target: map[string]any{"owner": "acme", "repo": "api", "workflow": 4711, "ref": "v1.4", "gate_id_input": ""},
			script: []pipelinestest.Exchange{{Golden: "dispatch-no-gate-input-no-details", Status: 204}},
			wantErr: func(t *testing.T, err error) {
				if !errors.Is(err, githubactions.ErrRunNotFound) {
					t.Errorf("err = %v, want ErrRunNotFound", err)
				}
			},
		},
		{
			name: "422: workflow has no workflow_dispatch trigger",
			script: []pipelinestest.Exchange{
				{Golden: "find-runs", Status: 200, Body: noRuns},
				{Golden: "dispatch", Status: 422, Body: `{"message":"Workflow does not have 'workflow_dispatch' trigger","documentation_url":"https://docs.github.com/rest/actions/workflows#create-a-workflow-dispatch-event","status":"422"}`},
			},
			wantErr: apiErr(422, "Workflow does not have 'workflow_dispatch' trigger", false, 0),
		},
		{
			name: "401 echoing the token is redacted",
			script: []pipelinestest.Exchange{
				{Golden: "find-runs", Status: 401, Body: `{"message":"Bad credentials: ` + token + `"}`},
			},
			wantErr: apiErr(401, "Bad credentials: [REDACTED]", false, 0),
		},
		{
			name: "500 on dispatch is temporary",
			script: []pipelinestest.Exchange{
				{Golden: "find-runs", Status: 200, Body: noRuns},
				{Golden: "dispatch", Status: 502, Header: http.Header{"Content-Type": {"text/html"}}, Body: "<html>bad gateway</html>"},
			},
			wantErr: apiErr(502, "Bad Gateway", true, 0),
		},
		{
			name: "429 with Retry-After",
			script: []pipelinestest.Exchange{
				{Golden: "find-runs", Status: 429, Header: http.Header{"Retry-After": {"30"}}, Body: `{"message":"You have exceeded a secondary rate limit."}`},
			},
			wantErr: apiErr(429, "You have exceeded a secondary rate limit.", true, 30*time.Second),
		},
		{
			name: "403 primary rate limit: retry after the reset",
			script: []pipelinestest.Exchange{
				{Golden: "find-runs", Status: 403, Header: http.Header{"X-RateLimit-Remaining": {"0"}, "X-RateLimit-Reset": {"1795341720"}}, Body: `{"message":"API rate limit exceeded for user ID 1."}`},
			},
			wantErr: apiErr(403, "API rate limit exceeded for user ID 1.", true, 2*time.Minute),
		},
		{
			name: "403 secondary rate limit with Retry-After is temporary",
			script: []pipelinestest.Exchange{
				{Golden: "find-runs", Status: 403, Header: http.Header{"Retry-After": {"60"}}, Body: `{"message":"You have exceeded a secondary rate limit."}`},
			},
			wantErr: apiErr(403, "You have exceeded a secondary rate limit.", true, time.Minute),
		},
		{
			name: "403 without rate-limit headers is permanent",
			script: []pipelinestest.Exchange{
				{Golden: "find-runs", Status: 403, Header: http.Header{"X-RateLimit-Remaining": {"4999"}}, Body: `{"message":"Resource not accessible by integration"}`},
			},
			wantErr: apiErr(403, "Resource not accessible by integration", false, 0),
		},
		{
			name: "422 Unexpected inputs names the gate input",
			script: []pipelinestest.Exchange{
				{Golden: "find-runs", Status: 200, Body: noRuns},
				{Golden: "dispatch", Status: 422, Body: `{"message":"Unexpected inputs provided: [\"gatebot_gate_id\"]","documentation_url":"https://docs.github.com/rest/actions/workflows#create-a-workflow-dispatch-event","status":"422"}`},
			},
			wantErr: func(t *testing.T, err error) {
				apiErr(422, `Unexpected inputs provided: ["gatebot_gate_id"]`, false, 0)(t, err)
				if err == nil || !strings.Contains(err.Error(), `declare the input "gatebot_gate_id"`) || !strings.Contains(err.Error(), "remove target.gate_id_input") {
					t.Errorf("err = %v, want it to name the undeclared gate input", err)
				}
			},
		},
		{
			name: "malformed run details",
			script: []pipelinestest.Exchange{
				{Golden: "find-runs", Status: 200, Body: noRuns},
				{Golden: "dispatch", Status: 200, Body: `{"workflow_run_id":"nine`},
			},
			wantErr: func(t *testing.T, err error) {
				if !errors.Is(err, apiclient.ErrMalformedResponse) {
					t.Errorf("err = %v, want ErrMalformedResponse", err)
				}
			},
		},
		{
			name:   "bad target",
			target: map[string]any{"owner": "acme", "repo": []string{"x"}, "wf": "x"},
			wantErr: func(t *testing.T, err error) {
				for _, s := range []string{"target.wf: unknown key", "target.repo: want a string", "target.workflow is required", "target.ref is required"} {
					if err == nil || !strings.Contains(err.Error(), s) {
						t.Errorf("err = %v, want it to mention %q", err, s)
					}
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newClient(t, pipelinestest.NewServer(t, tt.script...).URL, tt.cfg, t0)
			req := request()
			if tt.target != nil {
				req.Target = tt.target
			}
			got, err := e.c.Trigger(t.Context(), req)
			if tt.wantErr != nil {
				if err != nil && strings.Contains(err.Error(), token) {
					t.Errorf("token in error %q", err)
				}
				tt.wantErr(t, err)
				return
			}
			if err != nil {
				t.Fatalf("Trigger: %v", err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("run (-want +got):\n%s", d)
			}
		})
	}
}

func apiErr(status int, msg string, temporary bool, retryAfter time.Duration) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var ae *pipelines.APIError
		if !errors.As(err, &ae) {
			t.Fatalf("err = %v (%T), want *pipelines.APIError", err, err)
		}
		if ae.Provider != "github_actions" || ae.StatusCode != status || ae.Message != msg || ae.Temporary() != temporary || ae.RetryAfter != retryAfter {
			t.Errorf("APIError = {%s %d %q temporary=%v retry=%s}, want {github_actions %d %q %v %s}",
				ae.Provider, ae.StatusCode, ae.Message, ae.Temporary(), ae.RetryAfter, status, msg, temporary, retryAfter)
		}
	}
}

// After one refusal the client stops offering return_run_details.
func TestFallbackIsRemembered(t *testing.T) {
	url := pipelinestest.NewServer(t,
		pipelinestest.Exchange{Golden: "find-runs", Status: 200, Body: noRuns},
		pipelinestest.Exchange{Golden: "dispatch", Status: 400, Body: `{"message":"Invalid request."}`},
		pipelinestest.Exchange{Golden: "dispatch-no-details", Status: 204},
		pipelinestest.Exchange{Golden: "find-runs", Status: 200, Body: noRuns},
		pipelinestest.Exchange{Golden: "dispatch-no-details", Status: 204},
	).URL
	e := newClient(t, url, githubactions.Config{}, t0)
	for range 2 {
		if _, err := e.c.Trigger(t.Context(), request()); err != nil {
			t.Fatal(err)
		}
	}
}

// A 400 that is not about the field (the retry fails too) is reported and
// not remembered as missing support.
func TestBadRequestNotAboutTheField(t *testing.T) {
	bad := `{"message":"Problems parsing JSON"}`
	url := pipelinestest.NewServer(t,
		pipelinestest.Exchange{Golden: "find-runs", Status: 200, Body: noRuns},
		pipelinestest.Exchange{Golden: "dispatch", Status: 400, Body: bad},
		pipelinestest.Exchange{Golden: "dispatch-no-details", Status: 400, Body: bad},
		pipelinestest.Exchange{Golden: "find-runs", Status: 200, Body: noRuns},
		pipelinestest.Exchange{Golden: "dispatch", Status: 200, Body: runDetails},
	).URL
	e := newClient(t, url, githubactions.Config{}, t0)
	_, err := e.c.Trigger(t.Context(), request())
	apiErr(400, "Problems parsing JSON", false, 0)(t, err)
	if _, err := e.c.Trigger(t.Context(), request()); err != nil {
		t.Fatal(err)
	}
}

func TestTriggerTimeout(t *testing.T) {
	e := newClient(t, pipelinestest.NewServer(t, pipelinestest.Exchange{Golden: "find-runs", Hang: true}).URL, githubactions.Config{}, t0)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := e.c.Trigger(ctx, request())
	var ae *pipelines.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 0 || !ae.Temporary() || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want a temporary transport APIError wrapping DeadlineExceeded", err)
	}
}

func TestStatus(t *testing.T) {
	run := pipelines.Run{ID: "999", Status: pipelines.StatusQueued, Ref: wantRef(nil)}
	tests := []struct {
		name    string
		body    string
		want    pipelines.Status
		detail  string
		wantErr bool
	}{
		{"queued", `{"id":999,"status":"queued","conclusion":null,"html_url":"https://github.com/acme/api/actions/runs/999"}`, pipelines.StatusQueued, "github: queued", false},
		{"waiting for environment approval", `{"id":999,"status":"waiting","html_url":"https://github.com/acme/api/actions/runs/999"}`, pipelines.StatusRunning, "github: waiting", false},
		{"failed", `{"id":999,"status":"completed","conclusion":"failure","html_url":"https://github.com/acme/api/actions/runs/999"}`, pipelines.StatusFailed, "github: completed (failure)", false},
		{"malformed", `[]`, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newClient(t, pipelinestest.NewServer(t, pipelinestest.Exchange{Golden: "get-run", Status: 200, Body: tt.body}).URL, githubactions.Config{}, t0)
			got, err := e.c.Status(t.Context(), run)
			if tt.wantErr {
				if !errors.Is(err, apiclient.ErrMalformedResponse) {
					t.Errorf("err = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := pipelines.Run{ID: "999", URL: "https://github.com/acme/api/actions/runs/999", Status: tt.want, Detail: tt.detail, Ref: run.Ref}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestStatusFindsUnidentifiedRun(t *testing.T) {
	pending := pipelines.Run{Status: pipelines.StatusQueued, Detail: "github: dispatched; waiting for the run to appear", Ref: wantRef(nil)}
	t.Run("not there yet", func(t *testing.T) {
		e := newClient(t, pipelinestest.NewServer(t, pipelinestest.Exchange{Golden: "find-runs-since-dispatch", Status: 200, Body: noRuns}).URL, githubactions.Config{}, t0.Add(20*time.Second))
		got, err := e.c.Status(t.Context(), pending)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(pending, got); d != "" {
			t.Errorf("(-want +got):\n%s", d)
		}
	})
	t.Run("appeared", func(t *testing.T) {
		e := newClient(t, pipelinestest.NewServer(t, pipelinestest.Exchange{Golden: "find-runs-since-dispatch", Status: 200, Body: `{"workflow_runs":[
			{"id":1000,"display_title":"Deploy (g-123)","status":"queued","html_url":"https://github.com/acme/api/actions/runs/1000","created_at":"2026-11-22T10:00:03Z"}]}`}).URL,
			githubactions.Config{}, t0.Add(20*time.Second))
		got, err := e.c.Status(t.Context(), pending)
		if err != nil {
			t.Fatal(err)
		}
		want := pipelines.Run{ID: "1000", URL: "https://github.com/acme/api/actions/runs/1000", Status: pipelines.StatusQueued, Detail: "github: queued", Ref: pending.Ref}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("(-want +got):\n%s", d)
		}
	})
	t.Run("never appeared", func(t *testing.T) {
		e := newClient(t, pipelinestest.NewServer(t, pipelinestest.Exchange{Golden: "find-runs-since-dispatch", Status: 200, Body: noRuns}).URL, githubactions.Config{}, t0.Add(githubactions.RunAppearTimeout+time.Second))
		_, err := e.c.Status(t.Context(), pending)
		if !errors.Is(err, githubactions.ErrRunNotFound) || !strings.Contains(err.Error(), "run-name") {
			t.Errorf("err = %v, want ErrRunNotFound with a hint", err)
		}
	})
	t.Run("ref cannot find it", func(t *testing.T) {
		e := newClient(t, pipelinestest.NewServer(t).URL, githubactions.Config{}, t0)
		_, err := e.c.Status(t.Context(), pipelines.Run{Ref: map[string]string{"owner": "acme", "repo": "api"}})
		if !errors.Is(err, githubactions.ErrRunNotFound) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestMapStatus(t *testing.T) {
	tests := []struct {
		status, conclusion string
		want               pipelines.Status
	}{
		{"requested", "", pipelines.StatusQueued},
		{"queued", "", pipelines.StatusQueued},
		{"pending", "", pipelines.StatusQueued},
		{"in_progress", "", pipelines.StatusRunning},
		{"waiting", "", pipelines.StatusRunning},
		{"something_new", "", pipelines.StatusRunning},
		{"completed", "success", pipelines.StatusSucceeded},
		{"completed", "neutral", pipelines.StatusSucceeded},
		{"completed", "skipped", pipelines.StatusSucceeded},
		{"completed", "failure", pipelines.StatusFailed},
		{"completed", "timed_out", pipelines.StatusFailed},
		{"completed", "startup_failure", pipelines.StatusFailed},
		{"completed", "action_required", pipelines.StatusFailed},
		{"completed", "stale", pipelines.StatusFailed},
		{"completed", "", pipelines.StatusFailed},
		{"completed", "cancelled", pipelines.StatusCancelled},
	}
	for _, tt := range tests {
		if got := githubactions.MapStatus(tt.status, tt.conclusion); got != tt.want {
			t.Errorf("MapStatus(%q, %q) = %q, want %q", tt.status, tt.conclusion, got, tt.want)
		}
	}
}

func TestCancel(t *testing.T) {
	run := pipelines.Run{ID: "999", Ref: wantRef(nil)}
	t.Run("accepted", func(t *testing.T) {
		e := newClient(t, pipelinestest.NewServer(t, pipelinestest.Exchange{Golden: "cancel", Status: 202, Body: `{}`}).URL, githubactions.Config{}, t0)
		if err := e.c.Cancel(t.Context(), run); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("already completed", func(t *testing.T) {
		e := newClient(t, pipelinestest.NewServer(t, pipelinestest.Exchange{Golden: "cancel", Status: 409, Body: `{"message":"Cannot cancel a workflow run that is completed."}`}).URL, githubactions.Config{}, t0)
		apiErr(409, "Cannot cancel a workflow run that is completed.", false, 0)(t, e.c.Cancel(t.Context(), run))
	})
	t.Run("unidentified run that has appeared", func(t *testing.T) {
		e := newClient(t, pipelinestest.NewServer(t,
			pipelinestest.Exchange{Golden: "find-runs-since-dispatch", Status: 200, Body: `{"workflow_runs":[{"id":999,"display_title":"g-123","status":"queued"}]}`},
			pipelinestest.Exchange{Golden: "cancel", Status: 202}).URL, githubactions.Config{}, t0)
		if err := e.c.Cancel(t.Context(), pipelines.Run{Ref: wantRef(nil)}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("unidentified run not yet there", func(t *testing.T) {
		e := newClient(t, pipelinestest.NewServer(t, pipelinestest.Exchange{Golden: "find-runs-since-dispatch", Status: 200, Body: noRuns}).URL, githubactions.Config{}, t0)
		if err := e.c.Cancel(t.Context(), pipelines.Run{Ref: wantRef(nil)}); !errors.Is(err, githubactions.ErrRunNotFound) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  githubactions.Config
		want []string
	}{
		{"minimal", githubactions.Config{Token: "t"}, nil},
		{"no token", githubactions.Config{}, []string{"token is required"}},
		{"bad base url", githubactions.Config{Token: "t", BaseURL: "ftp://x"}, []string{"scheme"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := tt.cfg.Validate()
			if len(errs) != len(tt.want) {
				t.Fatalf("Validate = %v, want %d errors", errs, len(tt.want))
			}
			for i, e := range errs {
				if !strings.Contains(e.Error(), tt.want[i]) {
					t.Errorf("error %d = %v, want %q", i, e, tt.want[i])
				}
			}
		})
	}
	if _, err := githubactions.New(githubactions.Config{}); err == nil {
		t.Error("New accepted a config without token")
	}
	if _, err := githubactions.New(githubactions.Config{Token: "t"}, githubactions.WithHTTPClient(nil)); err == nil {
		t.Error("New accepted a nil HTTP client")
	}
}

func TestCheckPipeline(t *testing.T) {
	target := map[string]any{"owner": "acme", "repo": "api", "workflow": "deploy.yml", "ref": "main", "gate_id_input": "gatebot_gate_id"}
	many := map[string]*pipelines.Input{}
	for i := range githubactions.MaxInputs {
		many[string(rune('a'+i))] = &pipelines.Input{Type: pipelines.TypeString}
	}
	tests := []struct {
		name string
		cfg  githubactions.Config
		def  pipelines.Definition
		want []string
	}{
		{"ok", githubactions.Config{}, pipelines.Definition{Target: target, Inputs: map[string]*pipelines.Input{"version": {}}}, nil},
		{"reserved input", githubactions.Config{}, pipelines.Definition{Target: target, Inputs: map[string]*pipelines.Input{"gatebot_gate_id": {}}}, []string{"reserved"}},
		{"too many with the gate id", githubactions.Config{}, pipelines.Definition{Target: target, Inputs: many}, []string{"at most 25"}},
		{"bad input name", githubactions.Config{}, pipelines.Definition{Target: target, Inputs: map[string]*pipelines.Input{"1 version": {}}}, []string{"not a valid"}},
		{"no way to find runs", githubactions.Config{ReturnRunDetails: bptr(false)},
			pipelines.Definition{Target: map[string]any{"owner": "acme", "repo": "api", "workflow": "deploy.yml", "ref": "main", "gate_id_input": ""}}, []string{"must not be empty"}},
		{"no gate input unless the target names it", githubactions.Config{ReturnRunDetails: bptr(false)},
			pipelines.Definition{Target: map[string]any{"owner": "acme", "repo": "api", "workflow": "deploy.yml", "ref": "main"}}, []string{"must not be empty"}},
		{"missing keys", githubactions.Config{}, pipelines.Definition{Target: map[string]any{"owner": "acme"}}, []string{"repo", "workflow", "ref"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Token = "t"
			c, err := githubactions.New(tt.cfg)
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
