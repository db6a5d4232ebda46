package humanitec_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/humanitec"
	"github.com/gatebot/gatebot/pipelines/pipelinestest"
)

// fakeHumanitec ignores Idempotency-Key, as nothing in Humanitec's docs
// says it replays one: every create makes a new run. The first failCreates
// creates make the run and then answer 502 (the ambiguous failure); with
// conflict set, later creates answer 409 instead. Listing honours
// created_after and pages of per_page with a Link header.
type fakeHumanitec struct {
	t           *testing.T
	failCreates int
	conflict    bool
	hideFirst   int // the first hideFirst list calls do not show runs yet

	mu      sync.Mutex
	runs    []map[string]any
	creates int
	lists   int
}

func (f *fakeHumanitec) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	const runs = "/orgs/acme/apps/api/pipelines/deploy/runs"
	if r.URL.Path != runs {
		f.t.Errorf("unexpected %s %s", r.Method, r.URL)
		http.Error(w, "{}", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch r.Method {
	case http.MethodPost:
		f.creates++
		if f.conflict && f.creates > f.failCreates {
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"error":"API-009","message":"a request with this Idempotency-Key is being processed"}`))
			return
		}
		var body struct {
			Inputs map[string]any `json:"inputs"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			f.t.Errorf("body: %v", err)
		}
		run := map[string]any{"id": fmt.Sprintf("run-%d", len(f.runs)+1), "status": "queued", "inputs": body.Inputs,
			"created_at": time.Now().UTC().Format(time.RFC3339)}
		f.runs = append(f.runs, run)
		if f.creates <= f.failCreates {
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte(`{"error":"API-500","message":"upstream"}`))
			return
		}
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(run)
	case http.MethodGet:
		f.lists++
		after, err := time.Parse(time.RFC3339, r.URL.Query().Get("created_after"))
		if err != nil {
			f.t.Errorf("created_after: %v", err)
		}
		out := []map[string]any{}
		if f.lists > f.hideFirst {
			for i := len(f.runs) - 1; i >= 0; i-- {
				if ca, _ := time.Parse(time.RFC3339, f.runs[i]["created_at"].(string)); !ca.Before(after) {
					out = append(out, f.runs[i])
				}
			}
		}
		_ = json.NewEncoder(w).Encode(out)
	}
}

