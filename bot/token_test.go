package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testClientID = "00000000-0000-0000-0000-0000000000a1"
	testSecret   = "s3cr3t~Value.With-Chars"
	testTenant   = "11111111-2222-3333-4444-555555555555"
)

// fakeTokenEndpoint is an Entra ID client-credentials endpoint that
// asserts the request it receives.
type fakeTokenEndpoint struct {
	t     *testing.T
	srv   *httptest.Server
	hits  atomic.Int32
	delay time.Duration
	// respond writes the answer; nil issues tokens "tok-<n>" for 3600 s.
	respond func(w http.ResponseWriter, n int32)
}

func newFakeTokenEndpoint(t *testing.T, wantScope string) *fakeTokenEndpoint {
	f := &fakeTokenEndpoint{t: t}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := f.hits.Add(1)
		if r.Method != http.MethodPost || r.URL.Path != "/"+testTenant+"/oauth2/v2.0/token" {
			t.Errorf("token endpoint: got %s %s", r.Method, r.URL.Path)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("token endpoint: content type %q", ct)
		}
		if err := r.ParseForm(); err != nil {
			t.Errorf("token endpoint: %v", err)
		}
		want := map[string]string{"grant_type": "client_credentials", "client_id": testClientID, "client_secret": testSecret, "scope": wantScope}
		for k, v := range want {
			if got := r.PostForm.Get(k); got != v {
				t.Errorf("token endpoint: form %s = %q, want %q", k, got, v)
			}
		}
		if len(r.PostForm) != len(want) {
			t.Errorf("token endpoint: unexpected form fields %v", r.PostForm)
		}
		time.Sleep(f.delay)
		if f.respond != nil {
			f.respond(w, n)
			return
		}
		fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":3600,"ext_expires_in":3600,"access_token":"tok-%d"}`, n)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeTokenEndpoint) source(t *testing.T, clock *fakeClock, scope string) TokenSource {
	t.Helper()
	ts, err := NewClientCredentials(CredentialsConfig{
		TokenURL: f.srv.URL + "/" + testTenant + "/oauth2/v2.0/token", ClientID: testClientID, ClientSecret: testSecret,
		Scope: scope, HTTPClient: f.srv.Client(), Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestClientCredentialsCacheAndRefresh(t *testing.T) {
	ep := newFakeTokenEndpoint(t, "https://api.botframework.com/.default")
	clock := newFakeClock()
	ts := ep.source(t, clock, "")

	get := func(want string) {
		t.Helper()
		tok, err := ts.Token(t.Context())
		if err != nil || tok != want {
			t.Fatalf("Token = %q, %v; want %q", tok, err, want)
		}
	}
	get("tok-1")
	get("tok-1")
	clock.Advance(54*time.Minute + 59*time.Second)
	get("tok-1")
	clock.Advance(2 * time.Second) // inside the 5-minute refresh window
	eventuallyToken(t, ts, "tok-2")
	get("tok-2")
	if n := ep.hits.Load(); n != 2 {
		t.Errorf("token endpoint hit %d times, want 2", n)
	}
}

func TestClientCredentialsOneRefreshAtATime(t *testing.T) {
	ep := newFakeTokenEndpoint(t, "https://api.botframework.us/.default")
	ep.delay = 50 * time.Millisecond
	ts := ep.source(t, newFakeClock(), "https://api.botframework.us/.default")
	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() {
			if tok, err := ts.Token(t.Context()); err != nil || tok != "tok-1" {
				t.Errorf("Token = %q, %v", tok, err)
			}
		})
	}
	wg.Wait()
	if n := ep.hits.Load(); n != 1 {
		t.Errorf("token endpoint hit %d times by concurrent callers, want 1", n)
	}
}

func TestClientCredentialsErrors(t *testing.T) {
	tests := []struct {
		name     string
		respond  func(w http.ResponseWriter, n int32)
		wantCode string
		wantAAD  []int
		wantText string
	}{
		{"invalid secret", func(w http.ResponseWriter, _ int32) {
			w.WriteHeader(http.StatusUnauthorized)
			// Entra never echoes the secret, but the client must not rely on it.
			fmt.Fprintf(w, `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided (%s).\r\nTrace ID: t\r\nCorrelation ID: c","error_codes":[7000215],"correlation_id":"corr-1"}`, testSecret)
		}, "invalid_client", []int{7000215}, "AADSTS7000215"},
		{"unknown tenant", func(w http.ResponseWriter, _ int32) {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_request","error_description":"AADSTS90002: Tenant not found.","error_codes":[90002]}`)
		}, "invalid_request", []int{90002}, "AADSTS90002"},
		{"error with 200", func(w http.ResponseWriter, _ int32) {
			fmt.Fprint(w, `{"error":"temporarily_unavailable"}`)
		}, "temporarily_unavailable", nil, "temporarily_unavailable"},
		{"html 503", func(w http.ResponseWriter, _ int32) {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `<html>down</html>`)
		}, "", nil, "503"},
		{"empty access token", func(w http.ResponseWriter, _ int32) {
			fmt.Fprint(w, `{"token_type":"Bearer","expires_in":3600,"access_token":""}`)
		}, "", nil, "no access_token"},
		{"no expiry", func(w http.ResponseWriter, _ int32) {
			fmt.Fprint(w, `{"token_type":"Bearer","access_token":"x"}`)
		}, "", nil, "no expiry"},
		{"wrong token type", func(w http.ResponseWriter, _ int32) {
			fmt.Fprint(w, `{"token_type":"pop","expires_in":3600,"access_token":"x"}`)
		}, "", nil, "not Bearer"},
		{"not json", func(w http.ResponseWriter, _ int32) {
			fmt.Fprint(w, `token=x`)
		}, "", nil, "decode token response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := newFakeTokenEndpoint(t, defaultScope)
			ep.respond = tt.respond
			tok, err := ep.source(t, newFakeClock(), "").Token(t.Context())
			if err == nil || tok != "" {
				t.Fatalf("Token = %q, %v; want an error and no token", tok, err)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Fatalf("error leaks the secret: %v", err)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not say %q", err, tt.wantText)
			}
			var te *TokenError
			if tt.wantCode != "" || tt.wantText == "503" {
				if !errors.As(err, &te) {
					t.Fatalf("error is not a *TokenError: %v", err)
				}
				if te.Code != tt.wantCode || fmt.Sprint(te.ErrorCodes) != fmt.Sprint(tt.wantAAD) {
					t.Errorf("TokenError = %+v", te)
				}
			}
		})
	}
}

