package bot

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

const (
	// maxDocumentBytes caps OpenID metadata and JWKS responses.
	maxDocumentBytes = 1 << 20
	// backgroundFetchTimeout bounds a refresh nobody waits for.
	backgroundFetchTimeout = 30 * time.Second
	// coldRetryInterval is how often a cache that never loaded may retry,
	// so an IdP outage at start-up does not turn into a fetch per request.
	coldRetryInterval = 5 * time.Second
	// minRSABits rejects weak keys even if a metadata document lists them.
	minRSABits = 2048
	// defaultMaxKeyWait bounds how long a request waits for a key fetch
	// (cold cache or unknown kid). A hanging identity provider must give
	// the channel a prompt 401 it can retry, not hold the request until
	// the fetch's own timeout.
	defaultMaxKeyWait = 5 * time.Second
)

var errFetchRateLimited = errors.New("key refetch rate-limited")

// signingKey is one parsed JWKS entry. It is shared read-only between
// requests once cached.
type signingKey struct {
	pub          *rsa.PublicKey
	endorsements []string
}

// keySet caches the signing keys behind one OpenID metadata document.
// Requests never fetch while the cache is fresh; a stale cache is refreshed
// in the background while still serving; an unknown kid triggers at most one
// fetch per minRefetch, shared by all concurrent callers.
type keySet struct {
	name        string // for logs: "channel" or "emulator"
	metadataURL string
	client      *http.Client
	logger      *slog.Logger
	now         func() time.Time
	refresh     time.Duration
	minRefetch  time.Duration
	maxWait     time.Duration // 0 means defaultMaxKeyWait

	sf         singleflight.Group
	refreshing atomic.Bool

	mu          sync.RWMutex
	keys        map[string]*signingKey
	fetchedAt   time.Time // last successful fetch
	lastAttempt time.Time // start of the last fetch, successful or not
	lastErr     error     // error of the last fetch; nil after a success
}

// key returns the key with the given kid.
func (s *keySet) key(ctx context.Context, kid string) (*signingKey, error) {
	s.mu.RLock()
	k, loaded := s.keys[kid], s.keys != nil
	now := s.now()
	stale := loaded && now.Sub(s.fetchedAt) >= s.refresh
	s.mu.RUnlock()

	if k != nil {
		if stale {
			s.refreshInBackground()
		}
		return k, nil
	}
	// Unknown kid (or nothing loaded yet): fetch now, at most once per
	// interval, sharing the fetch with concurrent callers.
	wait := s.maxWait
	if wait <= 0 {
		wait = defaultMaxKeyWait
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	err := s.fetchShared(wctx, false)
	cancel()
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		err = fmt.Errorf("bot: %s signing keys: the identity provider did not answer within %s", s.name, wait)
	}
	s.mu.RLock()
	k = s.keys[kid]
	s.mu.RUnlock()
	if k != nil {
		return k, nil
	}
	switch {
	case errors.Is(err, errFetchRateLimited):
		// Say why the key is missing: a refusal during an IdP outage
		// must name the outage, not only the rate limit.
		s.mu.RLock()
		last := s.lastErr
		s.mu.RUnlock()
		if last != nil {
			return nil, fmt.Errorf("unknown signing key id %q (refetch rate-limited; the last fetch failed: %w)", kid, last)
		}
		return nil, fmt.Errorf("unknown signing key id %q (refetch rate-limited)", kid)
	case err != nil:
		return nil, fmt.Errorf("unknown signing key id %q: %w", kid, err)
	}
	return nil, fmt.Errorf("unknown signing key id %q", kid)
}

// cached returns the cached key with the given kid, without fetching.
func (s *keySet) cached(kid string) *signingKey {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.keys[kid]
}

// loaded reports whether a fetch has ever succeeded with at least one key.
func (s *keySet) loaded() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.keys) > 0
}

// fetchShared runs one fetch for all concurrent callers; each caller still
// honours its own ctx while waiting.
func (s *keySet) fetchShared(ctx context.Context, force bool) error {
	ch := s.sf.DoChan("fetch", func() (any, error) {
		// The fetch outlives a cancelled caller: others may be waiting.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), backgroundFetchTimeout)
		defer cancel()
		return nil, s.fetch(fctx, force)
	})
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *keySet) refreshInBackground() {
	if !s.refreshing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer s.refreshing.Store(false)
		err := s.fetchShared(context.Background(), false)
		if err != nil && !errors.Is(err, errFetchRateLimited) {
			s.logger.Warn("bot: signing key refresh failed; serving cached keys", "keys", s.name, "err", err)
		}
	}()
}

// fetch loads metadata and JWKS and replaces the cached keys. Unless force
// is set it does nothing when the last attempt was too recent.
func (s *keySet) fetch(ctx context.Context, force bool) error {
	s.mu.Lock()
	now := s.now()
	interval := s.minRefetch
	if s.keys == nil {
		interval = min(interval, coldRetryInterval)
	}
	if !force && !s.lastAttempt.IsZero() && now.Sub(s.lastAttempt) < interval {
		s.mu.Unlock()
		return errFetchRateLimited
	}
	s.lastAttempt = now
	s.mu.Unlock()

	keys, err := s.download(ctx)
	if err != nil {
		err = fmt.Errorf("bot: fetch %s signing keys: %w", s.name, err)
		s.mu.Lock()
		s.lastErr = err
		s.mu.Unlock()
		return err
	}
	s.mu.Lock()
	s.keys = keys
	s.fetchedAt = s.now()
	s.lastErr = nil
	s.mu.Unlock()
	s.logger.Debug("bot: signing keys loaded", "keys", s.name, "count", len(keys))
	return nil
}