func fakeClient(t *testing.T, f *fakeHumanitec) *humanitec.Client {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := humanitec.New(humanitec.Config{BaseURL: srv.URL, Token: token, Org: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func stamped() pipelines.Request {
	r := req
	r.Target = map[string]any{"app": "api", "pipeline_id": "deploy", "gate_id_input": "gatebot_gate_id"}
	r.Since = time.Now().Add(-time.Minute)
	return r
}

// An ambiguous failure then redeliveries leave exactly one run: the repeat
// lists the pipeline's runs and finds the one stamped with the gate.
func TestAmbiguousFailureThenRedelivery(t *testing.T) {
	t.Parallel()
	f := &fakeHumanitec{t: t, failCreates: 1}
	c := fakeClient(t, f)
	run, calls, err := pipelinestest.Redeliver(t.Context(), c, stamped(), 3)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil || run.ID != "run-1" || calls != 2 {
		t.Fatalf("run %+v, calls %d, err %v; want run-1 found on the second call", run, calls, err)
	}
	if len(f.runs) != 1 || f.creates != 1 {
		t.Errorf("runs = %d, creates = %d; want exactly one of each", len(f.runs), f.creates)
	}
	if got := f.runs[0]["inputs"].(map[string]any)["gatebot_gate_id"]; got != req.GateID {
		t.Errorf("gate input = %v", got)
	}
}

// A 409 to the repeated create (the earlier run not listed yet on the
// first look) is looked up, not reported as a failure.
func TestConflictIsLookedUp(t *testing.T) {
	t.Parallel()
	f := &fakeHumanitec{t: t, failCreates: 1, conflict: true, hideFirst: 2}
	c := fakeClient(t, f)
	run, calls, err := pipelinestest.Redeliver(t.Context(), c, stamped(), 3)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil || run.ID != "run-1" || calls != 2 {
		t.Fatalf("run %+v, calls %d, err %v; want run-1 found after the 409", run, calls, err)
	}
	if len(f.runs) != 1 || f.creates != 2 {
		t.Errorf("runs = %d, creates = %d; want one run from two creates", len(f.runs), f.creates)
	}
}

// Without a gate input nothing can recognise the earlier run: gatebot does
// not repeat, and a 409 names what is missing.
func TestWithoutGateInput(t *testing.T) {
	t.Parallel()
	f := &fakeHumanitec{t: t, failCreates: 1}
	c := fakeClient(t, f)
	_, calls, err := pipelinestest.Redeliver(t.Context(), c, req, 3)
	if calls != 1 || !pipelines.IsTemporary(err) {
		t.Errorf("calls %d, err %v; want one call, the ambiguous error kept", calls, err)
	}
	if c.RepeatableTrigger(t.Context(), req) {
		t.Error("RepeatableTrigger = true without target.gate_id_input")
	}
	if len(f.runs) != 1 {
		t.Errorf("runs = %d", len(f.runs))
	}
	f2 := &fakeHumanitec{t: t, conflict: true}
	_, err = fakeClient(t, f2).Trigger(t.Context(), req)
	if !errors.Is(err, humanitec.ErrConflictUnresolved) {
		t.Errorf("err = %v, want ErrConflictUnresolved", err)
	}
	var ae *pipelines.APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusConflict {
		t.Errorf("err = %v, want the 409 APIError wrapped", err)
	}
}

func TestRunURL(t *testing.T) {
	t.Parallel()
	srv := pipelinestest.NewServer(t, pipelinestest.Exchange{Golden: "trigger", Status: 201, Body: runBody})
	c, err := humanitec.New(humanitec.Config{BaseURL: srv.URL, Token: token, Org: "acme", UIURL: "https://app.humanitec.io/"})
	if err != nil {
		t.Fatal(err)
	}
	run, err := c.Trigger(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://app.humanitec.io/orgs/acme/apps/api/pipelines/deploy/runs/0123abcd"; run.URL != want {
		t.Errorf("URL = %q, want %q", run.URL, want)
	}
}

// The exact requests of a stamped trigger: the lookup (created_after is
// req.Since less the clock-skew allowance, and the Link header is followed)
// and the create carrying the gate input.
func TestTriggerStampedRequests(t *testing.T) {
	t.Parallel()
	r := stamped()
	r.Since = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	c, _ := newClient(t,
		pipelinestest.Exchange{Golden: "list-runs", Header: http.Header{"Link": {`<` + pipelinestest.BaseURL + `/orgs/acme/apps/api/pipelines/deploy/runs?page=AAA=&per_page=100>; rel="next"`}},
			Body: `[{"id":"other","status":"succeeded","inputs":{"gatebot_gate_id":"g_someone_else"}}]`},
		pipelinestest.Exchange{Golden: "list-runs-page-2", Body: `[]`},
		pipelinestest.Exchange{Golden: "trigger-stamped", Status: 201, Body: runBody})
	run, err := c.Trigger(t.Context(), r)
	if err != nil || run.ID != "0123abcd" {
		t.Fatalf("run %+v, err %v", run, err)
	}
}

func TestCheckPipelineGateInput(t *testing.T) {
	t.Parallel()
	c, err := humanitec.New(humanitec.Config{Token: token, Org: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	def := pipelines.Definition{Target: map[string]any{"app": "api", "pipeline_id": "deploy", "gate_id_input": "gatebot_gate_id"},
		Inputs: map[string]*pipelines.Input{"gatebot_gate_id": {}}}
	errs := c.CheckPipeline(def)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "inputs.gatebot_gate_id: reserved for the gate id") {
		t.Errorf("CheckPipeline = %v", errs)
	}
}