func TestClientCredentialsRefreshFailureKeepsValidToken(t *testing.T) {
	ep := newFakeTokenEndpoint(t, defaultScope)
	var fail atomic.Bool
	ep.respond = func(w http.ResponseWriter, n int32) {
		if fail.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `{"error":"server_error"}`)
			return
		}
		fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":3600,"access_token":"tok-%d"}`, n)
	}
	clock := newFakeClock()
	ts := ep.source(t, clock, "")
	if _, err := ts.Token(t.Context()); err != nil {
		t.Fatal(err)
	}
	fail.Store(true)
	clock.Advance(57 * time.Minute) // due for refresh, still valid
	if tok, err := ts.Token(t.Context()); err != nil || tok != "tok-1" {
		t.Fatalf("Token during failed refresh = %q, %v; want the still-valid tok-1", tok, err)
	}
	clock.Advance(4 * time.Minute) // expired
	var te *TokenError
	if tok, err := ts.Token(t.Context()); !errors.As(err, &te) || tok != "" {
		t.Fatalf("Token after expiry = %q, %v; want TokenError", tok, err)
	}
	fail.Store(false)
	if tok, err := ts.Token(t.Context()); err != nil || tok == "tok-1" || tok == "" {
		t.Fatalf("Token after recovery = %q, %v", tok, err)
	}
}

func TestClientCredentialsShortLifetime(t *testing.T) {
	ep := newFakeTokenEndpoint(t, defaultScope)
	ep.respond = func(w http.ResponseWriter, n int32) {
		fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":"120","access_token":"tok-%d"}`, n)
	}
	clock := newFakeClock()
	ts := ep.source(t, clock, "")
	for range 3 {
		if tok, _ := ts.Token(t.Context()); tok != "tok-1" {
			t.Fatalf("Token = %q; a 2-minute token must be reused for its first half", tok)
		}
	}
	clock.Advance(61 * time.Second)
	eventuallyToken(t, ts, "tok-2")
}

func TestClientCredentialsTransportErrorHasNoSecret(t *testing.T) {
	ep := newFakeTokenEndpoint(t, defaultScope)
	ts := ep.source(t, newFakeClock(), "")
	ep.srv.Close()
	_, err := ts.Token(t.Context())
	if err == nil || strings.Contains(err.Error(), testSecret) {
		t.Fatalf("err = %v", err)
	}
}

func TestCredentialsConfigValidationAndMasking(t *testing.T) {
	bad := []CredentialsConfig{
		{TokenURL: "https://login.example/t", ClientID: "a"},
		{TokenURL: "https://login.example/t", ClientSecret: "b"},
		{TokenURL: "http://login.example/t", ClientID: "a", ClientSecret: "b"},
		{TokenURL: "", ClientID: "a", ClientSecret: "b"},
	}
	for i, cfg := range bad {
		if _, err := NewClientCredentials(cfg); err == nil {
			t.Errorf("config %d accepted", i)
		}
	}
	cfg := CredentialsConfig{TokenURL: "https://login.example/t", ClientID: "a", ClientSecret: testSecret}
	mi := ManagedIdentityConfig{Endpoint: "http://127.0.0.1:41000/msi/token", Header: testSecret}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("cfg", "creds", cfg, "mi", mi)
	out := buf.String() + fmt.Sprintf("%v %+v %#v %s %v %+v %#v", cfg, cfg, cfg, cfg, mi, mi, mi)
	if strings.Contains(out, testSecret) {
		t.Fatalf("secret printed: %s", out)
	}
	if !strings.Contains(out, "[REDACTED]") {
		t.Fatalf("no masking marker in %s", out)
	}
}

