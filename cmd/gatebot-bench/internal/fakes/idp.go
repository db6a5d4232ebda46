package fakes

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Bot Framework constants the fake IdP signs with, from
// /work/shared/docs/botframework-protocol.md §1 and §2.
const (
	// ChannelIssuer is the iss of channel (Connector → bot) tokens.
	ChannelIssuer = "https://api.botframework.com"
	// BotScope is the scope the bot asks for in its outbound token.
	BotScope = "https://api.botframework.com/.default"
	// botAudience is the aud of the bot's outbound token.
	botAudience = "https://api.botframework.com"

	// MetadataPath, KeysPath and TokenPath are the IdP's routes, relative
	// to its base URL.
	MetadataPath = "/v1/.well-known/openidconfiguration"
	KeysPath     = "/v1/.well-known/keys"
	TokenPath    = "/botframework.com/oauth2/v2.0/token"

	channelKID = "bench-channel-1"
	botKID     = "bench-bot-1"
	tokenTTL   = time.Hour
	// reuseFor: the Connector reuses a channel token for many requests;
	// the bench does too, renewing well before exp.
	reuseFor = 30 * time.Minute
)

// IdPConfig configures the fake identity provider.
type IdPConfig struct {
	// AppID is the bot's Microsoft App ID: aud of channel tokens and the
	// client_id the bot must present.
	AppID string
	// AppPassword is the client secret the bot must present.
	AppPassword string
	// BaseURL is where the IdP is reachable (no trailing slash), used in
	// the metadata's jwks_uri.
	BaseURL string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// IdP is the fake Bot Framework identity provider. It is safe for
// concurrent use.
type IdP struct {
	cfg        IdPConfig
	channelKey *rsa.PrivateKey
	botKey     *rsa.PrivateKey
	mux        *http.ServeMux

	mu       sync.Mutex
	channel  map[string]cachedToken // serviceUrl → token
	metadata atomic.Int64
	keys     atomic.Int64
	tokens   atomic.Int64
	refused  atomic.Int64
}

type cachedToken struct {
	token   string
	renewAt time.Time
}

// NewIdP generates the signing keys and returns the IdP.
func NewIdP(cfg IdPConfig) (*IdP, error) {
	if cfg.AppID == "" || cfg.AppPassword == "" || cfg.BaseURL == "" {
		return nil, errors.New("fakes: IdP needs an app id, an app password and a base URL")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ck, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("fakes: channel key: %w", err)
	}
	bk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("fakes: bot key: %w", err)
	}
	p := &IdP{cfg: cfg, channelKey: ck, botKey: bk, mux: http.NewServeMux(), channel: map[string]cachedToken{}}
	p.mux.HandleFunc("GET "+MetadataPath, p.serveMetadata)
	p.mux.HandleFunc("GET "+KeysPath, p.serveKeys)
	p.mux.HandleFunc("POST "+TokenPath, p.serveToken)
	return p, nil
}

// MetadataURL is the OpenID metadata URL for gatebot's
// bot.openid_metadata_url.
func (p *IdP) MetadataURL() string { return p.cfg.BaseURL + MetadataPath }

// TokenURL is the token endpoint for gatebot's bot.token_url.
func (p *IdP) TokenURL() string { return p.cfg.BaseURL + TokenPath }

// ServeHTTP serves metadata, JWKS and the token endpoint.
func (p *IdP) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.mux.ServeHTTP(w, r) }

func (p *IdP) serveMetadata(w http.ResponseWriter, _ *http.Request) {
	p.metadata.Add(1)
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                ChannelIssuer,
		"authorization_endpoint":                "https://invalid.botframework.com",
		"jwks_uri":                              p.cfg.BaseURL + KeysPath,
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"token_endpoint_auth_methods_supported": []string{"private_key_jwt"},
	})
}

// serveKeys publishes only the channel key, endorsed for msteams as Bot
// Framework endorses Teams keys.
func (p *IdP) serveKeys(w http.ResponseWriter, _ *http.Request) {
	p.keys.Add(1)
	pub := p.channelKey.PublicKey
	writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]any{{
		"kty": "RSA", "use": "sig", "kid": channelKID,
		"n":            base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e":            base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		"endorsements": []string{"msteams"},
	}}})
}