type openIDMetadata struct {
	Issuer  string   `json:"issuer"`
	JWKSURI string   `json:"jwks_uri"`
	Algs    []string `json:"id_token_signing_alg_values_supported"`
}

type jwkSet struct {
	Keys []jwk `json:"keys"`
}

type jwk struct {
	Kty          string   `json:"kty"`
	Use          string   `json:"use"`
	Kid          string   `json:"kid"`
	N            string   `json:"n"`
	E            string   `json:"e"`
	X5c          []string `json:"x5c"`
	Endorsements []string `json:"endorsements"`
}

func (s *keySet) download(ctx context.Context) (map[string]*signingKey, error) {
	var md openIDMetadata
	if err := s.getJSON(ctx, s.metadataURL, &md); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	if err := checkFetchURL(md.JWKSURI); err != nil {
		return nil, fmt.Errorf("metadata jwks_uri: %w", err)
	}
	var set jwkSet
	if err := s.getJSON(ctx, md.JWKSURI, &set); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	keys := make(map[string]*signingKey, len(set.Keys))
	for _, k := range set.Keys {
		if k.Kid == "" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		pub, err := k.rsaKey()
		if err != nil {
			s.logger.Warn("bot: skipping unusable signing key", "keys", s.name, "kid", k.Kid, "err", err)
			continue
		}
		keys[k.Kid] = &signingKey{pub: pub, endorsements: k.Endorsements}
	}
	if len(keys) == 0 {
		return nil, errors.New("jwks has no usable RSA signing keys")
	}
	return keys, nil
}

func (k jwk) rsaKey() (*rsa.PublicKey, error) {
	if k.Kty != "RSA" {
		return nil, fmt.Errorf("key type %q is not RSA", k.Kty)
	}
	var pub *rsa.PublicKey
	if k.N != "" && k.E != "" {
		n, err := decodeB64URL(k.N)
		if err != nil {
			return nil, fmt.Errorf("modulus: %w", err)
		}
		e, err := decodeB64URL(k.E)
		if err != nil {
			return nil, fmt.Errorf("exponent: %w", err)
		}
		if len(e) == 0 || len(e) > 4 {
			return nil, errors.New("exponent out of range")
		}
		exp := 0
		for _, b := range e {
			exp = exp<<8 | int(b)
		}
		pub = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}
	} else if len(k.X5c) > 0 {
		der, err := base64.StdEncoding.DecodeString(k.X5c[0])
		if err != nil {
			return nil, fmt.Errorf("x5c: %w", err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("x5c: %w", err)
		}
		rk, ok := cert.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, errors.New("x5c certificate key is not RSA")
		}
		pub = rk
	} else {
		return nil, errors.New("no n/e or x5c")
	}
	if pub.N.BitLen() < minRSABits {
		return nil, fmt.Errorf("RSA key of %d bits is too small", pub.N.BitLen())
	}
	if pub.E < 3 || pub.E%2 == 0 {
		return nil, fmt.Errorf("invalid RSA exponent %d", pub.E)
	}
	return pub, nil
}

func decodeB64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

func (s *keySet) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDocumentBytes))
		return fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if len(b) > maxDocumentBytes {
		return fmt.Errorf("GET %s: document larger than %d bytes", u, maxDocumentBytes)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// checkFetchURL accepts https URLs, and http only to loopback (tests, local
// identity providers).
func checkFetchURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return nil
		}
	}
	return fmt.Errorf("%q must use https", raw)
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// maxVerifiedTokens bounds the verified-token cache. Only tokens with a
// valid signature are admitted, so its size tracks the few tokens the
// channel really uses, not what an attacker sends.
const maxVerifiedTokens = 512

type verifiedEntry struct {
	ks     *keySet
	kid    string
	key    *signingKey
	exp    time.Time
	claims botClaims // as decoded when the signature was verified
}

// verifiedCache remembers tokens whose signature has been verified.
type verifiedCache struct {
	now func() time.Time
	mu  sync.RWMutex
	m   map[string]verifiedEntry
}

func (c *verifiedCache) get(token string) (verifiedEntry, bool) {
	c.mu.RLock()
	e, ok := c.m[token]
	c.mu.RUnlock()
	return e, ok
}

func (c *verifiedCache) put(token string, e verifiedEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]verifiedEntry)
	}
	if len(c.m) >= maxVerifiedTokens {
		cutoff := c.now().Add(-clockSkew)
		for t, old := range c.m {
			if old.exp.Before(cutoff) {
				delete(c.m, t)
			}
		}
		if len(c.m) >= maxVerifiedTokens {
			clear(c.m)
		}
	}
	// Clone so the cache does not pin the request's header memory.
	c.m[strings.Clone(token)] = e
}
