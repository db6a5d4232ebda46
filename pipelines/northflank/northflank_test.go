package northflank_test

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
	"github.com/gatebot/gatebot/pipelines/northflank"
	"github.com/gatebot/gatebot/pipelines/pipelinestest"
	"github.com/google/go-cmp/cmp"
)

const token = "nf-api-token-5ecr3t-value"

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newClient(t *testing.T, ex ...pipelinestest.Exchange) (*northflank.Client, *pipelinestest.SyncBuffer, *clock, *pipelinestest.Server) {
	t.Helper()
	srv := pipelinestest.NewServer(t, ex...)
	logger, logs := pipelinestest.Logger()
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	c, err := northflank.New(northflank.Config{BaseURL: srv.URL, Token: token},
		northflank.WithLogger(logger), northflank.WithHTTPClient(srv.Client()), northflank.WithNow(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	return c, logs, clk, srv
}

type apiErr struct {
	Status     int
	Code, Msg  string
	RetryAfter time.Duration
	Temporary  bool
}

func getAPIErr(t *testing.T, err error) apiErr {
	t.Helper()
	var ae *pipelines.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want *pipelines.APIError", err)
	}
	return apiErr{ae.StatusCode, ae.Code, ae.Message, ae.RetryAfter, ae.Temporary()}
}

func wantAPIErr(want apiErr) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		if got := getAPIErr(t, err); got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	}
}

var req = pipelines.Request{
	GateID:   gate,
	Pipeline: "deploy-api",
	Target: map[string]any{
		"project_id": "web", "pipeline_id": "main", "stage": "production",
		"overrides":            map[string]any{"build-ref": map[string]any{"branch": "main"}},
		"releaseNodeOverrides": map[string]any{"api": map[string]any{"type": "registry", "origin": map[string]any{"imagePath": "nginx:1.27"}}},
	},
	Inputs:    map[string]any{"VERSION": "1.4.2", "REPLICAS": float64(3)},
	Requester: "carol",
	Approvers: []string{"alice", "bob"},
}

var ref = map[string]string{"project_id": "web", "pipeline_id": "main", "stage": "production", "name": "deploy-api gabcdefghij0123456789"}

const (
	emptyList = `{"data":{"runs":[]},"pagination":{"hasNextPage":false,"count":0}}`
	otherRuns = `{"data":{"runs":[{"id":"old-1","name":"Example run","status":"success","concluded":true,"createdAt":"2021-01-01 12:00:00.000Z","updatedAt":"2021-01-01 12:00:00.000Z"}]},"pagination":{"hasNextPage":false,"count":1}}`
	ourRun    = `{"data":{"runs":[{"id":"run-42","name":"deploy-api gabcdefghij0123456789","description":"x","status":"queued","concluded":false,"createdAt":"2026-03-01 12:00:00.000Z","updatedAt":"2026-03-01 12:00:00.000Z"},{"id":"old-1","name":"Example run","status":"success","concluded":true}]},"pagination":{"hasNextPage":false,"count":2}}`
)

