package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

const (
	// refreshEarly is how long before expiry a cached token is replaced
	// (the Emulator's TIME_TO_REFRESH).
	refreshEarly = 5 * time.Minute
	// tokenFetchTimeout bounds one token request; it runs detached from
	// any single caller because others may share it.
	tokenFetchTimeout = 30 * time.Second
	// maxTokenResponseBytes caps token endpoint responses.
	maxTokenResponseBytes = 64 << 10
	// defaultScope is the public cloud's outbound scope.
	defaultScope = "https://api.botframework.com/.default"
)

// TokenSource supplies the bearer token for calls to the Bot Connector.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// TokenError is an error answer from a token endpoint (Entra ID or the
// managed-identity endpoint). Code is the OAuth error code (for example
// "invalid_client") and ErrorCodes the AADSTS numbers. It never contains
// the client secret.
type TokenError struct {
	StatusCode    int
	Code          string
	Description   string
	ErrorCodes    []int
	CorrelationID string
}

// Error describes the failure for logs.
func (e *TokenError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "bot: token endpoint returned %d", e.StatusCode)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	for i, c := range e.ErrorCodes {
		if i == 0 {
			b.WriteString(" (")
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "AADSTS%d", c)
		if i == len(e.ErrorCodes)-1 {
			b.WriteString(")")
		}
	}
	if e.Description != "" {
		b.WriteString(": " + e.Description)
	}
	if e.CorrelationID != "" {
		b.WriteString(" (correlation id " + e.CorrelationID + ")")
	}
	return b.String()
}

// CredentialsConfig configures client-credentials tokens: TokenURL is
// Cloud.TokenURL for a multi-tenant bot or Cloud.SingleTenantTokenURL for a
// single-tenant one.
type CredentialsConfig struct {
	TokenURL     string
	ClientID     string
	ClientSecret string
	// Scope defaults to https://api.botframework.com/.default.
	Scope      string
	HTTPClient *http.Client
	Now        func() time.Time
}

// LogValue masks the secret when the config is logged.
func (c CredentialsConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("token_url", c.TokenURL),
		slog.String("client_id", c.ClientID),
		slog.String("client_secret", mask(c.ClientSecret)),
		slog.String("scope", c.Scope),
	)
}

// String masks the secret when the config is printed.
func (c CredentialsConfig) String() string {
	return fmt.Sprintf("{TokenURL:%s ClientID:%s ClientSecret:%s Scope:%s}", c.TokenURL, c.ClientID, mask(c.ClientSecret), c.Scope)
}

// GoString masks the secret under %#v too.
func (c CredentialsConfig) GoString() string { return "bot.CredentialsConfig" + c.String() }

func mask(secret string) string {
	if secret == "" {
		return ""
	}
	return "[REDACTED]"
}

// NewClientCredentials returns a TokenSource using the OAuth client
// credentials grant. Tokens are cached, refreshed 5 minutes before expiry
// with one refresh at a time, and a refresh failure while the cached token
// is still valid keeps serving it.
func NewClientCredentials(cfg CredentialsConfig) (TokenSource, error) {
	if err := checkFetchURL(cfg.TokenURL); err != nil {
		return nil, fmt.Errorf("bot: token URL: %w", err)
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("bot: client credentials need a client id and secret")
	}
	scope := cfg.Scope
	if scope == "" {
		scope = defaultScope
	}
	client := httpClientOrDefault(cfg.HTTPClient)
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {cfg.ClientID},
		"client_secret": {cfg.ClientSecret},
		"scope":         {scope},
	}.Encode()
	secret := cfg.ClientSecret
	fetch := func(ctx context.Context, now time.Time) (string, time.Time, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.TokenURL, strings.NewReader(form))
		if err != nil {
			return "", time.Time{}, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		return doTokenRequest(client, req, now, secret)
	}
	return newCachedToken(fetch, cfg.Now), nil
}

