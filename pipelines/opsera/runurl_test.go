package opsera_test

import (
	"testing"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/opsera"
	"github.com/gatebot/gatebot/pipelines/pipelinestest"
)

// Run links come only from a configured run_url: Opsera documents no UI
// route.
func TestRunURL(t *testing.T) {
	t.Parallel()
	srv := pipelinestest.NewServer(t,
		pipelinestest.Exchange{Golden: "run", Body: `{"status":"executed","message":"ok","runCount":3}`},
		pipelinestest.Exchange{Golden: "status", Body: `{"status":"running"}`})
	c, err := opsera.New(opsera.Config{BaseURL: srv.URL, Token: token, RunURL: "https://app.opsera.io/workflow/details/{pipeline_id}/summary"})
	if err != nil {
		t.Fatal(err)
	}
	run, err := c.Trigger(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := "https://app.opsera.io/workflow/details/" + pid + "/summary"
	if run.URL != want {
		t.Errorf("Trigger URL = %q, want %q", run.URL, want)
	}
	run.URL = ""
	got, err := c.Status(t.Context(), pipelines.Run{ID: "3", Ref: run.Ref})
	if err != nil || got.URL != want {
		t.Errorf("Status URL = %q (%v), want %q", got.URL, err, want)
	}
}