func TestTrigger(t *testing.T) {
	queued := pipelines.Run{ID: "run-42", Status: pipelines.StatusQueued, Detail: "queued", Ref: ref}
	tests := []struct {
		name    string
		ex      []pipelinestest.Exchange
		timeout time.Duration
		want    pipelines.Run
		check   func(*testing.T, error)
	}{
		{
			name: "200 success text, id found by listing",
			ex: []pipelinestest.Exchange{
				{Golden: "list", Body: otherRuns},
				{Golden: "trigger", Body: "success"},
				{Golden: "list", Body: ourRun},
			},
			want: queued,
		},
		{
			name: "200 with data.id",
			ex: []pipelinestest.Exchange{
				{Golden: "list", Body: emptyList},
				{Golden: "trigger", Body: `{"data":{"id":"run-42","name":"deploy-api gabcdefghij0123456789","status":"pending","concluded":false}}`},
			},
			want: pipelines.Run{ID: "run-42", Status: pipelines.StatusQueued, Detail: "pending", Ref: ref},
		},
		{
			name: "run of this gate already exists (crash before storing)",
			ex:   []pipelinestest.Exchange{{Golden: "list", Body: ourRun}},
			want: queued,
		},
		{
			name: "found on the second page",
			ex: []pipelinestest.Exchange{
				{Golden: "list", Body: `{"data":{"runs":[]},"pagination":{"hasNextPage":true,"cursor":"c2","count":0}}`},
				{Golden: "list-page2", Body: ourRun},
			},
			want: queued,
		},
		{
			name: "accepted but not listed",
			ex: []pipelinestest.Exchange{
				{Golden: "list", Body: emptyList},
				{Golden: "trigger", Body: "success"},
				{Golden: "list", Body: otherRuns},
			},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, apiclient.ErrMalformedResponse) || !strings.Contains(err.Error(), `no run named "deploy-api gabcdefghij0123456789"`) {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name: "409 forbidden by concurrency policy",
			ex: []pipelinestest.Exchange{
				{Golden: "list", Body: emptyList},
				{Golden: "trigger", Status: 409, Body: `{"error":{"status":409,"message":"A run is already in progress","id":"conflict","details":{}}}`},
			},
			check: wantAPIErr(apiErr{Status: 409, Code: "conflict", Msg: "A run is already in progress"}),
		},
		{
			name: "lookup fails: nothing is started",
			ex:   []pipelinestest.Exchange{{Golden: "list", Status: 503, Body: `{"error":{"status":503,"message":"Service unavailable"}}`}},
			check: func(t *testing.T, err error) {
				if got := getAPIErr(t, err); got.Status != 503 || !got.Temporary || !strings.Contains(err.Error(), "look for an earlier run") {
					t.Errorf("got %+v: %v", got, err)
				}
			},
		},
		{
			name: "429 with Retry-After",
			ex: []pipelinestest.Exchange{
				{Golden: "list", Body: emptyList},
				{Golden: "trigger", Status: 429, Header: http.Header{"Retry-After": {"90"}}, Body: `{"error":{"status":429,"message":"Too many requests"}}`},
			},
			check: wantAPIErr(apiErr{Status: 429, Msg: "Too many requests", RetryAfter: 90 * time.Second, Temporary: true}),
		},
		{
			name: "429 without Retry-After uses x-ratelimit-reset",
			ex: []pipelinestest.Exchange{
				{Golden: "list", Body: emptyList},
				{Golden: "trigger", Status: 429, Header: http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"1200"}}},
			},
			check: wantAPIErr(apiErr{Status: 429, Msg: "Too Many Requests", RetryAfter: 20 * time.Minute, Temporary: true}),
		},
		{
			name: "malformed list",
			ex:   []pipelinestest.Exchange{{Golden: "list", Body: `{"data":`}},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, apiclient.ErrMalformedResponse) {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name:    "timeout",
			ex:      []pipelinestest.Exchange{{Golden: "list", Body: emptyList}, {Golden: "trigger", Hang: true}},
			timeout: 200 * time.Millisecond,
			check: func(t *testing.T, err error) {
				if !errors.Is(err, context.DeadlineExceeded) || !pipelines.IsTemporary(err) {
					t.Errorf("err = %v", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, logs, _, _ := newClient(t, tt.ex...)
			ctx := t.Context()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			run, err := c.Trigger(ctx, req)
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

func TestTriggerMinimalBody(t *testing.T) {
	c, _, _, _ := newClient(t,
		pipelinestest.Exchange{Golden: "list-minimal", Body: emptyList},
		pipelinestest.Exchange{Golden: "trigger-minimal", Body: `{"data":{"id":"r1","status":"queued"}}`},
	)
	run, err := c.Trigger(t.Context(), pipelines.Request{GateID: "g_x1", Pipeline: "2 weird_name!!",
		Target: map[string]any{"project_id": "p", "pipeline_id": "pl", "stage": "staging", "description": "Nightly release"}})
	if err != nil {
		t.Fatal(err)
	}
	if run.Ref["name"] != "weird-name gx1" {
		t.Errorf("name = %q", run.Ref["name"])
	}
}

func TestBudget(t *testing.T) {
	spent := http.Header{"X-Ratelimit-Limit": {"1000"}, "X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"600"}}
	c, _, clk, srv := newClient(t,
		pipelinestest.Exchange{Golden: "status", Header: spent, Body: `{"data":{"id":"run-42","status":"running","concluded":false}}`},
		pipelinestest.Exchange{Golden: "status", Header: http.Header{"X-Ratelimit-Remaining": {"999"}}, Body: `{"data":{"id":"run-42","status":"success","concluded":true}}`},
	)
	run := pipelines.Run{ID: "run-42", Ref: ref}
	if got, err := c.Status(t.Context(), run); err != nil || got.Status != pipelines.StatusRunning {
		t.Fatalf("first: %+v %v", got, err)
	}
	clk.add(4 * time.Minute)
	_, err := c.Status(t.Context(), run)
	wantAPIErr(apiErr{Status: 429, Code: "budget_exhausted", RetryAfter: 6 * time.Minute, Temporary: true,
		Msg: "Northflank API budget (1,000 requests/hour) is spent; not calling until it resets in 6m0s"})(t, err)
	if err := c.Cancel(t.Context(), run); !pipelines.IsTemporary(err) {
		t.Errorf("cancel during spent budget: %v", err)
	}
	if n := len(srv.Requests()); n != 1 {
		t.Fatalf("%d requests sent while the budget was spent", n)
	}
	clk.add(6 * time.Minute)
	if got, err := c.Status(t.Context(), run); err != nil || got.Status != pipelines.StatusSucceeded {
		t.Fatalf("after reset: %+v %v", got, err)
	}
}

func TestBudgetResetAsUnixTime(t *testing.T) {
	reset := time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC)
	for name, v := range map[string]string{"seconds": "1772368200", "millis": "1772368200000"} {
		t.Run(name, func(t *testing.T) {
			if got := reset.Unix(); got != 1772368200 {
				t.Fatalf("fixture: %d", got)
			}
			c, _, _, _ := newClient(t, pipelinestest.Exchange{Golden: "status", Header: http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {v}},
				Body: `{"data":{"id":"run-42","status":"running"}}`})
			run := pipelines.Run{ID: "run-42", Ref: ref}
			_, _ = c.Status(t.Context(), run)
			_, err := c.Status(t.Context(), run)
			if got := getAPIErr(t, err); got.RetryAfter != 30*time.Minute {
				t.Errorf("RetryAfter = %v", got.RetryAfter)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	tests := []struct {
		status    string
		concluded bool
		want      pipelines.Status
	}{
		{"pending", false, pipelines.StatusQueued},
		{"queued", false, pipelines.StatusQueued},
		{"running", false, pipelines.StatusRunning},
		{"waiting", false, pipelines.StatusRunning},
		{"retrying", false, pipelines.StatusRunning},
		{"async_wait", false, pipelines.StatusRunning},
		{"approval_wait", false, pipelines.StatusRunning},
		{"aborting", false, pipelines.StatusRunning},
		{"unknown", false, pipelines.StatusRunning},
		{"success", true, pipelines.StatusSucceeded},
		{"failure", true, pipelines.StatusFailed},
		{"aborted", true, pipelines.StatusCancelled},
		{"skipped", true, pipelines.StatusCancelled},
		{"aborting", true, pipelines.StatusCancelled},
		{"unknown", true, pipelines.StatusFailed},
	}
	for _, tt := range tests {
		t.Run(tt.status, func(t *testing.T) {
			concluded := "false"
			if tt.concluded {
				concluded = "true"
			}
			c, _, _, _ := newClient(t, pipelinestest.Exchange{Golden: "status",
				Body: `{"data":{"apiVersion":"v1.2","spec":{},"id":"run-42","name":"deploy-api gabcdefghij0123456789","status":"` + tt.status + `","concluded":` + concluded + `}}`})
			got, err := c.Status(t.Context(), pipelines.Run{ID: "run-42", Ref: ref})
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tt.want || got.Detail != tt.status {
				t.Errorf("got %+v, want %s", got, tt.want)
			}
		})
	}
	c, _, _, _ := newClient(t,
		pipelinestest.Exchange{Golden: "status", Status: 404, Body: `{"error":{"status":404,"message":"Not found","id":"not-found"}}`},
		pipelinestest.Exchange{Golden: "status", Body: `{"data":{}}`},
	)
	_, err := c.Status(t.Context(), pipelines.Run{ID: "run-42", Ref: ref})
	wantAPIErr(apiErr{Status: 404, Code: "not-found", Msg: "Not found"})(t, err)
	if _, err := c.Status(t.Context(), pipelines.Run{ID: "run-42", Ref: ref}); !errors.Is(err, apiclient.ErrMalformedResponse) {
		t.Errorf("no status: %v", err)
	}
}

func TestCancel(t *testing.T) {
	c, _, _, _ := newClient(t,
		pipelinestest.Exchange{Golden: "abort", Body: `{"data":{"id":"run-42","status":"aborting","concluded":false}}`},
		pipelinestest.Exchange{Golden: "abort", Status: 400, Body: `{"error":{"status":400,"message":"Run has already concluded"}}`},
	)
	run := pipelines.Run{ID: "run-42", Ref: ref}
	if err := c.Cancel(t.Context(), run); err != nil {
		t.Fatal(err)
	}
	wantAPIErr(apiErr{Status: 400, Msg: "Run has already concluded"})(t, c.Cancel(t.Context(), run))
	if err := c.Cancel(t.Context(), pipelines.Run{ID: "x"}); err == nil {
		t.Error("run without ref accepted")
	}
}

func TestCheckPipeline(t *testing.T) {
	c, _, _, _ := newClient(t)
	tests := []struct {
		name   string
		target map[string]any
		want   []string
	}{
		{"ok", req.Target, nil},
		{"ok with name and description", map[string]any{"project_id": "p", "pipeline_id": "q", "stage": "s", "name": "Nightly release", "description": "Built by gatebot: ok!"}, nil},
		{"missing", map[string]any{"stages": "x"}, []string{"target.stages is not a known key", "target.pipeline_id is required", "target.project_id is required", "target.stage is required"}},
		{"bad name, description, overrides", map[string]any{"project_id": "p", "pipeline_id": "q", "stage": "s", "name": "nightly_release", "description": "ship it 🚀 #1", "overrides": "x"},
			[]string{"target.overrides must be a mapping", "target.name: \"nightly_release\" does not match", "target.description: description \"ship it 🚀 #1\" has characters Northflank refuses"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := c.CheckPipeline(pipelines.Definition{Name: "p", Target: tt.target})
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
	if errs := (northflank.Config{Token: "t"}).Validate(); len(errs) != 0 {
		t.Error(errs)
	}
	errs := (northflank.Config{BaseURL: "https://api.northflank.com/v1"}).Validate()
	if len(errs) != 2 || !strings.Contains(errs[0].Error(), "must not end in /v1") || !strings.Contains(errs[1].Error(), "token is required") {
		t.Errorf("errs = %v", errs)
	}
}
