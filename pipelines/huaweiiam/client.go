package huaweiiam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/apiclient"
)

// Options configures a Client. Provider, BaseURL and exactly one of Token
// and IAM are required.
type Options struct {
	// Provider is the provider type, named in errors and logs.
	Provider string
	// BaseURL is the service's regional endpoint.
	BaseURL string
	// Token is a static X-Auth-Token (an IAM token, valid 24 h).
	Token apiclient.Secret
	// IAM obtains and refreshes tokens instead.
	IAM *Config
	// Settings carries the HTTP client, logger and clock.
	Settings apiclient.Settings
	// ContentType is sent with JSON bodies; empty means application/json.
	ContentType string
	// ContentTypeAlways also sends ContentType on bodiless requests, for
	// APIs whose pages list Content-Type as mandatory on every call
	// (ServiceStage's v3 pages do).
	ContentTypeAlways bool
}

// Client sends calls to one Huawei Cloud service with X-Auth-Token. It is
// safe for concurrent use.
type Client struct {
	api    *apiclient.Client
	prov   string
	static apiclient.Secret
	iam    *Tokens // nil with a static token
	ct     string
	always bool
	log    *slog.Logger
}

// NewClient validates o and returns a Client. No IAM call is made until
// the first call needs a token.
func NewClient(o Options) (*Client, error) {
	if o.Provider == "" {
		return nil, errors.New("huaweiiam: provider name required")
	}
	if errs := ValidateAuth(o.Token, o.IAM); len(errs) > 0 {
		return nil, fmt.Errorf("%s: %w", o.Provider, errors.Join(errs...))
	}
	if o.Settings.Logger == nil {
		o.Settings.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ContentType == "" {
		o.ContentType = "application/json"
	}
	c := &Client{prov: o.Provider, static: o.Token, ct: o.ContentType, always: o.ContentTypeAlways,
		log: o.Settings.Logger.With("provider", o.Provider)}
	if o.IAM != nil {
		t, err := NewTokens(o.Provider, *o.IAM, o.Settings, nil)
		if err != nil {
			return nil, err
		}
		c.iam = t
	}
	api, err := apiclient.New(apiclient.Options{
		Provider:    o.Provider,
		BaseURL:     o.BaseURL,
		HTTPClient:  o.Settings.HTTPClient,
		Logger:      o.Settings.Logger,
		Now:         o.Settings.Now,
		ContentType: o.ContentType,
		Secrets:     c.secrets,
		ParseError:  ParseError,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Provider, err)
	}
	c.api = api
	return c, nil
}

func (c *Client) secrets() []apiclient.Secret {
	s := []apiclient.Secret{c.static}
	if c.iam != nil {
		s = append(s, c.iam.Secrets()...)
	}
	return s
}

// API is the underlying client, for Malformed and Error.
func (c *Client) API() *apiclient.Client { return c.api }

// Do sends one call with X-Auth-Token and decodes a 2xx answer into v, as
// apiclient.Client.Do does. With IAM, a 401 drops the cached token and the
// call is made once more with a fresh one: a 401 means the request was not
// carried out, so repeating it is safe.
func (c *Client) Do(ctx context.Context, method, path, op string, body, v any) (*apiclient.Response, error) {
	for attempt := 0; ; attempt++ {
		tok := c.static
		if c.iam != nil {
			var err error
			if tok, err = c.iam.Token(ctx); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", c.prov, op, err)
			}
		}
		req, err := c.api.NewRequest(ctx, method, path, body)
		if err != nil {
			return nil, err
		}
		req.Header.Set("X-Auth-Token", tok.Reveal())
		if c.always && req.Header.Get("Content-Type") == "" {
			req.Header.Set("Content-Type", c.ct)
		}
		resp, err := c.api.Do(req, op, v)
		var ae *pipelines.APIError
		if c.iam != nil && attempt == 0 && errors.As(err, &ae) && ae.StatusCode == http.StatusUnauthorized {
			c.log.WarnContext(ctx, "IAM token refused; obtaining a new one", "op", op)
			c.iam.Invalidate(tok)
			continue
		}
		return resp, err
	}
}
