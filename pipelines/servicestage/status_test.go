package servicestage_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/pipelinestest"
	"github.com/gatebot/gatebot/pipelines/servicestage"
	"github.com/google/go-cmp/cmp"
)

// TestMapStatus lists every documented release task status code
// (servicestage_06_0246) and shows undocumented ones are known as such.
func TestMapStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code   string
		want   pipelines.Status
		detail string
		known  bool
	}{
		{"1", pipelines.StatusQueued, "initialization successful (1)", true},
		{"2", pipelines.StatusSucceeded, "release successful (2)", true},
		{"3", pipelines.StatusFailed, "release failed (3)", true},
		{"4", pipelines.StatusRunning, "releasing (4)", true},
		{"5", pipelines.StatusRunning, "to be approved (5)", true},
		{"7", pipelines.StatusRunning, "pause (7)", true},
		{"9", pipelines.StatusCancelled, "skip (9)", true},
		{"10", pipelines.StatusRunning, "rolling back (10)", true},
		{"11", pipelines.StatusFailed, "rollback successful (11)", true},
		{"12", pipelines.StatusFailed, "rollback failed (12)", true},
		{"13", pipelines.StatusRunning, "stopping (13)", true},
		{"14", pipelines.StatusRunning, "restarting (14)", true},
		{" 2 ", pipelines.StatusSucceeded, "release successful (2)", true},
		{"6", pipelines.StatusRunning, "status 6 (a code ServiceStage does not document)", false},
		{"8", pipelines.StatusRunning, "status 8 (a code ServiceStage does not document)", false},
		{"15", pipelines.StatusRunning, "status 15 (a code ServiceStage does not document)", false},
		{"SUCCESS", pipelines.StatusRunning, "status SUCCESS (a code ServiceStage does not document)", false},
		{"", pipelines.StatusRunning, "no status reported (ServiceStage documents none missing)", false},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			t.Parallel()
			st, d, known := servicestage.MapStatus(tt.code)
			if st != tt.want || d != tt.detail || known != tt.known {
				t.Errorf("MapStatus(%q) = %s %q %v, want %s %q %v", tt.code, st, d, known, tt.want, tt.detail, tt.known)
			}
		})
	}
	// 11 and 12 end a rollback: both final.
	for _, code := range []string{"2", "3", "9", "11", "12"} {
		if st, _, _ := servicestage.MapStatus(code); !st.Terminal() {
			t.Errorf("code %s is not terminal", code)
		}
	}
}

func records(status string) string {
	return `{"count":2,"records":[{"id":286542,"pipeline_id":"` + releaseID + `","trigger":1,"status":4},{"id":286541,"pipeline_id":"` + releaseID + `","trigger":1,"status":` + status + `}]}`
}

func list(status string) string {
	return `{"pipelines":[{"id":"other","name":"x","status":2},{"id":"` + releaseID + `","name":"release-api","model_version":2,"config_mode":"ui","status":` + status + `}]}`
}

