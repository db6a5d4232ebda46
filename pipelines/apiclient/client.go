package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatebot/gatebot/pipelines"
)

// Size caps. Error bodies are read through an io.LimitReader so a
// misbehaving API cannot make gatebot buffer megabytes of HTML; messages
// put into errors are shorter still, because they end up on Teams cards.
const (
	MaxErrorBody   = 64 << 10
	MaxSuccessBody = 1 << 20
	MaxMessage     = 1 << 10
)

// DefaultTimeout bounds every call when the caller supplies no *http.Client.
const DefaultTimeout = 30 * time.Second

// ErrMalformedResponse is wrapped by the APIError returned for a 2xx answer
// whose body cannot be decoded. The request may have taken effect, so a
// trigger that fails this way must not be blindly repeated.
var ErrMalformedResponse = errors.New("malformed response body")

// ErrForeignHost is returned when a request or redirect would carry
// credentials to a host other than the configured base URL's.
var ErrForeignHost = errors.New("refusing to send credentials to another host")

// ErrorParser extracts the provider's own error code and message from an
// error response body (already size-capped). It returns empty strings when
// the body is not in the provider's shape; Do then uses the body text.
type ErrorParser func(body []byte) (code, message string)

// Options configures a Client. Provider and BaseURL are required.
type Options struct {
	// Provider is the provider type, copied into every APIError.
	Provider string
	// BaseURL is the API root (scheme, host, optional path prefix).
	BaseURL string
	// HTTPClient sends the requests; nil means a client with DefaultTimeout.
	// It is copied, never modified.
	HTTPClient *http.Client
	// Logger receives one debug line per call (method, path, status,
	// duration; never headers or bodies). Nil discards.
	Logger *slog.Logger
	// Authorize sets credentials on each outgoing request. It runs in Do,
	// with the request's context, so it may fetch or refresh a token.
	Authorize func(*http.Request) error
	// Secrets returns every credential that must never appear in an error
	// or log line (it is a func so rotating tokens are covered).
	Secrets func() []Secret
	// ParseError reads the provider's error body; nil uses the body text.
	ParseError ErrorParser
	// OnResponse sees every response's status and headers (for rate-limit
	// bookkeeping) before Do interprets it.
	OnResponse func(*http.Response)
	// UserAgent is sent on every request; empty means "gatebot".
	UserAgent string
	// ContentType overrides "application/json" for JSON bodies.
	ContentType string
	// Now is the clock for Retry-After dates; nil means time.Now.
	Now func() time.Time
}

// Client is the shared HTTP core of one provider client. It is safe for
// concurrent use.
type Client struct {
	opts Options
	base *url.URL
	hc   *http.Client
	log  *slog.Logger
}

// Response is a completed exchange: the status, headers and the raw body
// (capped), for callers that need more than the decoded value.
type Response struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

// New validates opts and returns a Client.
func New(opts Options) (*Client, error) {
	if opts.Provider == "" {
		return nil, errors.New("apiclient: provider name required")
	}
	base, err := ParseBaseURL(opts.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("apiclient: %w", err)
	}
	var hc http.Client
	if opts.HTTPClient != nil {
		hc = *opts.HTTPClient
	} else {
		hc.Timeout = DefaultTimeout
	}
	next := hc.CheckRedirect
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		// net/http strips Authorization on cross-host redirects but not
		// custom headers such as x-yunxiao-token or X-Auth-Token.
		if !sameHost(req.URL, base) {
			return fmt.Errorf("redirect to %s: %w", req.URL.Host, ErrForeignHost)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "gatebot"
	}
	if opts.ContentType == "" {
		opts.ContentType = "application/json"
	}
	return &Client{opts: opts, base: base, hc: &hc, log: opts.Logger.With("provider", opts.Provider)}, nil
}

// ParseBaseURL checks that s is an absolute http(s) URL without query,
// fragment or user info, and returns it without a trailing slash.
func ParseBaseURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("base_url is required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("base_url: %v", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("base_url %q: scheme must be https (or http)", s)
	case u.Host == "":
		return nil, fmt.Errorf("base_url %q: host is missing", s)
	case u.User != nil:
		return nil, errors.New("base_url: must not contain user info (put credentials in token)")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("base_url %q: must not have a query or fragment", s)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = strings.TrimSuffix(u.RawPath, "/")
	return u, nil
}

