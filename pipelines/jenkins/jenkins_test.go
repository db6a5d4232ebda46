package jenkins_test

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
	"github.com/gatebot/gatebot/pipelines/jenkins"
	"github.com/gatebot/gatebot/pipelines/pipelinestest"
	"github.com/google/go-cmp/cmp"
)

const token = "11aTestApiTokenThatMustNeverLeak"

var basic = base64.StdEncoding.EncodeToString([]byte("gatebot:" + token))

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func bptr(b bool) *bool { return &b }

func newClient(t *testing.T, base string, cfg jenkins.Config) *jenkins.Client {
	t.Helper()
	cfg.BaseURL, cfg.User, cfg.APIToken = base+"/jenkins", "gatebot", token
	var logs bytes.Buffer
	c, err := jenkins.New(cfg,
		jenkins.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		jenkins.WithNow(func() time.Time { return t0 }))
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
		target = map[string]any{"job": "platform/deploy api"}
	}
	return pipelines.Request{
		GateID:   "g-123",
		Pipeline: "deploy-api",
		Target:   target,
		Inputs:   map[string]any{"VERSION": "1.4.2", "REPLICAS": float64(3), "DRY_RUN": false},
	}
}

func ref(extra map[string]string) map[string]string {
	r := map[string]string{"job": "platform/deploy api", "gate_id": "g-123", "gate_id_param": "GATE_ID"}
	for k, v := range extra {
		if v == "" {
			delete(r, k)
		} else {
			r[k] = v
		}
	}
	return r
}

const noBuilds = `{"_class":"org.jenkinsci.plugins.workflow.job.WorkflowJob","builds":[]}`

