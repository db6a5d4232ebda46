package northflank

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gatebot/gatebot/pipelines/apiclient"
)

// ProviderType is the config `type` of this provider.
const ProviderType = "northflank"

// DefaultBaseURL is Northflank's API root (gatebot appends /v1/…).
const DefaultBaseURL = "https://api.northflank.com"

// Config is one configured Northflank provider.
type Config struct {
	// BaseURL is the API root without /v1; empty means DefaultBaseURL.
	BaseURL string `yaml:"base_url"`
	// Token is an API token whose role allows Project > Pipelines >
	// General > Read and Update; sent as a Bearer token.
	Token apiclient.Secret `yaml:"token"`
	// RunURL, optional, links runs in the web UI, whose routes are not
	// documented: a template with {project_id}, {pipeline_id}, {stage}, {run_id} placeholders.
	RunURL apiclient.RunURL `yaml:"run_url"`
}

// Validate reports every problem with c, each naming its field.
func (c Config) Validate() []error {
	var errs []error
	if c.BaseURL != "" {
		if u, err := apiclient.ParseBaseURL(c.BaseURL); err != nil {
			errs = append(errs, err)
		} else if strings.HasSuffix(u.Path, "/v1") {
			errs = append(errs, errors.New("base_url must not end in /v1: gatebot appends /v1/… itself (use https://api.northflank.com)"))
		}
	}
	if c.Token == "" {
		errs = append(errs, errors.New("token is required (a Northflank API token)"))
	}
	if err := c.RunURL.Check("run_url", runURLKeys...); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// Option configures a Client.
type Option = apiclient.Option

// WithHTTPClient sets the HTTP client (it is copied); nil, like no option,
// means the default with a 30-second timeout.
func WithHTTPClient(hc *http.Client) Option {
	return func(s *apiclient.Settings) error { s.HTTPClient = hc; return nil }
}

// WithLogger sets the logger; nil discards.
func WithLogger(l *slog.Logger) Option { return apiclient.WithLogger(l) }

// WithNow sets the clock used for the rate-limit budget; nil means
// time.Now.
func WithNow(now func() time.Time) Option {
	return func(s *apiclient.Settings) error {
		s.Now = now
		if now == nil {
			s.Now = time.Now
		}
		return nil
	}
}