func sameHost(u, base *url.URL) bool {
	return strings.EqualFold(u.Scheme, base.Scheme) && strings.EqualFold(u.Host, base.Host)
}

// Path fills a documented path template such as
// "/orgs/{org}/apps/{app}/runs" with params, in order, escaping each one
// as a single path segment. It refuses empty, "." and ".." params and a
// count that does not match the template, so a config value can never
// redirect a call to another endpoint.
func Path(template string, params ...string) (string, error) {
	var b strings.Builder
	rest := template
	i := 0
	for {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			b.WriteString(rest)
			break
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return "", fmt.Errorf("path template %q: unclosed {", template)
		}
		name := rest[open+1 : open+end]
		if i >= len(params) {
			return "", fmt.Errorf("path template %q: no value for {%s}", template, name)
		}
		p := params[i]
		if p == "" || p == "." || p == ".." {
			return "", fmt.Errorf("path parameter %s: %q is not a valid path segment", name, p)
		}
		b.WriteString(rest[:open])
		b.WriteString(url.PathEscape(p))
		rest = rest[open+end+1:]
		i++
	}
	if i != len(params) {
		return "", fmt.Errorf("path template %q: %d values for %d parameters", template, len(params), i)
	}
	return b.String(), nil
}

// Append adds each of segs to path as one escaped segment ("/seg"), with
// the same checks as Path's parameters.
func Append(path string, segs ...string) (string, error) {
	for _, seg := range segs {
		p, err := Path("/{seg}", seg)
		if err != nil {
			return "", err
		}
		path += p
	}
	return path, nil
}