func TestManagedIdentity(t *testing.T) {
	clock := newFakeClock()
	var hits atomic.Int32
	var fail atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		q := r.URL.Query()
		if r.Method != http.MethodGet || r.URL.Path != "/msi/token" {
			t.Errorf("MSI: got %s %s", r.Method, r.URL.Path)
		}
		if q.Get("api-version") != "2019-08-01" || q.Get("resource") != "https://api.botframework.com" || q.Get("client_id") != "mi-client" {
			t.Errorf("MSI: query %v", q)
		}
		if r.Header.Get("X-IDENTITY-HEADER") != "id-header-secret" {
			t.Errorf("MSI: identity header %q", r.Header.Get("X-IDENTITY-HEADER"))
		}
		if fail.Load() {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"statusCode":400,"message":"Unable to load the proper Managed Identity.","correlationId":"x"}`)
			return
		}
		exp := clock.Now().Add(24 * time.Hour).Unix()
		_ = json.NewEncoder(w).Encode(map[string]string{
			"access_token": "mi-" + strconv.Itoa(int(n)), "expires_on": strconv.FormatInt(exp, 10),
			"resource": "https://api.botframework.com", "token_type": "Bearer", "client_id": "mi-client",
		})
	}))
	t.Cleanup(srv.Close)
	ts, err := NewManagedIdentity(ManagedIdentityConfig{Endpoint: srv.URL + "/msi/token", Header: "id-header-secret", ClientID: "mi-client", Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if tok, err := ts.Token(t.Context()); err != nil || tok != "mi-1" {
			t.Fatalf("Token = %q, %v", tok, err)
		}
	}
	clock.Advance(24*time.Hour - 4*time.Minute)
	eventuallyToken(t, ts, "mi-2")
	fail.Store(true)
	clock.Advance(24 * time.Hour)
	_, err = ts.Token(t.Context())
	var te *TokenError
	if !errors.As(err, &te) || te.StatusCode != 400 || !strings.Contains(te.Description, "Managed Identity") || strings.Contains(err.Error(), "id-header-secret") {
		t.Fatalf("err = %v", err)
	}

	for _, cfg := range []ManagedIdentityConfig{
		{Endpoint: srv.URL},
		{Endpoint: "http://169.254.169.254/metadata/identity/oauth2/token", Header: "h"},
	} {
		if _, err := NewManagedIdentity(cfg); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}

// TestClientCredentialsDoesNotFollowRedirects: a 307 would re-post the
// form, secret included, to wherever Location points.
func TestClientCredentialsDoesNotFollowRedirects(t *testing.T) {
	var otherHits atomic.Int32
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { otherHits.Add(1) }))
	t.Cleanup(other.Close)
	ep := newFakeTokenEndpoint(t, defaultScope)
	ep.respond = func(w http.ResponseWriter, _ int32) {
		w.Header().Set("Location", other.URL+"/steal")
		w.WriteHeader(http.StatusTemporaryRedirect)
	}
	_, err := ep.source(t, newFakeClock(), "").Token(t.Context())
	var te *TokenError
	if !errors.As(err, &te) || te.StatusCode != http.StatusTemporaryRedirect || otherHits.Load() != 0 {
		t.Fatalf("err = %v, other host hit %d times", err, otherHits.Load())
	}
}

// eventuallyToken waits for a background refresh: a token in its refresh
// window is still valid, so callers keep getting it until the new one is in.
func eventuallyToken(t *testing.T, ts TokenSource, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		tok, err := ts.Token(t.Context())
		if err == nil && tok == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Token = %q, %v; want %q after the background refresh", tok, err, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTokenServedWhileRefreshHangs: a token endpoint that hangs during the
// refresh window must not stall connector calls while the cached token is
// still valid.
func TestTokenServedWhileRefreshHangs(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	release := make(chan struct{})
	defer close(release)
	calls := 0
	ct := newCachedToken(func(ctx context.Context, at time.Time) (string, time.Time, error) {
		calls++
		if calls == 1 {
			return "tok-1", at.Add(time.Hour), nil
		}
		select { // the second fetch hangs
		case <-release:
		case <-ctx.Done():
		}
		return "", time.Time{}, ctx.Err()
	}, clock)
	if tok, err := ct.Token(t.Context()); err != nil || tok != "tok-1" {
		t.Fatalf("Token = %q, %v", tok, err)
	}
	mu.Lock()
	now = now.Add(57 * time.Minute) // in the refresh window, 3 minutes left
	mu.Unlock()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	// Waiting on the hanging refresh would end in the context's deadline.
	tok, err := ct.Token(ctx)
	if err != nil || tok != "tok-1" {
		t.Fatalf("Token = %q, %v; want the still-valid cached token", tok, err)
	}
}
