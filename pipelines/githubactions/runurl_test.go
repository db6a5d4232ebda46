package githubactions_test

import (
	"testing"
	"time"

	"github.com/gatebot/gatebot/pipelines/githubactions"
	"github.com/gatebot/gatebot/pipelines/pipelinestest"
)

// Until a dispatched run is known, the run links the workflow's runs page
// on the GHES host (the API base without /api/v3).
func TestWorkflowURLUntilTheRunIsKnown(t *testing.T) {
	t.Parallel()
	srv := pipelinestest.NewServer(t,
		pipelinestest.Exchange{Golden: "ghes-find-runs", Status: 200, Body: noRuns},
		pipelinestest.Exchange{Golden: "ghes-dispatch", Status: 204})
	e := newClient(t, srv.URL+"/api/v3", githubactions.Config{ReturnRunDetails: bptr(false)}, time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	run, err := e.c.Trigger(t.Context(), request())
	if err != nil {
		t.Fatal(err)
	}
	if want := srv.URL + "/acme/api/actions/workflows/deploy.yml"; run.ID != "" || run.URL != want {
		t.Errorf("run %q URL = %q, want no id and %q", run.ID, run.URL, want)
	}
}
