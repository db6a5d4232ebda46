package opsera_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/apiclient"
	"github.com/gatebot/gatebot/pipelines/opsera"
	"github.com/gatebot/gatebot/pipelines/pipelinestest"
	"github.com/google/go-cmp/cmp"
)

const (
	token = "ops-pat-5ecr3t-value"
	pid   = "5fd56d90979ee048ee660624"
)

func newClient(t *testing.T, ex ...pipelinestest.Exchange) (*opsera.Client, *pipelinestest.SyncBuffer) {
	t.Helper()
	srv := pipelinestest.NewServer(t, ex...)
	logger, logs := pipelinestest.Logger()
	c, err := opsera.New(opsera.Config{BaseURL: srv.URL, Token: token}, opsera.WithLogger(logger), opsera.WithHTTPClient(srv.Client()))
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

func asAPIErr(t *testing.T, err error) apiErr {
	t.Helper()
	var ae *pipelines.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v (%T), want *pipelines.APIError", err, err)
	}
	return apiErr{ae.StatusCode, ae.Code, ae.Message, ae.RetryAfter, ae.Temporary()}
}

func wantAPIErr(want apiErr) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		if got := asAPIErr(t, err); got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	}
}

var req = pipelines.Request{GateID: "g_abcdefghij0123456789", Pipeline: "deploy", Target: map[string]any{"pipeline_id": pid}}

