package servicestage

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatebot/gatebot/pipelines/apiclient"
	"github.com/gatebot/gatebot/pipelines/huaweiiam"
)

// ProviderType is the config `type` of this provider.
const ProviderType = "servicestage"

// Config is one configured ServiceStage provider. Exactly one of Token and
// IAM supplies the X-Auth-Token.
type Config struct {
	// BaseURL is ServiceStage's regional endpoint,
	// https://servicestage.{region}.myhuaweicloud.com.
	BaseURL string `yaml:"base_url"`
	// Token is an IAM token given directly (it expires after 24 h; prefer
	// IAM for a long-running bot).
	Token apiclient.Secret `yaml:"token"`
	// ProjectID is the tenant's IAM project id for the region
	// ({project_id} in every path).
	ProjectID string `yaml:"project_id"`
	// IAM obtains and refreshes tokens with a password identity; its
	// project must be the one ProjectID names.
	IAM *huaweiiam.Config `yaml:"iam"`
	// RunURL optionally links cards to the release task in the console:
	// an https URL template with {project_id}, {pipeline_id} and
	// {execution_id} (each path-escaped). ServiceStage documents no
	// console URL, so gatebot builds none unless given one.
	RunURL string `yaml:"run_url"`
}

var runURLPlaceholders = strings.NewReplacer("{project_id}", "p", "{pipeline_id}", "p", "{execution_id}", "1")

// Validate reports every problem with c, each naming its field.
func (c Config) Validate() []error {
	var errs []error
	if c.BaseURL == "" {
		errs = append(errs, errors.New("base_url is required (https://servicestage.{region}.myhuaweicloud.com)"))
	} else if u, err := apiclient.ParseBaseURL(c.BaseURL); err != nil {
		errs = append(errs, err)
	} else if strings.HasPrefix(strings.ToLower(u.Hostname()), "cloudpipeline") {
		errs = append(errs, fmt.Errorf("base_url %q is CodeArts Pipeline's host: release tasks are served by ServiceStage, https://servicestage.{region}.myhuaweicloud.com", c.BaseURL))
	}
	if strings.TrimSpace(c.ProjectID) == "" {
		errs = append(errs, errors.New("project_id is required (the tenant's IAM project id for the region)"))
	} else if _, err := apiclient.Path("/{x}", c.ProjectID); err != nil {
		errs = append(errs, fmt.Errorf("project_id: %v", err))
	}
	if c.RunURL != "" {
		probe := runURLPlaceholders.Replace(c.RunURL)
		u, err := url.Parse(probe)
		switch {
		case err != nil || u.Scheme != "https" || u.Host == "":
			errs = append(errs, fmt.Errorf("run_url %q must be an https URL", c.RunURL))
		case strings.ContainsAny(probe, "{}"):
			errs = append(errs, fmt.Errorf("run_url %q: only {project_id}, {pipeline_id} and {execution_id} can be filled in", c.RunURL))
		}
	}
	return append(errs, huaweiiam.ValidateAuth(c.Token, c.IAM)...)
}

// runURL fills the run_url template; "" without one, or when it needs
// an execution id that is not known.
func (c Config) runURL(pipeline, execution string) string {
	if c.RunURL == "" || (execution == "" && strings.Contains(c.RunURL, "{execution_id}")) {
		return ""
	}
	return strings.NewReplacer(
		"{project_id}", url.PathEscape(c.ProjectID),
		"{pipeline_id}", url.PathEscape(pipeline),
		"{execution_id}", url.PathEscape(execution),
	).Replace(c.RunURL)
}

// Option configures a Client.
type Option = apiclient.Option

// WithHTTPClient sets the HTTP client for ServiceStage and IAM calls (it is
// copied); nil, like no option, means the default with a 30-second timeout.
func WithHTTPClient(hc *http.Client) Option {
	return func(s *apiclient.Settings) error { s.HTTPClient = hc; return nil }
}

// WithLogger sets the logger; nil discards.
func WithLogger(l *slog.Logger) Option { return apiclient.WithLogger(l) }

// WithNow sets the clock used for IAM token expiry and for how long an
// undocumented status is followed; nil means time.Now.
func WithNow(now func() time.Time) Option {
	return func(s *apiclient.Settings) error {
		s.Now = now
		if now == nil {
			s.Now = time.Now
		}
		return nil
	}
}
