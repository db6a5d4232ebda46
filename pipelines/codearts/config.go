package codearts

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gatebot/gatebot/pipelines/apiclient"
	"github.com/gatebot/gatebot/pipelines/huaweiiam"
)

// ProviderType is the config `type` of this provider.
const ProviderType = "codearts"

// APIV5 is CodeArts Pipeline's v5 API (RunPipeline, ShowPipelineRunDetail,
// StopPipelineRun), the only one this provider speaks.
const APIV5 = "v5"

// apiV3Action is the value older configs used for ServiceStage's release
// task API, which is now the servicestage provider.
const apiV3Action = "v3-action"

// Config is one configured CodeArts Pipeline provider. Exactly one of Token
// and IAM supplies the X-Auth-Token.
type Config struct {
	// BaseURL is the regional endpoint, e.g.
	// https://cloudpipeline-ext.cn-north-4.myhuaweicloud.com.
	BaseURL string `yaml:"base_url"`
	// Token is an IAM token given directly (it expires after 24 h; prefer
	// IAM for a long-running bot).
	Token apiclient.Secret `yaml:"token"`
	// ProjectID is the CodeArts project id in the API paths ({project_id},
	// 32 characters).
	ProjectID string `yaml:"project_id"`
	// API may be empty or "v5"; it is kept so that older configs saying
	// "v3-action" get a message pointing at the servicestage provider.
	API string `yaml:"api"`
	// IAM obtains and refreshes tokens with a password identity.
	IAM *IAMConfig `yaml:"iam"`
}

// IAMConfig is the IAM user that obtains tokens (see huaweiiam.Config).
type IAMConfig = huaweiiam.Config

// ErrReleaseTaskAPI is reported for `api: v3-action`: ServiceStage's
// release task API is the servicestage provider.
var ErrReleaseTaskAPI = errors.New(`api v3-action is ServiceStage's release task API, not CodeArts Pipeline's: configure it as a provider of type: servicestage (base_url https://servicestage.{region}.myhuaweicloud.com, project_id = the IAM project id)`)

// Validate reports every problem with c, each naming its field.
func (c Config) Validate() []error {
	var errs []error
	if c.BaseURL == "" {
		errs = append(errs, errors.New("base_url is required (the regional endpoint, e.g. https://cloudpipeline-ext.cn-north-4.myhuaweicloud.com)"))
	} else if _, err := apiclient.ParseBaseURL(c.BaseURL); err != nil {
		errs = append(errs, err)
	}
	if strings.TrimSpace(c.ProjectID) == "" {
		errs = append(errs, errors.New("project_id is required (the CodeArts project id)"))
	} else if _, err := apiclient.Path("/{x}", c.ProjectID); err != nil {
		errs = append(errs, fmt.Errorf("project_id: %v", err))
	}
	switch c.API {
	case "", APIV5:
	case apiV3Action:
		errs = append(errs, ErrReleaseTaskAPI)
	default:
		errs = append(errs, fmt.Errorf("api %q is not supported: CodeArts Pipeline is driven through its %s API (leave api out)", c.API, APIV5))
	}
	return append(errs, huaweiiam.ValidateAuth(c.Token, c.IAM)...)
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