// serveToken is the client-credentials grant of §2: form-encoded
// grant_type, client_id, client_secret and scope, all checked.
func (p *IdP) serveToken(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		p.refuse(w, http.StatusBadRequest, "invalid_request", "AADSTS900144: body must be form-encoded")
		return
	}
	if err := r.ParseForm(); err != nil {
		p.refuse(w, http.StatusBadRequest, "invalid_request", "AADSTS900144: unreadable form")
		return
	}
	f := r.PostForm
	switch {
	case f.Get("grant_type") != "client_credentials":
		p.refuse(w, http.StatusBadRequest, "unsupported_grant_type", "AADSTS70003: grant_type must be client_credentials")
		return
	case f.Get("client_id") != p.cfg.AppID:
		p.refuse(w, http.StatusBadRequest, "unauthorized_client", "AADSTS700016: unknown client_id")
		return
	case subtle.ConstantTimeCompare([]byte(f.Get("client_secret")), []byte(p.cfg.AppPassword)) != 1:
		p.refuse(w, http.StatusUnauthorized, "invalid_client", "AADSTS7000215: invalid client secret")
		return
	case f.Get("scope") != BotScope:
		p.refuse(w, http.StatusBadRequest, "invalid_scope", "AADSTS70011: scope must be "+BotScope)
		return
	}
	now := p.cfg.Now()
	tok, err := sign(p.botKey, botKID, jwt.MapClaims{
		"iss": "https://sts.windows.net/d6d49420-f39b-4df7-a1dc-d59a935871db/", "aud": botAudience,
		"appid": p.cfg.AppID, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(tokenTTL).Unix(),
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	p.tokens.Add(1)
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type": "Bearer", "expires_in": int(tokenTTL.Seconds()), "ext_expires_in": int(tokenTTL.Seconds()), "access_token": tok,
	})
}

func (p *IdP) refuse(w http.ResponseWriter, status int, code, desc string) {
	p.refused.Add(1)
	writeJSON(w, status, map[string]any{"error": code, "error_description": desc})
}

// ChannelToken returns a channel token for serviceURL as the Connector
// sends it (requirements 1–7 of §1): RS256 with the JWKS kid, iss
// https://api.botframework.com, aud the app id, serviceurl claim, nbf,
// iat and exp. It is reused until half its life has passed, as the
// Connector reuses its tokens.
func (p *IdP) ChannelToken(serviceURL string) (string, error) {
	now := p.cfg.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.channel[serviceURL]; ok && now.Before(c.renewAt) {
		return c.token, nil
	}
	tok, err := sign(p.channelKey, channelKID, jwt.MapClaims{
		"iss": ChannelIssuer, "aud": p.cfg.AppID, "serviceurl": serviceURL,
		"iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(tokenTTL).Unix(),
	})
	if err != nil {
		return "", err
	}
	p.channel[serviceURL] = cachedToken{token: tok, renewAt: now.Add(reuseFor)}
	return tok, nil
}

// CheckBotToken reports whether authorization ("Bearer …") carries a token
// this IdP issued to the bot and that is still valid: what the Connector
// checks on every call.
func (p *IdP) CheckBotToken(authorization string) error {
	scheme, tok, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return errors.New("no bearer token")
	}
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(botAudience),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(p.cfg.Now),
	).ParseWithClaims(tok, claims, func(t *jwt.Token) (any, error) {
		if t.Header["kid"] != botKID {
			return nil, errors.New("unknown kid")
		}
		return &p.botKey.PublicKey, nil
	})
	if err != nil {
		return fmt.Errorf("bot token: %w", err)
	}
	if claims["appid"] != p.cfg.AppID {
		return fmt.Errorf("bot token: appid %v is not the bot", claims["appid"])
	}
	return nil
}

// IdPStats counts what the IdP served.
type IdPStats struct {
	MetadataFetches int64 `json:"metadata_fetches"`
	KeyFetches      int64 `json:"key_fetches"`
	TokensIssued    int64 `json:"tokens_issued"`
	TokensRefused   int64 `json:"tokens_refused"`
}

// Stats returns the counters.
func (p *IdP) Stats() IdPStats {
	return IdPStats{p.metadata.Load(), p.keys.Load(), p.tokens.Load(), p.refused.Load()}
}

func sign(key *rsa.PrivateKey, kid string, claims jwt.MapClaims) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = kid
	s, err := t.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("fakes: sign: %w", err)
	}
	return s, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
