package northflank_test

import (
	"testing"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/northflank"
	"github.com/gatebot/gatebot/pipelines/pipelinestest"
)

// Run links come only from a configured run_url: the UI route needs the
// team and is not documented.
func TestRunURL(t *testing.T) {
	t.Parallel()
	srv := pipelinestest.NewServer(t, pipelinestest.Exchange{Golden: "status", Body: `{"data":{"id":"run-42","status":"running","concluded":false}}`})
	c, err := northflank.New(northflank.Config{BaseURL: srv.URL, Token: token,
		RunURL: "https://app.northflank.com/t/acme/project/{project_id}/pipelines/{pipeline_id}/{stage}/runs/{run_id}"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Status(t.Context(), pipelines.Run{ID: "run-42", Ref: ref})
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://app.northflank.com/t/acme/project/web/pipelines/main/production/runs/run-42"; got.URL != want {
		t.Errorf("URL = %q, want %q", got.URL, want)
	}
	if errs := (northflank.Config{Token: token, RunURL: "https://x/{team}"}).Validate(); len(errs) != 1 {
		t.Errorf("Validate = %v, want the unknown placeholder", errs)
	}
}