func TestStatus(t *testing.T) {
	t.Parallel()
	run := pipelines.Run{ID: "286541", Status: pipelines.StatusRunning, Ref: ref("286541")}
	tests := []struct {
		name string
		run  pipelines.Run
		ex   []pipelinestest.Exchange
		want pipelines.Run
		lost bool
	}{
		{name: "exact execution, documented object", run: run,
			ex:   []pipelinestest.Exchange{{Golden: "records", Body: records("2")}},
			want: pipelines.Run{ID: "286541", Status: pipelines.StatusSucceeded, Detail: "release successful (2)", Ref: ref("286541")}},
		{name: "exact execution, bare array, string ids", run: run,
			ex:   []pipelinestest.Exchange{{Golden: "records", Body: `[{"id":"286541","status":"12"}]`}},
			want: pipelines.Run{ID: "286541", Status: pipelines.StatusFailed, Detail: "rollback failed (12)", Ref: ref("286541")}},
		{name: "execution not in records: release task list", run: run,
			ex:   []pipelinestest.Exchange{{Golden: "records", Body: `{"count":0,"records":[]}`}, {Golden: "list", Body: list("5")}},
			want: pipelines.Run{ID: "286541", Status: pipelines.StatusRunning, Detail: "to be approved (5)", Ref: ref("286541")}},
		{name: "record without status: bare-array list", run: run,
			ex:   []pipelinestest.Exchange{{Golden: "records", Body: `{"records":[{"id":286541}]}`}, {Golden: "list", Body: `[{"id":"` + releaseID + `","status":13}]`}},
			want: pipelines.Run{ID: "286541", Status: pipelines.StatusRunning, Detail: "stopping (13)", Ref: ref("286541")}},
		{name: "relay without execution id", run: pipelines.Run{ID: releaseID, Ref: map[string]string{"pipeline_id": releaseID}},
			ex:   []pipelinestest.Exchange{{Golden: "list", Body: list("11")}},
			want: pipelines.Run{ID: releaseID, Status: pipelines.StatusFailed, Detail: "rollback successful (11)", Ref: map[string]string{"pipeline_id": releaseID}}},
		{name: "release task deleted", run: run, lost: true,
			ex: []pipelinestest.Exchange{{Golden: "records", Body: `[]`}, {Golden: "list", Body: `{"pipelines":null}`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, logs, _ := newClient(t, servicestage.Config{}, tt.ex...)
			got, err := c.Status(t.Context(), tt.run)
			if tt.lost {
				if !errors.Is(err, pipelines.ErrRunLost) {
					t.Errorf("err = %v, want ErrRunLost", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			pipelinestest.AssertNoSecret(t, token, logs.String())
		})
	}
}

func TestStatusErrors(t *testing.T) {
	t.Parallel()
	c, _, _ := newClient(t, servicestage.Config{},
		pipelinestest.Exchange{Golden: "records", Body: `{"records":"x"}`},
		pipelinestest.Exchange{Golden: "records", Status: 503, Body: `{"error_code":"SVCSTG.00100503","error_msg":"busy"}`},
		pipelinestest.Exchange{Golden: "records", Status: 404, Body: `{"error_code":"SVCSTG.00100404","error_msg":"pipeline not found"}`},
	)
	run := pipelines.Run{ID: "286541", Ref: ref("286541")}
	_, err := c.Status(t.Context(), run)
	malformed(t, err)
	_, err = c.Status(t.Context(), run)
	wantAPIErr(apiErr{Status: 503, Code: "SVCSTG.00100503", Msg: "busy", Temporary: true})(t, err)
	if errors.Is(err, pipelines.ErrRunLost) {
		t.Error("a 503 is not a lost run")
	}
	// A deleted release task answers 404: the run is lost, not retried.
	_, err = c.Status(t.Context(), run)
	if !errors.Is(err, pipelines.ErrRunLost) {
		t.Errorf("404: %v, want ErrRunLost", err)
	}
	wantAPIErr(apiErr{Status: 404, Code: "SVCSTG.00100404", Msg: "pipeline not found"})(t, err)
	if _, err := c.Status(t.Context(), pipelines.Run{ID: "1"}); !errors.Is(err, pipelines.ErrRunLost) {
		t.Errorf("run without reference: %v", err)
	}
}

// TestUnknownStatusEnds shows an undocumented code is followed as running
// for at most an hour, then ends the run as failed.
func TestUnknownStatusEnds(t *testing.T) {
	t.Parallel()
	ex := make([]pipelinestest.Exchange, 0, 4)
	for range 3 {
		ex = append(ex, pipelinestest.Exchange{Golden: "records", Body: records("8")})
	}
	ex = append(ex, pipelinestest.Exchange{Golden: "records", Body: records("4")})
	c, logs, clk := newClient(t, servicestage.Config{}, ex...)
	run := pipelines.Run{ID: "286541", Ref: ref("286541")}
	first, err := c.Status(t.Context(), run)
	if err != nil || first.Status != pipelines.StatusRunning || first.Ref["unknown_status_since"] != "2026-03-01T12:00:00Z" {
		t.Fatalf("first: %+v %v", first, err)
	}
	if _, ok := run.Ref["unknown_status_since"]; ok {
		t.Error("Status modified the caller's Ref map")
	}
	clk.add(59 * time.Minute)
	if got, err := c.Status(t.Context(), first); err != nil || got.Status != pipelines.StatusRunning {
		t.Fatalf("after 59m: %+v %v", got, err)
	}
	clk.add(time.Minute)
	got, err := c.Status(t.Context(), first)
	if err != nil || got.Status != pipelines.StatusFailed || !strings.Contains(got.Detail, "status 8") {
		t.Fatalf("after 1h: %+v %v", got, err)
	}
	if got, err := c.Status(t.Context(), first); err != nil || got.Status != pipelines.StatusRunning || got.Ref["unknown_status_since"] != "" {
		t.Fatalf("documented again: %+v %v", got, err)
	}
	if !strings.Contains(logs.String(), "undocumented release task status") {
		t.Error("undocumented status not logged")
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	stopped := `{"id":"286541","pipeline_id":"` + releaseID + `","status":13}`
	c, _, _ := newClient(t, servicestage.Config{},
		pipelinestest.Exchange{Golden: "records", Body: records("4")},
		pipelinestest.Exchange{Golden: "stop", Body: stopped},
		// The execution already ended: the release task is not stopped,
		// so a later execution is left alone.
		pipelinestest.Exchange{Golden: "records", Body: records("2")},
		// Without an execution id: stop straight away.
		pipelinestest.Exchange{Golden: "stop", Body: stopped},
		pipelinestest.Exchange{Golden: "records", Body: records("4")},
		pipelinestest.Exchange{Golden: "stop", Status: 400, Body: `{"error_code":"SVCSTG.00100400","error_msg":"release task is not running"}`},
	)
	run := pipelines.Run{ID: "286541", Ref: ref("286541")}
	for i, want := range []error{nil, nil} {
		if err := c.Cancel(t.Context(), run); err != want {
			t.Fatalf("Cancel #%d: %v", i, err)
		}
	}
	if err := c.Cancel(t.Context(), pipelines.Run{ID: releaseID, Ref: map[string]string{"pipeline_id": releaseID}}); err != nil {
		t.Fatal(err)
	}
	wantAPIErr(apiErr{Status: 400, Code: "SVCSTG.00100400", Msg: "release task is not running"})(t, c.Cancel(t.Context(), run))
	if err := c.Cancel(t.Context(), pipelines.Run{ID: "1"}); err == nil {
		t.Error("run without reference cancelled")
	}
}

func TestCheckPipeline(t *testing.T) {
	t.Parallel()
	c, _, _ := newClient(t, servicestage.Config{})
	str := &pipelines.Input{Type: pipelines.TypeString}
	tests := []struct {
		name string
		def  pipelines.Definition
		want []string
	}{
		{"start", pipelines.Definition{Target: map[string]any{"pipeline_id": releaseID, "selected_tasks": selected}}, nil},
		{"relay", pipelines.Definition{Target: map[string]any{"pipeline_id": releaseID, "approval_task": "deploy-prod"}}, nil},
		{"inputs and CodeArts keys", pipelines.Definition{Target: map[string]any{"pipeline_id": releaseID, "choose_stages": []any{"a"}}, Inputs: map[string]*pipelines.Input{"version": str}},
			[]string{"target.choose_stages is not a known key", "inputs.version: ServiceStage's release task action API takes no variables"}},
		{"bad selected_tasks", pipelines.Definition{Target: map[string]any{"pipeline_id": releaseID, "selected_tasks": []any{map[string]any{"stage": "x"}}}},
			[]string{`target.selected_tasks: json: unknown field "stage"`}},
		{"selected_tasks without tasks", pipelines.Definition{Target: map[string]any{"pipeline_id": releaseID, "selected_tasks": []any{map[string]any{"stage_name": "s"}}}},
			[]string{"target.selected_tasks[0]: stage_name and tasks are required"}},
		{"relay and selected_tasks", pipelines.Definition{Target: map[string]any{"pipeline_id": releaseID, "approval_task": "deploy-prod", "selected_tasks": selected}},
			[]string{"approval_task and target.selected_tasks do not go together"}},
		{"no pipeline", pipelines.Definition{Target: map[string]any{}}, []string{"target.pipeline_id is required"}},
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
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	base := "https://servicestage.cn-north-4.myhuaweicloud.com"
	tests := []struct {
		name string
		cfg  servicestage.Config
		want []string
	}{
		{"token", servicestage.Config{BaseURL: base, Token: "t", ProjectID: project}, nil},
		{"run_url", servicestage.Config{BaseURL: base, Token: "t", ProjectID: project, RunURL: "https://console.example.com/#/{project_id}/{pipeline_id}/{execution_id}"}, nil},
		{"empty", servicestage.Config{}, []string{"base_url is required", "project_id is required", "token or iam is required"}},
		{"CodeArts host", servicestage.Config{BaseURL: "https://cloudpipeline-ext.cn-north-4.myhuaweicloud.com", Token: "t", ProjectID: project}, []string{"CodeArts Pipeline's host"}},
		{"bad run_url", servicestage.Config{BaseURL: base, Token: "t", ProjectID: project, RunURL: "http://x/{pipeline_id}"}, []string{"must be an https URL"}},
		{"run_url placeholder", servicestage.Config{BaseURL: base, Token: "t", ProjectID: project, RunURL: "https://x/{region}"}, []string{"only {project_id}, {pipeline_id} and {execution_id}"}},
		{"bad project", servicestage.Config{BaseURL: base, Token: "t", ProjectID: ".."}, []string{"project_id:"}},
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
	if _, err := servicestage.New(servicestage.Config{}); err == nil {
		t.Error("New accepted an empty config")
	}
}