func TestTrigger(t *testing.T) {
	tests := []struct {
		name    string
		ex      pipelinestest.Exchange
		timeout time.Duration
		want    pipelines.Run
		check   func(*testing.T, error)
	}{
		{
			name: "executed",
			ex:   pipelinestest.Exchange{Golden: "run", Body: `{"status":"executed","message":"Run pipeline request submitted successfully for (` + pid + `)","runCount":2}`},
			want: pipelines.Run{ID: "2", Status: pipelines.StatusQueued, Detail: "Run pipeline request submitted successfully for (" + pid + ")",
				Ref: map[string]string{"pipeline_id": pid, "run_count": "2"}},
		},
		{
			name: "runCount as string",
			ex:   pipelinestest.Exchange{Golden: "run", Status: 201, Body: `{"status":"executed","runCount":"7"}`},
			want: pipelines.Run{ID: "7", Status: pipelines.StatusQueued, Ref: map[string]string{"pipeline_id": pid, "run_count": "7"}},
		},
		{
			name:  "failed inside 200",
			ex:    pipelinestest.Exchange{Golden: "run", Body: `{"status":"failed","message":"Pipeline ` + pid + ` is currently in a paused state and cannot be run."}`},
			check: wantAPIErr(apiErr{Status: 200, Code: "failed", Msg: "Pipeline " + pid + " is currently in a paused state and cannot be run."}),
		},
		{
			name: "executed without runCount",
			ex:   pipelinestest.Exchange{Golden: "run", Body: `{"status":"executed","message":"ok"}`},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, apiclient.ErrMalformedResponse) || !strings.Contains(err.Error(), `no usable runCount ("")`) {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name:  "unknown status word",
			ex:    pipelinestest.Exchange{Golden: "run", Body: `{"status":"weird","runCount":1}`},
			check: wantAPIErr(apiErr{Status: 200, Code: "weird", Msg: "unexpected answer"}),
		},
		{
			name:  "403 wrong scope",
			ex:    pipelinestest.Exchange{Golden: "run", Status: 403, Body: `{"status":"failed","message":"Access denied: token scope"}`},
			check: wantAPIErr(apiErr{Status: 403, Msg: "Access denied: token scope"}),
		},
		{
			name:  "502",
			ex:    pipelinestest.Exchange{Golden: "run", Status: 502, Body: `bad gateway`},
			check: wantAPIErr(apiErr{Status: 502, Msg: "bad gateway", Temporary: true}),
		},
		{
			name:  "429 Retry-After",
			ex:    pipelinestest.Exchange{Golden: "run", Status: 429, Header: http.Header{"Retry-After": {"12"}}},
			check: wantAPIErr(apiErr{Status: 429, Msg: "Too Many Requests", RetryAfter: 12 * time.Second, Temporary: true}),
		},
		{
			name: "malformed",
			ex:   pipelinestest.Exchange{Golden: "run", Body: `Run submitted`},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, apiclient.ErrMalformedResponse) {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name:    "timeout",
			ex:      pipelinestest.Exchange{Golden: "run", Hang: true},
			timeout: 100 * time.Millisecond,
			check: func(t *testing.T, err error) {
				if !errors.Is(err, context.DeadlineExceeded) || !pipelines.IsTemporary(err) {
					t.Errorf("err = %v", err)
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

func TestTriggerRefusesWithoutCalling(t *testing.T) {
	c, _ := newClient(t)
	if _, err := c.Trigger(t.Context(), pipelines.Request{GateID: "g", Target: map[string]any{}}); err == nil {
		t.Error("missing pipeline_id accepted")
	}
	if _, err := c.Trigger(t.Context(), pipelines.Request{GateID: "g", Target: req.Target, Inputs: map[string]any{"v": "1"}}); err == nil {
		t.Error("inputs accepted")
	}
}

func TestStatus(t *testing.T) {
	run := pipelines.Run{ID: "3", Status: pipelines.StatusQueued, Ref: map[string]string{"pipeline_id": pid, "run_count": "3"}}
	tests := []struct {
		body       string
		wantStatus pipelines.Status
		wantDetail string
	}{
		{`{"status":"success","message":"Pipeline: X's Run 3 was successful."}`, pipelines.StatusSucceeded, "success: Pipeline: X's Run 3 was successful."},
		{`{"status":"failed","message":"Run 3 failed at step build"}`, pipelines.StatusFailed, "failed: Run 3 failed at step build"},
		{`{"status":"stopped","message":"stopped by user"}`, pipelines.StatusCancelled, "stopped: stopped by user"},
		{`{"status":"success","message":"pipeline: X's run 3 was successful"}`, pipelines.StatusSucceeded, "success: pipeline: X's run 3 was successful"},
		{`{"status":"success","message":"Status retrieved successfully"}`, pipelines.StatusRunning, "success: Status retrieved successfully (Opsera did not say run 3 was successful; still following it)"},
		{`{"status":"success","message":"Pipeline: X's Run 2 was successful."}`, pipelines.StatusRunning, "success: Pipeline: X's Run 2 was successful. (Opsera did not say run 3 was successful; still following it)"},
		{`{"status":"success"}`, pipelines.StatusRunning, "success (Opsera did not say run 3 was successful; still following it)"},
		{`{"status":"running"}`, pipelines.StatusRunning, "running"},
		{`{"status":"queued"}`, pipelines.StatusQueued, "queued"},
		{`{"status":"in progress","message":"step 2"}`, pipelines.StatusRunning, "in progress: step 2"},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			c, _ := newClient(t, pipelinestest.Exchange{Golden: "status", Body: tt.body})
			got, err := c.Status(t.Context(), run)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tt.wantStatus || got.Detail != tt.wantDetail || got.ID != "3" || got.Ref["pipeline_id"] != pid {
				t.Errorf("got %+v", got)
			}
		})
	}
	c, _ := newClient(t, pipelinestest.Exchange{Golden: "status", Status: 500})
	if _, err := c.Status(t.Context(), run); !pipelines.IsTemporary(err) {
		t.Errorf("500: %v", err)
	}
	if _, err := c.Status(t.Context(), pipelines.Run{ID: "x", Ref: map[string]string{"pipeline_id": pid}}); err == nil {
		t.Error("non-numeric run count accepted")
	}
}

func TestCancel(t *testing.T) {
	run := pipelines.Run{ID: "3", Ref: map[string]string{"pipeline_id": pid, "run_count": "3"}}
	c, _ := newClient(t,
		pipelinestest.Exchange{Golden: "stop", Body: `{"status":"success","message":"The pipeline has been stopped."}`},
		pipelinestest.Exchange{Golden: "stop", Body: `{"status":"failed","message":"Pipeline is not running"}`},
	)
	if err := c.Cancel(t.Context(), run); err != nil {
		t.Fatal(err)
	}
	err := c.Cancel(t.Context(), run)
	wantAPIErr(apiErr{Status: 200, Code: "failed", Msg: "Pipeline is not running"})(t, err)
}

func TestCheckPipeline(t *testing.T) {
	c, _ := newClient(t)
	tests := []struct {
		def  pipelines.Definition
		want []string
	}{
		{pipelines.Definition{Target: map[string]any{"pipeline_id": pid}}, nil},
		{pipelines.Definition{Target: map[string]any{"pipeline_id": "deploy", "stage": "x"}}, []string{"target.stage is not a known key", "not an Opsera pipeline id"}},
		{pipelines.Definition{Target: map[string]any{}, Inputs: map[string]*pipelines.Input{"version": {Type: pipelines.TypeString}}},
			[]string{"target.pipeline_id is required", "inputs.version: Opsera's run API takes only the pipeline id"}},
	}
	for _, tt := range tests {
		errs := c.CheckPipeline(tt.def)
		if len(errs) != len(tt.want) {
			t.Errorf("%v: errs = %v", tt.def.Target, errs)
			continue
		}
		for i, w := range tt.want {
			if !strings.Contains(errs[i].Error(), w) {
				t.Errorf("errs[%d] = %v, want %q", i, errs[i], w)
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if errs := (opsera.Config{Token: "t"}).Validate(); len(errs) != 0 {
		t.Errorf("valid config: %v", errs)
	}
	errs := (opsera.Config{BaseURL: "app.opsera.io"}).Validate()
	if len(errs) != 2 || !strings.Contains(errs[0].Error(), "base_url") || !strings.Contains(errs[1].Error(), "token is required") {
		t.Errorf("errs = %v", errs)
	}
}
