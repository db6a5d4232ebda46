package yunxiao_test

import (
	"strings"
	"testing"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/pipelinestest"
	"github.com/gatebot/gatebot/pipelines/yunxiao"
)

// Run links come only from a configured run_url: Yunxiao documents no
// route to one run's page.
func TestRunURL(t *testing.T) {
	t.Parallel()
	srv := pipelinestest.NewServer(t, pipelinestest.Exchange{Golden: "status-central",
		Body: `{"pipelineRunId":1234,"pipelineId":123,"status":"RUNNING"}`})
	c, err := yunxiao.New(yunxiao.Config{BaseURL: srv.URL, Token: token, OrganizationID: "5ebbc0228123212b59xxxxx",
		RunURL: "https://flow.aliyun.com/pipelines/{pipeline_id}/builds/{run_id}"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Status(t.Context(), pipelines.Run{ID: "1234", Ref: map[string]string{"pipeline_id": "123"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://flow.aliyun.com/pipelines/123/builds/1234"; got.URL != want {
		t.Errorf("URL = %q, want %q", got.URL, want)
	}
	errs := yunxiao.Config{Token: token, OrganizationID: "o", RunURL: "https://flow.aliyun.com/{build}"}.Validate()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "unknown placeholder {build}") {
		t.Errorf("Validate = %v", errs)
	}
}
