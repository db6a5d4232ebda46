package huaweiiam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gatebot/gatebot/pipelines/apiclient"
	"golang.org/x/sync/singleflight"
)

// Token lifetime handling. IAM tokens live 24 h; a token is replaced
// refreshMargin before it expires so no call races its expiry.
const (
	refreshMargin   = 10 * time.Minute
	assumedLifetime = 23 * time.Hour // if IAM's answer has no expires_at
	iamFetchTimeout = 30 * time.Second
)

// Tokens obtains IAM tokens with a password identity, caches one until
// shortly before it expires, and lets concurrent callers share one refresh.
// It is safe for concurrent use.
type Tokens struct {
	api  *apiclient.Client
	prov string
	cfg  Config
	now  func() time.Time
	log  *slog.Logger
	sf   singleflight.Group
	mu   sync.Mutex
	tok  apiclient.Secret
	exp  time.Time
	done bool // tok is set
}

// NewTokens validates cfg and returns a token source for provider (named in
// errors and logs). extra lists further secrets to keep out of IAM errors
// (the provider's own); it may be nil. No call is made until Token.
func NewTokens(provider string, cfg Config, s apiclient.Settings, extra func() []apiclient.Secret) (*Tokens, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("%s: %w", provider, errors.Join(errs...))
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	t := &Tokens{prov: provider, cfg: cfg, now: s.Now, log: s.Logger}
	api, err := apiclient.New(apiclient.Options{
		Provider:    provider,
		BaseURL:     cfg.Endpoint(),
		HTTPClient:  s.HTTPClient,
		Logger:      s.Logger,
		Now:         s.Now,
		ContentType: "application/json;charset=utf8",
		Secrets: func() []apiclient.Secret {
			out := t.Secrets()
			if extra != nil {
				out = append(out, extra()...)
			}
			return out
		},
		ParseError: ParseError,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: iam: %w", provider, err)
	}
	t.api = api
	return t, nil
}

func (s *Tokens) cached() (apiclient.Secret, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done && s.now().Before(s.exp.Add(-refreshMargin)) {
		return s.tok, true
	}
	return "", false
}

// Secrets returns the password and the cached token (valid or not), for
// redaction.
func (s *Tokens) Secrets() []apiclient.Secret {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == "" {
		return []apiclient.Secret{s.cfg.Password}
	}
	return []apiclient.Secret{s.cfg.Password, s.tok}
}

// Invalidate drops tok if it is still the cached token (after a 401: the
// password or permissions changed, which revokes tokens early).
func (s *Tokens) Invalidate(tok apiclient.Secret) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == tok {
		s.done = false
	}
}

// Token returns a valid token, fetching one if needed. Concurrent callers
// share one fetch, which is detached from any one caller's cancellation.
func (s *Tokens) Token(ctx context.Context) (apiclient.Secret, error) {
	if t, ok := s.cached(); ok {
		return t, nil
	}
	ch := s.sf.DoChan("token", func() (any, error) {
		if t, ok := s.cached(); ok { // a flight that just ended may have filled it
			return t, nil
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), iamFetchTimeout)
		defer cancel()
		return s.fetch(fctx)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(apiclient.Secret), nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// fetch obtains a token.
//
// Huawei Cloud IAM API docs: Obtaining a User Token Through Password
// Authentication, POST /v3/auth/tokens; the token is in the X-Subject-Token
// response header (https://support.huaweicloud.com/intl/en-us/api-iam/iam_30_0001.html).
func (s *Tokens) fetch(ctx context.Context) (apiclient.Secret, error) {
	var body struct {
		Auth struct {
			Identity struct {
				Methods  []string `json:"methods"`
				Password struct {
					User struct {
						Name     string `json:"name"`
						Password string `json:"password"`
						Domain   struct {
							Name string `json:"name"`
						} `json:"domain"`
					} `json:"user"`
				} `json:"password"`
			} `json:"identity"`
			Scope struct {
				Project struct {
					Name string `json:"name"`
				} `json:"project"`
			} `json:"scope"`
		} `json:"auth"`
	}
	body.Auth.Identity.Methods = []string{"password"}
	u := &body.Auth.Identity.Password.User
	u.Name, u.Password, u.Domain.Name = s.cfg.User, s.cfg.Password.Reveal(), s.cfg.Domain
	body.Auth.Scope.Project.Name = s.cfg.ProjectName()

	req, err := s.api.NewRequest(ctx, http.MethodPost, "/v3/auth/tokens", body)
	if err != nil {
		return "", err
	}
	var ans struct {
		Token struct {
			ExpiresAt string `json:"expires_at"`
		} `json:"token"`
	}
	resp, err := s.api.Do(req, "obtain IAM token", &ans)
	if err != nil {
		return "", err
	}
	tok := apiclient.Secret(strings.TrimSpace(resp.Header.Get("X-Subject-Token")))
	if tok == "" {
		return "", s.api.Malformed("obtain IAM token", resp.StatusCode, "answer has no X-Subject-Token header")
	}
	now := s.now()
	exp, err := time.Parse(time.RFC3339Nano, ans.Token.ExpiresAt)
	if err != nil {
		exp = now.Add(assumedLifetime)
	}
	s.mu.Lock()
	s.tok, s.exp, s.done = tok, exp, true
	s.mu.Unlock()
	s.log.InfoContext(ctx, "obtained IAM token", "provider", s.prov, "expires_at", exp)
	return tok, nil
}

// ParseError reads the {"error_code","error_msg"} bodies of Huawei Cloud
// services (CodeArts, ServiceStage) and IAM's
// {"error":{"code","message","title"}}; it fits apiclient.ErrorParser.
func ParseError(b []byte) (string, string) {
	var e struct {
		Code  string `json:"error_code"`
		Msg   string `json:"error_msg"`
		Error struct {
			Code    json.RawMessage `json:"code"`
			Message string          `json:"message"`
			Title   string          `json:"title"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &e) != nil {
		return "", ""
	}
	if e.Code != "" || e.Msg != "" {
		return e.Code, e.Msg
	}
	code := strings.Trim(string(e.Error.Code), `"`)
	msg := e.Error.Message
	if msg == "" {
		msg = e.Error.Title
	}
	return code, msg
}