// NewRequest builds a request for ref, a path (from Path, optionally with
// "?query") appended to the base URL, or an absolute URL on the base URL's
// host (a Location header, for example); any other host is refused with
// ErrForeignHost.
//
// body may be nil, an io.Reader (sent as is; set Content-Type yourself),
// url.Values (form-encoded) or any value, which is JSON-encoded without a
// trailing newline and with Options.ContentType.
func (c *Client) NewRequest(ctx context.Context, method, ref string, body any) (*http.Request, error) {
	var u *url.URL
	var err error
	if strings.HasPrefix(ref, "/") {
		u, err = url.Parse(c.base.String() + ref)
	} else {
		u, err = url.Parse(ref)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: build request: %w", c.opts.Provider, err)
	}
	if !u.IsAbs() || !sameHost(u, c.base) {
		return nil, fmt.Errorf("%s: build request for %q: %w", c.opts.Provider, u.Host, ErrForeignHost)
	}
	var rd io.Reader
	contentType := ""
	switch b := body.(type) {
	case nil:
	case io.Reader:
		rd = b
	case url.Values:
		rd = strings.NewReader(b.Encode())
		contentType = "application/x-www-form-urlencoded"
	default:
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(b); err != nil {
			return nil, fmt.Errorf("%s: encode request body: %w", c.opts.Provider, err)
		}
		rd = bytes.NewReader(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
		contentType = c.opts.ContentType
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("%s: build request: %w", c.opts.Provider, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.opts.UserAgent)
	return req, nil
}

// Do authorizes and sends req. op names the operation in errors ("trigger
// run"). On a 2xx answer it decodes a non-empty JSON body into v (if v is
// not nil) and returns the Response; a 2xx body that v cannot hold yields an
// APIError wrapping ErrMalformedResponse. A non-2xx answer yields an
// *pipelines.APIError with the provider's code and message; a transport
// failure (including the context's deadline) yields an *pipelines.APIError
// with StatusCode 0 whose Err wraps the cause, so errors.Is(err,
// context.DeadlineExceeded) works. Error text never contains a secret.
func (c *Client) Do(req *http.Request, op string, v any) (*Response, error) {
	if c.opts.Authorize != nil {
		if err := c.opts.Authorize(req); err != nil {
			return nil, c.transportError(op, fmt.Errorf("authorize: %w", err))
		}
	}
	start := c.opts.Now()
	res, err := c.hc.Do(req)
	if err != nil {
		c.log.LogAttrs(req.Context(), slog.LevelDebug, "provider call failed",
			slog.String("op", op), slog.String("method", req.Method), slog.String("path", req.URL.Path),
			slog.String("error", c.redact(err.Error())))
		return nil, c.transportError(op, err)
	}
	defer res.Body.Close()
	if c.opts.OnResponse != nil {
		c.opts.OnResponse(res)
	}
	c.log.LogAttrs(req.Context(), slog.LevelDebug, "provider call",
		slog.String("op", op), slog.String("method", req.Method), slog.String("path", req.URL.Path),
		slog.Int("status", res.StatusCode), slog.Duration("elapsed", c.opts.Now().Sub(start)))

	ok := res.StatusCode >= 200 && res.StatusCode < 300
	limit := int64(MaxErrorBody)
	if ok {
		limit = MaxSuccessBody
	}
	body, readErr := io.ReadAll(io.LimitReader(res.Body, limit))
	// Drain a little more so the connection can be reused, but never much.
	_, _ = io.CopyN(io.Discard, res.Body, 4<<10)
	resp := &Response{StatusCode: res.StatusCode, Header: res.Header, Body: body}
	if !ok {
		return resp, c.statusError(op, res, body)
	}
	if readErr != nil {
		return resp, c.transportError(op, fmt.Errorf("read response: %w", readErr))
	}
	if v != nil && res.StatusCode != http.StatusNoContent {
		if len(bytes.TrimSpace(body)) == 0 {
			return resp, c.malformed(op, res.StatusCode, errors.New("empty body"))
		}
		if err := json.Unmarshal(body, v); err != nil {
			return resp, c.malformed(op, res.StatusCode, err)
		}
	}
	return resp, nil
}

func (c *Client) secrets() []Secret {
	if c.opts.Secrets == nil {
		return nil
	}
	return c.opts.Secrets()
}

func (c *Client) redact(s string) string { return redact(s, c.secrets()) }

// Redact removes this client's secrets from text, for messages a provider
// builds itself.
func (c *Client) Redact(text string) string { return c.redact(text) }

func (c *Client) transportError(op string, err error) *pipelines.APIError {
	return &pipelines.APIError{Provider: c.opts.Provider, Op: op, Err: &redactedError{err: err, msg: c.redact(err.Error())}}
}

func (c *Client) malformed(op string, status int, err error) *pipelines.APIError {
	return &pipelines.APIError{
		Provider: c.opts.Provider, Op: op, StatusCode: status,
		Err: &redactedError{err: fmt.Errorf("%w: %w", ErrMalformedResponse, err), msg: c.redact(ErrMalformedResponse.Error() + ": " + err.Error())},
	}
}

// Malformed builds the APIError for a 2xx answer that lacks what the
// operation needs (a run id, say); it wraps ErrMalformedResponse. The call
// may have taken effect, so it is not Temporary.
func (c *Client) Malformed(op string, status int, reason string) *pipelines.APIError {
	return c.malformed(op, status, errors.New(reason))
}

// Error builds an APIError for a problem the provider reported inside a
// successful answer (Opsera's {"status":"failed"}), with secrets redacted.
func (c *Client) Error(op string, status int, code, message string) *pipelines.APIError {
	return &pipelines.APIError{Provider: c.opts.Provider, Op: op, StatusCode: status,
		Code: Truncate(c.redact(code), 100), Message: Truncate(c.redact(message), MaxMessage)}
}

func (c *Client) statusError(op string, res *http.Response, body []byte) *pipelines.APIError {
	var code, msg string
	if c.opts.ParseError != nil {
		code, msg = c.opts.ParseError(body)
	}
	if code == "" && msg == "" {
		msg = strings.TrimSpace(string(body))
		if strings.HasPrefix(strings.ToLower(res.Header.Get("Content-Type")), "text/html") || !utf8.ValidString(msg) {
			msg = "" // an HTML error page tells a Teams user nothing
		}
		if msg == "" {
			msg = http.StatusText(res.StatusCode)
		}
	}
	e := c.Error(op, res.StatusCode, code, msg)
	if d, ok := ParseRetryAfter(res.Header.Get("Retry-After"), c.opts.Now()); ok {
		e.RetryAfter = d
	}
	return e
}

// Truncate shortens s to at most n bytes on a rune boundary, marking the
// cut with "…".
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// redactedError keeps the cause for errors.Is/As while its text has the
// secrets removed (a *url.Error quotes the full URL, for example).
type redactedError struct {
	err error
	msg string
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