// ManagedIdentityConfig configures tokens from the App Service / Functions
// managed-identity endpoint (IDENTITY_ENDPOINT and IDENTITY_HEADER).
type ManagedIdentityConfig struct {
	Endpoint string
	// Header is the X-IDENTITY-HEADER value; it is a secret.
	Header string
	// ClientID selects the user-assigned identity the bot is registered with.
	ClientID string
	// Resource defaults to https://api.botframework.com.
	Resource   string
	HTTPClient *http.Client
	Now        func() time.Time
}

// LogValue masks the identity header when the config is logged.
func (c ManagedIdentityConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("endpoint", c.Endpoint),
		slog.String("header", mask(c.Header)),
		slog.String("client_id", c.ClientID),
		slog.String("resource", c.Resource),
	)
}

// String masks the identity header when the config is printed.
func (c ManagedIdentityConfig) String() string {
	return fmt.Sprintf("{Endpoint:%s Header:%s ClientID:%s Resource:%s}", c.Endpoint, mask(c.Header), c.ClientID, c.Resource)
}

// GoString masks the identity header under %#v too.
func (c ManagedIdentityConfig) GoString() string { return "bot.ManagedIdentityConfig" + c.String() }

// NewManagedIdentity returns a TokenSource for a user-assigned managed
// identity, cached and refreshed like NewClientCredentials.
func NewManagedIdentity(cfg ManagedIdentityConfig) (TokenSource, error) {
	if err := checkFetchURL(cfg.Endpoint); err != nil {
		return nil, fmt.Errorf("bot: managed identity endpoint: %w", err)
	}
	if cfg.Header == "" {
		return nil, errors.New("bot: managed identity needs the identity header")
	}
	resource := cfg.Resource
	if resource == "" {
		resource = strings.TrimSuffix(defaultScope, "/.default")
	}
	u, err := url.Parse(cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("bot: managed identity endpoint: %w", err)
	}
	q := u.Query()
	q.Set("api-version", "2019-08-01")
	q.Set("resource", resource)
	if cfg.ClientID != "" {
		q.Set("client_id", cfg.ClientID)
	}
	u.RawQuery = q.Encode()
	endpoint := u.String()
	client := httpClientOrDefault(cfg.HTTPClient)
	header := cfg.Header
	fetch := func(ctx context.Context, now time.Time) (string, time.Time, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
		if err != nil {
			return "", time.Time{}, err
		}
		req.Header.Set("X-IDENTITY-HEADER", header)
		req.Header.Set("Accept", "application/json")
		return doTokenRequest(client, req, now, header)
	}
	return newCachedToken(fetch, cfg.Now), nil
}

// httpClientOrDefault returns the client to use for token requests; it
// never follows redirects, so the secret is only ever sent to the
// configured endpoint.
func httpClientOrDefault(c *http.Client) *http.Client {
	if c == nil {
		c = &http.Client{Timeout: tokenFetchTimeout}
	}
	return withoutRedirects(c)
}

// flexInt accepts a JSON number or a string holding one: the managed
// identity endpoint sends expires_on as a string.
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("not an integer: %s", b)
	}
	*f = flexInt(n)
	return nil
}

type tokenResponse struct {
	AccessToken string  `json:"access_token"`
	TokenType   string  `json:"token_type"`
	ExpiresIn   flexInt `json:"expires_in"`
	ExpiresOn   flexInt `json:"expires_on"`
	// Error answers (OAuth and managed identity shapes).
	Error         string `json:"error"`
	Description   string `json:"error_description"`
	ErrorCodes    []int  `json:"error_codes"`
	CorrelationID string `json:"correlation_id"`
	Message       string `json:"message"`
}