func TestTrigger(t *testing.T) {
	tests := []struct {
		name    string
		target  map[string]any
		script  []pipelinestest.Exchange
		want    pipelines.Run
		wantErr func(*testing.T, error)
	}{
		{
			name: "queued",
			script: []pipelinestest.Exchange{
				{Golden: "find-builds", Status: 200, Body: noBuilds},
				{Golden: "build-with-parameters", Status: 201, Header: http.Header{"Location": {"https://jenkins.internal.example.com/jenkins/queue/item/417/"}}},
			},
			want: pipelines.Run{ID: "queue-417", URL: pipelinestest.BaseURL + "/jenkins/job/platform/job/deploy%20api/", Status: pipelines.StatusQueued, Detail: "jenkins: queued", Ref: ref(map[string]string{"queue_id": "417"})},
		},
		{
			name: "a build for the gate exists",
			script: []pipelinestest.Exchange{
				{Golden: "find-builds", Status: 200, Body: `{"builds":[
					{"number":43,"url":"https://ci/job/platform/job/deploy%20api/43/","building":true,"actions":[{"_class":"hudson.model.ParametersAction","parameters":[{"name":"GATE_ID","value":"g-1234"}]}]},
					{"number":42,"url":"https://ci/job/platform/job/deploy%20api/42/","building":false,"result":"SUCCESS","actions":[{},{"parameters":[{"name":"VERSION","value":"1.4.2"},{"name":"GATE_ID","value":"g-123"}]}]}]}`},
			},
			want: pipelines.Run{ID: "42", URL: "https://ci/job/platform/job/deploy%20api/42/", Status: pipelines.StatusSucceeded, Detail: "jenkins: success", Ref: ref(map[string]string{"build": "42"})},
		},
		{
			name:   "no gate parameter: no lookup",
			target: map[string]any{"job": "deploy", "gate_id_parameter": ""},
			script: []pipelinestest.Exchange{
				{Golden: "build-with-parameters-no-gate", Status: 201, Header: http.Header{"Location": {pipelinestest.BaseURL + "/jenkins/queue/item/9"}}},
			},
			want: pipelines.Run{ID: "queue-9", URL: pipelinestest.BaseURL + "/jenkins/job/deploy/", Status: pipelines.StatusQueued, Detail: "jenkins: queued", Ref: map[string]string{"job": "deploy", "gate_id": "g-123", "gate_id_param": "", "queue_id": "9"}},
		},
		{
			name: "201 without a queue item",
			script: []pipelinestest.Exchange{
				{Golden: "find-builds", Status: 200, Body: noBuilds},
				{Golden: "build-with-parameters", Status: 201},
			},
			wantErr: apiErr(201, "Jenkins accepted the request but named no queue item (is the job parameterized, and Jenkins 2.x?)", false, 0),
		},
		{
			name: "302 from an old Jenkins is not followed",
			script: []pipelinestest.Exchange{
				{Golden: "find-builds", Status: 200, Body: noBuilds},
				{Golden: "build-with-parameters", Status: 302, Header: http.Header{"Location": {pipelinestest.BaseURL + "/jenkins/job/platform/job/deploy%20api/"}}},
			},
			wantErr: apiErr(302, "Found", false, 0),
		},
		{
			name:    "404 job",
			script:  []pipelinestest.Exchange{{Golden: "find-builds", Status: 404, Header: http.Header{"Content-Type": {"text/html;charset=utf-8"}}, Body: "<html><body>Not Found</body></html>"}},
			wantErr: apiErr(404, "Not Found", false, 0),
		},
		{
			name:    "401 echoing the token",
			script:  []pipelinestest.Exchange{{Golden: "find-builds", Status: 401, Header: http.Header{"Content-Type": {"text/plain"}}, Body: "Invalid password/token for user: gatebot " + token}},
			wantErr: apiErr(401, "Invalid password/token for user: gatebot [REDACTED]", false, 0),
		},
		{
			name: "503 with Retry-After",
			script: []pipelinestest.Exchange{
				{Golden: "find-builds", Status: 200, Body: noBuilds},
				{Golden: "build-with-parameters", Status: 503, Header: http.Header{"Retry-After": {"120"}, "Content-Type": {"text/html"}}, Body: "<html>Jenkins is getting ready to work</html>"},
			},
			wantErr: apiErr(503, "Service Unavailable", true, 2*time.Minute),
		},
		{
			name:   "malformed build list",
			script: []pipelinestest.Exchange{{Golden: "find-builds", Status: 200, Body: `<html>`}},
			wantErr: func(t *testing.T, err error) {
				if !errors.Is(err, apiclient.ErrMalformedResponse) {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name:   "bad target",
			target: map[string]any{"job": "a//b", "token": "x"},
			wantErr: func(t *testing.T, err error) {
				if err == nil || !strings.Contains(err.Error(), "target.token: unknown key") || !strings.Contains(err.Error(), "empty, . or .. segment") {
					t.Errorf("err = %v", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := pipelinestest.NewServer(t, tt.script...)
			c := newClient(t, srv.URL, jenkins.Config{})
			tt.want.URL = strings.ReplaceAll(tt.want.URL, pipelinestest.BaseURL, srv.URL)
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
	c := newClient(t, pipelinestest.NewServer(t, pipelinestest.Exchange{Golden: "find-builds", Hang: true}).URL, jenkins.Config{})
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
		if ae.Provider != "jenkins" || ae.StatusCode != status || ae.Message != msg || ae.Temporary() != temporary || ae.RetryAfter != retryAfter {
			t.Errorf("APIError = {%s %d %q temporary=%v retry=%s}, want {jenkins %d %q %v %s}",
				ae.Provider, ae.StatusCode, ae.Message, ae.Temporary(), ae.RetryAfter, status, msg, temporary, retryAfter)
		}
	}
}

func TestStatus(t *testing.T) {
	queued := pipelines.Run{ID: "queue-417", Status: pipelines.StatusQueued, Ref: ref(map[string]string{"queue_id": "417"})}
	building := pipelines.Run{ID: "42", Status: pipelines.StatusRunning, Ref: ref(map[string]string{"queue_id": "417", "build": "42"})}
	buildURL := "https://ci/job/platform/job/deploy%20api/42/"
	tests := []struct {
		name    string
		cfg     jenkins.Config
		run     pipelines.Run
		script  []pipelinestest.Exchange
		want    pipelines.Run
		wantErr func(*testing.T, error)
	}{
		{
			name:   "still queued",
			run:    queued,
			script: []pipelinestest.Exchange{{Golden: "queue-item", Status: 200, Body: `{"_class":"hudson.model.Queue$WaitingItem","id":417,"cancelled":false,"why":"Waiting for next available executor on ‘linux’","executable":null}`}},
			want:   pipelines.Run{ID: "queue-417", URL: pipelinestest.BaseURL + "/jenkins/job/platform/job/deploy%20api/", Status: pipelines.StatusQueued, Detail: "jenkins: queued (Waiting for next available executor on ‘linux’)", Ref: queued.Ref},
		},
		{
			name:   "cancelled in the queue",
			run:    queued,
			script: []pipelinestest.Exchange{{Golden: "queue-item", Status: 200, Body: `{"_class":"hudson.model.Queue$CancelledItem","id":417,"cancelled":true}`}},
			want:   pipelines.Run{ID: "queue-417", URL: pipelinestest.BaseURL + "/jenkins/job/platform/job/deploy%20api/", Status: pipelines.StatusCancelled, Detail: "jenkins: cancelled while queued", Ref: queued.Ref},
		},
		{
			name: "queue item names its build",
			run:  queued,
			script: []pipelinestest.Exchange{
				{Golden: "queue-item", Status: 200, Body: `{"_class":"hudson.model.Queue$LeftItem","id":417,"cancelled":false,"executable":{"_class":"org.jenkinsci.plugins.workflow.job.WorkflowRun","number":42,"url":"` + buildURL + `"}}`},
				{Golden: "build", Status: 200, Body: `{"number":42,"url":"` + buildURL + `","building":true,"result":null}`},
			},
			want: pipelines.Run{ID: "42", URL: buildURL, Status: pipelines.StatusRunning, Detail: "jenkins: building", Ref: building.Ref},
		},
		{
			name: "queue item expired: found by gate id",
			run:  queued,
			script: []pipelinestest.Exchange{
				{Golden: "queue-item", Status: 404, Header: http.Header{"Content-Type": {"text/html"}}, Body: "<html/>"},
				{Golden: "find-builds", Status: 200, Body: `{"builds":[{"number":42,"url":"` + buildURL + `","building":false,"result":"FAILURE","actions":[{"parameters":[{"name":"GATE_ID","value":"g-123"}]}]}]}`},
			},
			want: pipelines.Run{ID: "42", URL: buildURL, Status: pipelines.StatusFailed, Detail: "jenkins: failure", Ref: building.Ref},
		},
		{
			name: "queue item expired: not found",
			run:  queued,
			script: []pipelinestest.Exchange{
				{Golden: "queue-item", Status: 404, Header: http.Header{"Content-Type": {"text/html"}}, Body: "<html/>"},
				{Golden: "find-builds", Status: 200, Body: noBuilds},
			},
			wantErr: func(t *testing.T, err error) {
				if !errors.Is(err, jenkins.ErrRunNotFound) {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name:   "build unstable counts as failed",
			run:    building,
			script: []pipelinestest.Exchange{{Golden: "build", Status: 200, Body: `{"number":42,"url":"` + buildURL + `","building":false,"result":"UNSTABLE"}`}},
			want:   pipelines.Run{ID: "42", URL: buildURL, Status: pipelines.StatusFailed, Detail: "jenkins: unstable", Ref: building.Ref},
		},
		{
			name:   "unstable_is_failure: false",
			cfg:    jenkins.Config{UnstableIsFailure: bptr(false)},
			run:    building,
			script: []pipelinestest.Exchange{{Golden: "build", Status: 200, Body: `{"number":42,"url":"` + buildURL + `","building":false,"result":"UNSTABLE"}`}},
			want:   pipelines.Run{ID: "42", URL: buildURL, Status: pipelines.StatusSucceeded, Detail: "jenkins: unstable", Ref: building.Ref},
		},
		{
			name:    "500 on the build",
			run:     building,
			script:  []pipelinestest.Exchange{{Golden: "build", Status: 500, Header: http.Header{"Content-Type": {"text/html"}}, Body: "<html>Oops</html>"}},
			wantErr: apiErr(500, "Internal Server Error", true, 0),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := pipelinestest.NewServer(t, tt.script...)
			c := newClient(t, srv.URL, tt.cfg)
			tt.want.URL = strings.ReplaceAll(tt.want.URL, pipelinestest.BaseURL, srv.URL)
			got, err := c.Status(t.Context(), tt.run)
			if tt.wantErr != nil {
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

// Status returns a new Ref rather than writing to the caller's map, which
// may be shared with the stored gate.
func TestStatusDoesNotMutateRef(t *testing.T) {
	run := pipelines.Run{ID: "queue-417", Ref: ref(map[string]string{"queue_id": "417"})}
	before := ref(map[string]string{"queue_id": "417"})
	c := newClient(t, pipelinestest.NewServer(t,
		pipelinestest.Exchange{Golden: "queue-item", Status: 200, Body: `{"id":417,"executable":{"number":42,"url":"u"}}`},
		pipelinestest.Exchange{Golden: "build", Status: 200, Body: `{"number":42,"url":"u","building":true}`}).URL, jenkins.Config{})
	if _, err := c.Status(t.Context(), run); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(before, run.Ref); d != "" {
		t.Errorf("caller's Ref changed:\n%s", d)
	}
}

func TestMapBuild(t *testing.T) {
	tests := []struct {
		building bool
		result   string
		unstable bool
		want     pipelines.Status
	}{
		{true, "", true, pipelines.StatusRunning},
		{false, "", true, pipelines.StatusRunning},
		{false, "SUCCESS", true, pipelines.StatusSucceeded},
		{false, "UNSTABLE", true, pipelines.StatusFailed},
		{false, "UNSTABLE", false, pipelines.StatusSucceeded},
		{false, "FAILURE", true, pipelines.StatusFailed},
		{false, "NOT_BUILT", true, pipelines.StatusFailed},
		{false, "ABORTED", true, pipelines.StatusCancelled},
		{false, "SOMETHING_NEW", true, pipelines.StatusFailed},
	}
	for _, tt := range tests {
		if got := jenkins.MapBuild(tt.building, tt.result, tt.unstable); got != tt.want {
			t.Errorf("MapBuild(%v, %q, %v) = %q, want %q", tt.building, tt.result, tt.unstable, got, tt.want)
		}
	}
}

func TestCancel(t *testing.T) {
	queued := pipelines.Run{ID: "queue-417", Ref: ref(map[string]string{"queue_id": "417"})}
	building := pipelines.Run{ID: "42", Ref: ref(map[string]string{"queue_id": "417", "build": "42"})}
	waiting := `{"id":417,"cancelled":false,"why":"Waiting"}`
	running := `{"number":42,"url":"u","building":true}`
	tests := []struct {
		name    string
		run     pipelines.Run
		script  []pipelinestest.Exchange
		wantErr func(*testing.T, error)
	}{
		{"queued: cancelItem answers 204", queued, []pipelinestest.Exchange{
			{Golden: "queue-item", Status: 200, Body: waiting},
			{Golden: "cancel-item", Status: 204},
		}, nil},
		{"queued: cancelItem redirects (older Jenkins)", queued, []pipelinestest.Exchange{
			{Golden: "queue-item", Status: 200, Body: waiting},
			{Golden: "cancel-item", Status: 302, Header: http.Header{"Location": {pipelinestest.BaseURL + "/jenkins/queue/"}}},
		}, nil},
		{"building: stop redirects to Jenkins' own root URL", building, []pipelinestest.Exchange{
			{Golden: "build", Status: 200, Body: running},
			{Golden: "stop", Status: 302, Header: http.Header{"Location": {"https://jenkins.internal.example.com/job/platform/job/deploy%20api/42/"}}},
		}, nil},
		{"queued item became a build", queued, []pipelinestest.Exchange{
			{Golden: "queue-item", Status: 200, Body: `{"id":417,"executable":{"number":42,"url":"u"}}`},
			{Golden: "build", Status: 200, Body: running},
			{Golden: "stop", Status: 302, Header: http.Header{"Location": {pipelinestest.BaseURL + "/jenkins/job/platform/job/deploy%20api/42/"}}},
		}, nil},
		{"cancelItem 404: the item just became a build, which is stopped", queued, []pipelinestest.Exchange{
			{Golden: "queue-item", Status: 200, Body: waiting},
			{Golden: "cancel-item", Status: 404, Header: http.Header{"Content-Type": {"text/html"}}, Body: "Provided id (417) not found"},
			{Golden: "queue-item", Status: 200, Body: `{"id":417,"executable":{"number":42,"url":"u"}}`},
			{Golden: "build", Status: 200, Body: running},
			{Golden: "stop", Status: 302, Header: http.Header{"Location": {pipelinestest.BaseURL + "/jenkins/job/platform/job/deploy%20api/42/"}}},
		}, nil},
		{"cancelItem 404: the build already finished", queued, []pipelinestest.Exchange{
			{Golden: "queue-item", Status: 200, Body: waiting},
			{Golden: "cancel-item", Status: 404, Body: "Provided id (417) not found"},
			{Golden: "queue-item", Status: 200, Body: `{"id":417,"executable":{"number":42,"url":"u"}}`},
			{Golden: "build", Status: 200, Body: `{"number":42,"url":"u","building":false,"result":"ABORTED"}`},
		}, nil},
		{"cancelItem 404 and still queued: the 404 is returned", queued, []pipelinestest.Exchange{
			{Golden: "queue-item", Status: 200, Body: waiting},
			{Golden: "cancel-item", Status: 404, Body: "Provided id (417) not found"},
			{Golden: "queue-item", Status: 200, Body: waiting},
		}, apiErr(404, "Provided id (417) not found", false, 0)},
		{"already finished: nothing sent", building, []pipelinestest.Exchange{
			{Golden: "build", Status: 200, Body: `{"number":42,"url":"u","building":false,"result":"SUCCESS"}`},
		}, nil},
		{"stop forbidden", building, []pipelinestest.Exchange{
			{Golden: "build", Status: 200, Body: running},
			{Golden: "stop", Status: 403, Header: http.Header{"Content-Type": {"text/html"}}, Body: "<html/>"},
		}, apiErr(403, "Forbidden", false, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, pipelinestest.NewServer(t, tt.script...).URL, jenkins.Config{})
			err := c.Cancel(t.Context(), tt.run)
			if tt.wantErr != nil {
				tt.wantErr(t, err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestConfigAndCheck(t *testing.T) {
	if errs := (jenkins.Config{}).Validate(); len(errs) != 3 {
		t.Errorf("Validate(empty) = %v, want base_url, user, api_token", errs)
	}
	c, err := jenkins.New(jenkins.Config{BaseURL: "https://ci.example.com", User: "u", APIToken: "t"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		def  pipelines.Definition
		want []string
	}{
		{"ok", pipelines.Definition{Target: map[string]any{"job": "a/b"}, Inputs: map[string]*pipelines.Input{"VERSION": {}}}, nil},
		{"reserved", pipelines.Definition{Target: map[string]any{"job": "a"}, Inputs: map[string]*pipelines.Input{"GATE_ID": {}}}, []string{"reserved"}},
		{"renamed gate parameter frees GATE_ID", pipelines.Definition{Target: map[string]any{"job": "a", "gate_id_parameter": "GATEBOT"}, Inputs: map[string]*pipelines.Input{"GATE_ID": {}}}, nil},
		{"bad names", pipelines.Definition{Target: map[string]any{"job": 7, "gate_id_parameter": "a b"}, Inputs: map[string]*pipelines.Input{"1x": {}}}, []string{"want a string", "not a valid parameter name", "not a valid Jenkins parameter"}},
		{"missing job", pipelines.Definition{Target: map[string]any{}}, []string{"target.job is required"}},
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
