package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// freshToken signs a token with claims that differ per call (jti), so
// each one goes through signature verification instead of the
// verified-token cache.
func freshToken(t *testing.T, kid string, i int, now time.Time) string {
	t.Helper()
	keys := map[string]int{"k0": 0, "k1": 1, "k2": 2}
	c := channelClaims(now)
	c["jti"] = fmt.Sprint(i)
	return "Bearer " + signRS256(t, testKeys()[keys[kid]], kid, c)
}

// TestIdPHangsWarmCacheKeepsServing: the identity provider accepts
// connections and never answers. With a warm (even stale) key cache every
// turn is still authenticated at once: the refresh runs in the background
// and no request waits for it. A token signed with a key the cache does
// not know gets a prompt 401 naming the cause, and once the IdP answers
// again the refresh completes and newly published keys are accepted.
func TestIdPHangsWarmCacheKeepsServing(t *testing.T) {
	f := newAuthFixture(t, nil)
	f.auth.channelKeys.maxWait = 150 * time.Millisecond
	release := f.idp.hang()
	f.clock.Advance(25 * time.Hour) // stale: the next request starts a refresh

	start := time.Now()
	for i := range 50 {
		id, err := f.auth.Authenticate(t.Context(), freshToken(t, "k0", i, f.clock.Now()))
		if err != nil {
			t.Fatalf("turn %d rejected while the IdP hangs: %v", i, err)
		}
		if err := id.Check(testServiceURL, "msteams"); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("50 turns took %s while the IdP hangs: requests waited for the refresh", d)
	}
	waitFor(t, "the background refresh to reach the hanging IdP", func() bool { return f.idp.metadataHits.Load() == 2 })

	// Microsoft rotates in k2 while the IdP is unreachable.
	f.idp.setKeys(idpKey{kid: "k0", priv: testKeys()[0], endorsements: []string{"msteams"}},
		idpKey{kid: "k2", priv: testKeys()[2], endorsements: []string{"msteams"}})
	start = time.Now()
	_, err := f.auth.Authenticate(t.Context(), freshToken(t, "k2", 0, f.clock.Now()))
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "did not answer within") {
		t.Fatalf("unknown kid while the IdP hangs: err = %v, want a 401 saying the IdP did not answer", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the 401 took %s; it must not wait for the hanging fetch", d)
	}

	release()
	f.clock.Advance(2 * time.Minute) // past the unknown-kid refetch interval
	waitFor(t, "k2 accepted after the IdP recovers", func() bool {
		_, err := f.auth.Authenticate(t.Context(), freshToken(t, "k2", 1, f.clock.Now()))
		return err == nil
	})
	if _, err := f.auth.Authenticate(t.Context(), freshToken(t, "k0", 99, f.clock.Now())); err != nil {
		t.Fatalf("k0 after recovery: %v", err)
	}
}

// TestIdPHangsColdCache: with no keys loaded and an IdP that never
// answers, requests get a prompt 401 whose reason says why (logged by the
// caller), not a request held until the fetch times out; when the IdP
// answers again, turns are authenticated within the cold retry interval
// (seconds, not minutes).
func TestIdPHangsColdCache(t *testing.T) {
	idp := newFakeIdP(t, idpKey{kid: "k0", priv: testKeys()[0], endorsements: []string{"msteams"}})
	release := idp.hang()
	clock := newFakeClock()
	a, err := NewAuthenticator(AuthConfig{AppID: testAppID, OpenIDMetadataURL: idp.metadataURL(), HTTPClient: idp.srv.Client(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	a.channelKeys.maxWait = 150 * time.Millisecond
	wctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	if err := a.Warm(wctx); err == nil {
		t.Fatal("Warm succeeded against a hanging IdP")
	}
	cancel()

	for i := range 5 {
		start := time.Now()
		_, err := a.Authenticate(t.Context(), freshToken(t, "k0", i, clock.Now()))
		if !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("turn %d: err = %v, want ErrUnauthorized", i, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("turn %d: the 401 took %s", i, d)
		}
		if !strings.Contains(err.Error(), "did not answer within") && !strings.Contains(err.Error(), "the last fetch failed") {
			t.Fatalf("turn %d: the reason does not say why: %v", i, err)
		}
	}

	release()
	clock.Advance(coldRetryInterval + time.Second)
	waitFor(t, "turns authenticated after the IdP recovers", func() bool {
		_, err := a.Authenticate(t.Context(), freshToken(t, "k0", 100, clock.Now()))
		return err == nil
	})
}

// TestIdPDownColdCacheSaysWhy: a cold cache with the IdP answering 503
// refuses with a reason naming the failed fetch and its status.
func TestIdPDownColdCacheSaysWhy(t *testing.T) {
	t.Parallel()
	idp := newFakeIdP(t, idpKey{kid: "k0", priv: testKeys()[0], endorsements: []string{"msteams"}})
	idp.down.Store(true)
	clock := newFakeClock()
	a, err := NewAuthenticator(AuthConfig{AppID: testAppID, OpenIDMetadataURL: idp.metadataURL(), HTTPClient: idp.srv.Client(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Authenticate(t.Context(), freshToken(t, "k0", 0, clock.Now()))
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "status 503") || !strings.Contains(err.Error(), "signing keys") {
		t.Fatalf("err = %v, want a 401 naming the failed key fetch and its 503", err)
	}
}
