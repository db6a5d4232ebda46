package bot

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testAppID      = "00000000-0000-0000-0000-0000000000a1"
	testServiceURL = "https://smba.trafficmanager.net/emea/"
	publicIssuer   = "https://api.botframework.com"
)

// RSA key generation is slow; the tests share a few keys.
var testKeys = sync.OnceValue(func() []*rsa.PrivateKey {
	keys := make([]*rsa.PrivateKey, 4)
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keys[i] = k
	}
	return keys
})

type idpKey struct {
	kid          string
	priv         *rsa.PrivateKey
	endorsements []string
}

// fakeIdP serves an OpenID metadata document and its JWKS over TLS and
// counts what it is asked for.
type fakeIdP struct {
	t   testing.TB
	srv *httptest.Server

	mu   sync.Mutex
	keys []idpKey

	metadataHits atomic.Int32
	jwksHits     atomic.Int32
	down         atomic.Bool
	jwksDelay    atomic.Int64 // nanoseconds
	// hung, when set, holds every metadata and JWKS request until it is
	// closed or the client gives up: an identity provider that accepts
	// connections and never answers.
	hung atomic.Pointer[chan struct{}]
}

// hang makes the IdP stop answering until the returned release is called
// (idempotent; also run at cleanup so no handler outlives the test).
func (p *fakeIdP) hang() (release func()) {
	ch := make(chan struct{})
	p.hung.Store(&ch)
	var once sync.Once
	release = func() {
		once.Do(func() {
			p.hung.Store(nil)
			close(ch)
		})
	}
	p.t.Cleanup(release)
	return release
}

func (p *fakeIdP) waitIfHung(r *http.Request) {
	if ch := p.hung.Load(); ch != nil {
		select {
		case <-*ch:
		case <-r.Context().Done():
		}
	}
}

func newFakeIdP(t testing.TB, keys ...idpKey) *fakeIdP {
	t.Helper()
	p := &fakeIdP{t: t, keys: keys}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/.well-known/openidconfiguration", func(w http.ResponseWriter, r *http.Request) {
		p.metadataHits.Add(1)
		p.waitIfHung(r)
		if p.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                publicIssuer,
			"jwks_uri":                              p.srv.URL + "/v1/.well-known/keys",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /v1/.well-known/keys", func(w http.ResponseWriter, r *http.Request) {
		p.jwksHits.Add(1)
		p.waitIfHung(r)
		time.Sleep(time.Duration(p.jwksDelay.Load()))
		if p.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		var set struct {
			Keys []map[string]any `json:"keys"`
		}
		for _, k := range p.keys {
			set.Keys = append(set.Keys, map[string]any{
				"kty": "RSA", "use": "sig", "kid": k.kid,
				"n":            base64.RawURLEncoding.EncodeToString(k.priv.N.Bytes()),
				"e":            base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.priv.E)).Bytes()),
				"endorsements": k.endorsements,
			})
		}
		_ = json.NewEncoder(w).Encode(set)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("fake IdP: unexpected request %s %s", r.Method, r.URL.Path)
		http.NotFound(w, r)
	})
	p.srv = httptest.NewTLSServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *fakeIdP) metadataURL() string { return p.srv.URL + "/v1/.well-known/openidconfiguration" }

func (p *fakeIdP) setKeys(keys ...idpKey) {
	p.mu.Lock()
	p.keys = keys
	p.mu.Unlock()
}

// fakeClock is an injectable clock the tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// channelClaims are valid claims of a Teams channel token at now.
func channelClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss":        publicIssuer,
		"aud":        testAppID,
		"exp":        now.Add(time.Hour).Unix(),
		"nbf":        now.Add(-time.Minute).Unix(),
		"iat":        now.Add(-time.Minute).Unix(),
		"serviceurl": testServiceURL,
	}
}

func signRS256(t testing.TB, priv *rsa.PrivateKey, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type authFixture struct {
	idp   *fakeIdP
	clock *fakeClock
	auth  *Authenticator
}

// newAuthFixture returns an authenticator for testAppID against a fake IdP
// holding key 0 ("k0", endorsed for msteams) and key 1 ("k1", no
// endorsements), warmed.
func newAuthFixture(t testing.TB, mutate func(*AuthConfig)) *authFixture {
	t.Helper()
	keys := testKeys()
	idp := newFakeIdP(t,
		idpKey{kid: "k0", priv: keys[0], endorsements: []string{"msteams", "emulator"}},
		idpKey{kid: "k1", priv: keys[1]},
	)
	clock := newFakeClock()
	cfg := AuthConfig{
		AppID:             testAppID,
		OpenIDMetadataURL: idp.metadataURL(),
		HTTPClient:        idp.srv.Client(),
		Now:               clock.Now,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	a, err := NewAuthenticator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Warm(t.Context()); err != nil {
		t.Fatalf("Warm: %v", err)
	}
	return &authFixture{idp: idp, clock: clock, auth: a}
}

// waitFor polls cond until it holds or a few seconds pass; it is used only
// for effects of background goroutines.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func base64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