// doTokenRequest performs one token request. secret is scrubbed from
// anything that ends up in an error.
func doTokenRequest(client *http.Client, req *http.Request, now time.Time, secret string) (string, time.Time, error) {
	resp, err := client.Do(req)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("bot: token request: %w", scrubError(err, secret))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponseBytes))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("bot: read token response: %w", err)
	}
	var tr tokenResponse
	jsonErr := json.Unmarshal(body, &tr)
	if resp.StatusCode != http.StatusOK || tr.Error != "" {
		te := &TokenError{StatusCode: resp.StatusCode}
		if jsonErr == nil {
			desc := tr.Description
			if desc == "" {
				desc = tr.Message
			}
			te.Code, te.ErrorCodes, te.CorrelationID = tr.Error, tr.ErrorCodes, tr.CorrelationID
			te.Description = scrub(firstLine(desc), secret)
		}
		return "", time.Time{}, te
	}
	if jsonErr != nil {
		return "", time.Time{}, fmt.Errorf("bot: decode token response: %w", jsonErr)
	}
	if tr.AccessToken == "" {
		return "", time.Time{}, errors.New("bot: token response has no access_token")
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "Bearer") {
		return "", time.Time{}, fmt.Errorf("bot: token type %q is not Bearer", tr.TokenType)
	}
	var exp time.Time
	switch {
	case tr.ExpiresIn > 0:
		exp = now.Add(time.Duration(tr.ExpiresIn) * time.Second)
	case tr.ExpiresOn > 0:
		exp = time.Unix(int64(tr.ExpiresOn), 0)
	default:
		return "", time.Time{}, errors.New("bot: token response has no expiry")
	}
	if !exp.After(now) {
		return "", time.Time{}, errors.New("bot: token endpoint returned an expired token")
	}
	return tr.AccessToken, exp, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	s = strings.TrimSpace(s)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func scrub(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "[REDACTED]")
}

type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

func scrubError(err error, secret string) error {
	if secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return &scrubbedError{msg: scrub(err.Error(), secret), err: err}
}

// cachedToken caches one token and refreshes it through a single flight.
type cachedToken struct {
	fetch func(ctx context.Context, now time.Time) (string, time.Time, error)
	now   func() time.Time
	sf    singleflight.Group

	mu        sync.RWMutex
	token     string
	expiresAt time.Time
	refreshAt time.Time
}

func newCachedToken(fetch func(context.Context, time.Time) (string, time.Time, error), now func() time.Time) *cachedToken {
	if now == nil {
		now = time.Now
	}
	return &cachedToken{fetch: fetch, now: now}
}

// Token returns a valid token, fetching one when the cached token is due
// for refresh. It never returns an empty token without an error.
func (c *cachedToken) Token(ctx context.Context) (string, error) {
	now := c.now()
	c.mu.RLock()
	tok, exp, refreshAt := c.token, c.expiresAt, c.refreshAt
	c.mu.RUnlock()
	if tok != "" && now.Before(refreshAt) {
		return tok, nil
	}
	ch := c.sf.DoChan("token", func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tokenFetchTimeout)
		defer cancel()
		// Another flight may have refreshed while this one was queued.
		start := c.now()
		c.mu.RLock()
		t, r := c.token, c.refreshAt
		c.mu.RUnlock()
		if t != "" && start.Before(r) {
			return t, nil
		}
		t, e, err := c.fetch(fctx, start)
		if err != nil {
			return "", err
		}
		lifetime := e.Sub(start)
		c.mu.Lock()
		c.token, c.expiresAt = t, e
		c.refreshAt = e.Add(-min(refreshEarly, lifetime/2))
		c.mu.Unlock()
		return t, nil
	})
	if tok != "" && now.Before(exp) {
		// Still valid: refresh in the background rather than make every
		// connector call wait on a slow or hanging token endpoint.
		return tok, nil
	}
	select {
	case r := <-ch:
		if r.Err != nil {
			if tok != "" && now.Before(exp) {
				// Keep serving the still-valid token; the next call
				// retries the refresh.
				return tok, nil
			}
			return "", r.Err
		}
		return r.Val.(string), nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}
