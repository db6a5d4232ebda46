package huaweiiam_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatebot/gatebot/pipelines/apiclient"
	"github.com/gatebot/gatebot/pipelines/huaweiiam"
	"github.com/gatebot/gatebot/pipelines/pipelinestest"
)

const static = "MIIstatic-x-auth-token-5ecr3t"

func TestStaticTokenAndContentType(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		always bool
		golden string
	}{
		{"content type on every call", true, "get-always"},
		{"content type with bodies only", false, "get-body-only"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := pipelinestest.NewServer(t,
				pipelinestest.Exchange{Golden: tt.golden, Body: `{"ok":true}`},
				pipelinestest.Exchange{Golden: "static-401", Status: 401, Body: `{"error_code":"APIGW.0301","error_msg":"Incorrect IAM authentication information"}`},
			)
			logger, logs := pipelinestest.Logger()
			c, err := huaweiiam.NewClient(huaweiiam.Options{Provider: "servicestage", BaseURL: srv.URL, Token: static,
				ContentType: "application/json;charset=utf8", ContentTypeAlways: tt.always,
				Settings: apiclient.Settings{HTTPClient: srv.Client(), Logger: logger}})
			if err != nil {
				t.Fatal(err)
			}
			var ans struct{ OK bool }
			if _, err := c.Do(t.Context(), http.MethodGet, "/v3/p1/pipeline/pipelines", "list", nil, &ans); err != nil || !ans.OK {
				t.Fatalf("ans %+v err %v", ans, err)
			}
			// A static token is not refreshed: the 401 is reported as is.
			_, err = c.Do(t.Context(), http.MethodPost, "/v3/p1/x", "x", struct{}{}, nil)
			wantAPIErr(apiErr{Status: 401, Code: "APIGW.0301", Msg: "Incorrect IAM authentication information"})(t, err)
			pipelinestest.AssertNoSecret(t, static, logs.String(), err.Error())
		})
	}
}

func TestValidateAuth(t *testing.T) {
	t.Parallel()
	ok := &huaweiiam.Config{Domain: "acme", User: "bot", Password: "pw", Region: "cn-north-4"}
	tests := []struct {
		name  string
		token apiclient.Secret
		iam   *huaweiiam.Config
		want  []string
	}{
		{"token", "t", nil, nil},
		{"iam", "", ok, nil},
		{"iam with url and project", "", &huaweiiam.Config{URL: "https://iam.example.com", Domain: "a", User: "u", Password: "p", Project: "cn-north-4_dev"}, nil},
		{"neither", "", nil, []string{"token or iam is required"}},
		{"both", "t", ok, []string{"token and iam are exclusive"}},
		{"empty iam", "", &huaweiiam.Config{}, []string{"iam.domain is required", "iam.user is required", "iam.password is required", "iam.url or iam.region is required", "iam.project or iam.region is required"}},
		{"bad url", "", &huaweiiam.Config{URL: "ftp://x", Domain: "a", User: "u", Password: "p", Region: "r"}, []string{"iam.url:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			errs := huaweiiam.ValidateAuth(tt.token, tt.iam)
			if len(errs) != len(tt.want) {
				t.Fatalf("errs = %v, want %d", errs, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("errs[%d] = %v, want %q", i, errs[i], w)
				}
			}
		})
	}
	if _, err := huaweiiam.NewClient(huaweiiam.Options{Provider: "x", BaseURL: "https://x"}); err == nil {
		t.Error("NewClient without credentials accepted")
	}
}

func TestEndpointDefaults(t *testing.T) {
	t.Parallel()
	c := huaweiiam.Config{Region: "ap-southeast-3"}
	if c.Endpoint() != "https://iam.ap-southeast-3.myhuaweicloud.com" || c.ProjectName() != "ap-southeast-3" {
		t.Errorf("Endpoint %q ProjectName %q", c.Endpoint(), c.ProjectName())
	}
}
