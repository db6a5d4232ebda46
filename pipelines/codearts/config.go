package codearts

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gatebot/gatebot/pipelines/apiclient"
)

// ProviderType is the config `type` of this provider.
const ProviderType = "codearts"

// API modes.
const (
	// APIV3Action is the seed's release-task action API (the default):
	// POST /v3/{project_id}/pipeline/pipelines/{pipeline_id}/action.
	APIV3Action = "v3-action"
	// APIV5 is CodeArts Pipeline's v5 RunPipeline API.
	APIV5 = "v5"
)

// Config is one configured CodeArts provider. Exactly one of Token and IAM
// supplies the X-Auth-Token.
type Config struct {
	// BaseURL is the regional endpoint, e.g.
	// https://cloudpipeline-ext.cn-north-4.myhuaweicloud.com.
	BaseURL string `yaml:"base_url"`
	// Token is an IAM token given directly (it expires after 24 h; prefer
	// IAM for a long-running bot).
	Token apiclient.Secret `yaml:"token"`
	// ProjectID is the project id in the API paths ({project_id}).
	ProjectID string `yaml:"project_id"`
	// API selects the API: "v3-action" (default) or "v5".
	API string `yaml:"api"`
	// IAM obtains and refreshes tokens with a password identity.
	IAM *IAMConfig `yaml:"iam"`
}

// IAMConfig is an IAM user whose password identity obtains tokens
// (POST {url}/v3/auth/tokens, scope project).
type IAMConfig struct {
	// URL is the IAM endpoint; empty means https://iam.{region}.myhuaweicloud.com.
	URL string `yaml:"url"`
	// Domain is the account (domain) name the IAM user belongs to.
	Domain string `yaml:"domain"`
	// User is the IAM user name.
	User string `yaml:"user"`
	// Password is the IAM user's password.
	Password apiclient.Secret `yaml:"password"`
	// Project is the IAM project name the token is scoped to; empty means
	// Region (Huawei Cloud names a region's default project after it).
	Project string `yaml:"project"`
	// Region is the region, e.g. cn-north-4.
	Region string `yaml:"region"`
}

func (c Config) api() string {
	if c.API == "" {
		return APIV3Action
	}
	return c.API
}

func (i IAMConfig) url() string {
	if i.URL != "" {
		return i.URL
	}
	return "https://iam." + i.Region + ".myhuaweicloud.com"
}

func (i IAMConfig) project() string {
	if i.Project != "" {
		return i.Project
	}
	return i.Region
}

// Validate reports every problem with c, each naming its field.
func (c Config) Validate() []error {
	var errs []error
	if c.BaseURL == "" {
		errs = append(errs, errors.New("base_url is required (the regional endpoint, e.g. https://cloudpipeline-ext.cn-north-4.myhuaweicloud.com)"))
	} else if _, err := apiclient.ParseBaseURL(c.BaseURL); err != nil {
		errs = append(errs, err)
	}
	if strings.TrimSpace(c.ProjectID) == "" {
		errs = append(errs, errors.New("project_id is required"))
	} else if _, err := apiclient.Path("/{x}", c.ProjectID); err != nil {
		errs = append(errs, fmt.Errorf("project_id: %v", err))
	}
	switch c.api() {
	case APIV3Action, APIV5:
	default:
		errs = append(errs, fmt.Errorf("api %q must be %s or %s", c.API, APIV3Action, APIV5))
	}
	switch {
	case c.Token == "" && c.IAM == nil:
		errs = append(errs, errors.New("token or iam is required (an IAM token, or an IAM user to obtain one)"))
	case c.Token != "" && c.IAM != nil:
		errs = append(errs, errors.New("token and iam are exclusive: give one"))
	case c.IAM != nil:
		i := c.IAM
		if i.Domain == "" {
			errs = append(errs, errors.New("iam.domain is required (the account name)"))
		}
		if i.User == "" {
			errs = append(errs, errors.New("iam.user is required"))
		}
		if i.Password == "" {
			errs = append(errs, errors.New("iam.password is required"))
		}
		if i.URL == "" && i.Region == "" {
			errs = append(errs, errors.New("iam.url or iam.region is required"))
		} else if _, err := apiclient.ParseBaseURL(i.url()); err != nil {
			errs = append(errs, fmt.Errorf("iam.url: %v", err))
		}
		if i.project() == "" {
			errs = append(errs, errors.New("iam.project or iam.region is required (the token's project scope)"))
		}
	}
	return errs
}

// Option configures a Client.
type Option = apiclient.Option

// WithHTTPClient sets the HTTP client for CodeArts and IAM calls (it is
// copied); nil, like no option, means the default with a 30-second timeout.
func WithHTTPClient(hc *http.Client) Option {
	return func(s *apiclient.Settings) error { s.HTTPClient = hc; return nil }
}

// WithLogger sets the logger; nil discards.
func WithLogger(l *slog.Logger) Option { return apiclient.WithLogger(l) }

// WithNow sets the clock used for IAM token expiry; nil means time.Now.
func WithNow(now func() time.Time) Option {
	return func(s *apiclient.Settings) error {
		s.Now = now
		if now == nil {
			s.Now = time.Now
		}
		return nil
	}
}
