package northflank_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/gatebot/gatebot/pipelines/northflank"
	"github.com/gatebot/gatebot/pipelines/pipelinestest"
)

// fakeNorthflank starts a run for every POST, whatever its name (Northflank
// has no idempotency key); the first failRuns POSTs start the run and then
// answer 502, the ambiguous failure.
type fakeNorthflank struct {
	t        *testing.T
	failRuns int

	mu    sync.Mutex
	names []string
	posts int
}

func (f *fakeNorthflank) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Path != "/v1/projects/web/pipelines/main/release-flows/production/runs" {
		f.t.Errorf("unexpected %s %s", r.Method, r.URL)
		http.Error(w, "{}", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch r.Method {
	case http.MethodPost:
		var body struct {
			Name string `json:"name"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			f.t.Errorf("body: %v", err)
		}
		f.names = append(f.names, body.Name)
		f.posts++
		if f.posts <= f.failRuns {
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte(`{"error":{"status":502,"message":"Bad gateway"}}`))
			return
		}
		_, _ = w.Write([]byte(`{"data":{}}`))
	case http.MethodGet:
		runs := []map[string]any{}
		for i := len(f.names) - 1; i >= 0; i-- {
			runs = append(runs, map[string]any{"id": fmt.Sprintf("run-%d", i+1), "name": f.names[i], "status": "running", "concluded": false})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"runs": runs}, "pagination": map[string]any{"hasNextPage": false}})
	}
}

// An ambiguous failure then redeliveries leave exactly one run: the repeat
// lists the release flow's runs and finds the one named after the gate.
func TestAmbiguousFailureThenRedelivery(t *testing.T) {
	t.Parallel()
	f := &fakeNorthflank{t: t, failRuns: 1}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := northflank.New(northflank.Config{BaseURL: srv.URL, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	run, calls, err := pipelinestest.Redeliver(t.Context(), c, req, 3)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil || run.ID != "run-1" || calls != 2 {
		t.Fatalf("run %+v, calls %d, err %v; want run-1 found on the second call", run, calls, err)
	}
	if len(f.names) != 1 {
		t.Errorf("runs started = %d (%v), want exactly 1", len(f.names), f.names)
	}
}
