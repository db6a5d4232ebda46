package jenkins_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/jenkins"
	"github.com/gatebot/gatebot/pipelines/pipelinestest"
)

// fakeJenkins behaves as Jenkins does for one job: buildWithParameters
// keeps only the parameters the job defines (undefined ones are dropped,
// SECURITY-170) and starts a build at once; the first failTriggers calls
// start the build and then answer 502, the ambiguous failure.
type fakeJenkins struct {
	t            *testing.T
	defined      []string
	failTriggers int

	mu       sync.Mutex
	builds   []map[string]string
	triggers int
	defReads int
}

func (f *fakeJenkins) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	const job = "/jenkins/job/deploy"
	switch {
	case r.Method == http.MethodPost && r.URL.Path == job+"/buildWithParameters":
		if err := r.ParseForm(); err != nil {
			f.t.Errorf("form: %v", err)
		}
		params := map[string]string{}
		for _, name := range f.defined {
			if v := r.PostForm.Get(name); v != "" {
				params[name] = v
			}
		}
		f.builds = append(f.builds, params)
		f.triggers++
		if f.triggers <= f.failTriggers {
			http.Error(w, "<html>Bad Gateway</html>", http.StatusBadGateway)
			return
		}
		w.Header().Set("Location", "http://"+r.Host+fmt.Sprintf("/jenkins/queue/item/%d/", 400+len(f.builds)))
		w.WriteHeader(http.StatusCreated)
	case r.Method == http.MethodGet && r.URL.Path == job+"/api/json" && strings.HasPrefix(r.URL.Query().Get("tree"), "property"):
		f.defReads++
		defs := []map[string]string{}
		for _, n := range f.defined {
			defs = append(defs, map[string]string{"name": n})
		}
		writeJSON(w, map[string]any{"property": []any{map[string]any{}, map[string]any{"parameterDefinitions": defs}}})
	case r.Method == http.MethodGet && r.URL.Path == job+"/api/json" && strings.HasPrefix(r.URL.Query().Get("tree"), "builds"):
		var bs []any
		for i := len(f.builds) - 1; i >= 0; i-- {
			var ps []any
			for k, v := range f.builds[i] {
				ps = append(ps, map[string]string{"name": k, "value": v})
			}
			bs = append(bs, map[string]any{"number": i + 1, "url": fmt.Sprintf("http://%s/jenkins/job/deploy/%d/", r.Host, i+1),
				"building": true, "actions": []any{map[string]any{"parameters": ps}}})
		}
		writeJSON(w, map[string]any{"builds": bs})
	default:
		f.t.Errorf("unexpected %s %s", r.Method, r.URL)
		http.Error(w, "unexpected", http.StatusTeapot)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// An ambiguous failure followed by redeliveries never leaves two builds:
// with the gate parameter defined the repeat finds the first build; without
// it (not defined by the job, or not sent) gatebot does not call again.
func TestAmbiguousFailureThenRedelivery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		defined    []string
		target     map[string]any
		wantCalls  int
		wantRun    bool
		wantRepeat bool
	}{
		{"job defines GATE_ID", []string{"VERSION", "GATE_ID"}, map[string]any{"job": "deploy"}, 2, true, true},
		{"job drops GATE_ID", []string{"VERSION"}, map[string]any{"job": "deploy"}, 1, false, false},
		{"no gate parameter sent", []string{"VERSION", "GATE_ID"}, map[string]any{"job": "deploy", "gate_id_parameter": ""}, 1, false, false},
		{"renamed parameter the job defines", []string{"VERSION", "GATEBOT"}, map[string]any{"job": "deploy", "gate_id_parameter": "GATEBOT"}, 2, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeJenkins{t: t, defined: tt.defined, failTriggers: 1}
			srv := httptest.NewServer(f)
			t.Cleanup(srv.Close)
			c := newClient(t, srv.URL, jenkins.Config{})
			req := request(tt.target)
			run, calls, err := pipelinestest.Redeliver(t.Context(), c, req, 3)
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.builds) != 1 {
				t.Fatalf("builds = %d, want exactly 1", len(f.builds))
			}
			if calls != tt.wantCalls {
				t.Errorf("Trigger calls = %d, want %d", calls, tt.wantCalls)
			}
			if tt.wantRun {
				if err != nil || run.ID != "1" || run.Status != pipelines.StatusRunning {
					t.Errorf("run = %+v, err = %v; want build 1 found again", run, err)
				}
			} else if !pipelines.IsTemporary(err) {
				t.Errorf("err = %v, want the first, ambiguous failure", err)
			}
			if got := c.RepeatableTrigger(t.Context(), req); got != tt.wantRepeat {
				t.Errorf("RepeatableTrigger = %v, want %v", got, tt.wantRepeat)
			}
			if tt.target["gate_id_parameter"] == nil && f.defReads != 1 {
				t.Errorf("parameter definitions read %d times, want once (cached)", f.defReads)
			}
		})
	}
}

// A job whose parameters cannot be read is not repeatable: the safe side.
func TestRepeatableTriggerLookupFails(t *testing.T) {
	t.Parallel()
	srv := pipelinestest.NewServer(t, pipelinestest.Exchange{Golden: "job-parameters", Status: 500, Body: "<html/>"})
	c := newClient(t, srv.URL, jenkins.Config{})
	if c.RepeatableTrigger(t.Context(), request(nil)) {
		t.Error("RepeatableTrigger = true after a failed lookup")
	}
}
