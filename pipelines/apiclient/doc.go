// Package apiclient is the small HTTP core that gatebot's pipeline provider
// clients share, in the style of go-github: build a request with NewRequest,
// send it with Do, get back the decoded body or a *pipelines.APIError.
//
// What it does for every provider:
//
//   - joins documented path templates onto the configured base URL, escaping
//     every path parameter (Path) and refusing to send credentials to any
//     other host, including through redirects;
//   - encodes JSON request bodies (or form bodies, or raw readers) and
//     decodes JSON responses, reporting undecodable 2xx bodies as
//     ErrMalformedResponse;
//   - reads error bodies through an io.LimitReader (64 KiB), lets the provider
//     parse its own error shape (ErrorParser) and maps the result onto
//     *pipelines.APIError with StatusCode, Code, Message and RetryAfter
//     (from Retry-After, seconds or HTTP-date: ParseRetryAfter);
//   - redacts every configured secret from error text and never logs
//     headers or bodies; Secret masks itself in fmt, slog, JSON and YAML.
//
// Helpers for provider packages: Target reads a pipeline's target section
// with errors naming the key ("target.app is required"), CheckKeys refuses
// unknown keys, FlexString decodes ids sent as number or string, Malformed
// and Error build APIErrors for problems found inside 2xx answers, and
// Redact/Truncate shape text for errors. Option, the With functions and
// ApplyOptions are the HTTP client, logger and clock options of every
// provider's New (provider packages alias Option).
//
// It does not retry: callers decide with pipelines.IsTemporary and
// APIError.RetryAfter, because only they know whether a call is safe to
// repeat.
//
// Usage:
//
//	c, err := apiclient.New(apiclient.Options{
//		Provider:    "humanitec",
//		BaseURL:     cfg.BaseURL,
//		HTTPClient:  hc, // nil: 30 s timeout
//		Logger:      logger,
//		Authorize:   func(r *http.Request) error { r.Header.Set("Authorization", "Bearer "+cfg.Token.Reveal()); return nil },
//		Secrets:     func() []apiclient.Secret { return []apiclient.Secret{cfg.Token} },
//		ParseError:  parseHumanitecError,
//	})
//	p, err := apiclient.Path("/orgs/{org}/apps/{app}/pipelines/{pipelineId}/runs", org, app, pipeline)
//	req, err := c.NewRequest(ctx, http.MethodPost, p, body)
//	var run pipelineRun
//	resp, err := c.Do(req, "trigger run", &run)
//
// It imports only the pipelines domain package and the standard library; it
// must not import any other gatebot package.
package apiclient
