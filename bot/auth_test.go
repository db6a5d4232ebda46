package bot

import (
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestNewAuthenticatorConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     AuthConfig
		wantErr string
	}{
		{"empty app id fails closed", AuthConfig{}, "app id"},
		{"blank app id fails closed", AuthConfig{AppID: "  "}, "app id"},
		{"public default", AuthConfig{AppID: "a"}, ""},
		{"http metadata off loopback", AuthConfig{AppID: "a", OpenIDMetadataURL: "http://idp.example/meta"}, "https"},
		{"http metadata on loopback", AuthConfig{AppID: "a", OpenIDMetadataURL: "http://127.0.0.1:9/meta"}, ""},
		{"refresh over 24h", AuthConfig{AppID: "a", RefreshInterval: 25 * time.Hour}, "24h"},
		{"negative refetch", AuthConfig{AppID: "a", MinRefetchInterval: -1}, "negative"},
		{"emulator bad url", AuthConfig{AppID: "a", AllowEmulator: true, EmulatorMetadataURL: "ftp://x"}, "emulator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := NewAuthenticator(tt.cfg)
			if tt.wantErr == "" {
				if err != nil || a == nil {
					t.Fatalf("NewAuthenticator: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

// TestAuthenticateBadInput covers every bad input of issue 3. Each case
// must fail either in Authenticate or in Identity.Check with the activity's
// serviceUrl/channelId, and the error must wrap ErrUnauthorized.
func TestAuthenticateBadInput(t *testing.T) {
	f := newAuthFixture(t, nil)
	keys := testKeys()
	now := f.clock.Now()
	govIdP := newFakeIdP(t, idpKey{kid: "gov0", priv: keys[3], endorsements: []string{"msteams"}})
	_ = govIdP

	with := func(mut func(jwt.MapClaims)) jwt.MapClaims {
		c := channelClaims(now)
		mut(c)
		return c
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&keys[0].PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	hsWithPublicKey := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, channelClaims(now))
		tok.Header["kid"] = "k0"
		s, err := tok.SignedString(pubDER)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	algNone := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, channelClaims(now))
		tok.Header["kid"] = "k0"
		s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	valid := signRS256(t, keys[0], "k0", channelClaims(now))

	tests := []struct {
		name       string
		header     string
		serviceURL string // activity serviceUrl; default testServiceURL
		channelID  string // activity channelId; default msteams
		wantReason string
	}{
		{name: "no header", header: "", wantReason: "no Authorization header"},
		{name: "wrong scheme", header: "Basic " + valid, wantReason: "not Bearer"},
		{name: "scheme only", header: "Bearer", wantReason: "not Bearer"},
		{name: "empty token", header: "Bearer ", wantReason: "empty bearer token"},
		{name: "two spaces", header: "Bearer  " + valid, wantReason: "not a compact JWT"},
		{name: "garbage", header: "Bearer garbage", wantReason: "not a compact JWT"},
		{name: "garbage three parts", header: "Bearer a.b.c", wantReason: "malformed"},
		{name: "huge token", header: "Bearer " + strings.Repeat("a", 9000) + ".b.c", wantReason: "longer than"},
		{name: "alg none", header: "Bearer " + algNone(), wantReason: "algorithm"},
		{name: "HS256 signed with public key", header: "Bearer " + hsWithPublicKey(), wantReason: "signing method HS256 is invalid"},
		{name: "RS256 claimed, signature of other key", header: "Bearer " + signRS256(t, keys[1], "k0", channelClaims(now)), wantReason: "invalid signature"},
		{name: "no kid", header: "Bearer " + signRS256(t, keys[0], "", channelClaims(now)), wantReason: "no kid"},
		{name: "unknown kid", header: "Bearer " + signRS256(t, keys[2], "k2", channelClaims(now)), wantReason: "unknown signing key id"},
		{name: "expired beyond skew", header: "Bearer " + signRS256(t, keys[0], "k0", with(func(c jwt.MapClaims) { c["exp"] = now.Add(-6 * time.Minute).Unix() })), wantReason: "expired"},
		{name: "nbf beyond skew", header: "Bearer " + signRS256(t, keys[0], "k0", with(func(c jwt.MapClaims) { c["nbf"] = now.Add(6 * time.Minute).Unix() })), wantReason: "not valid yet"},
		{name: "missing exp", header: "Bearer " + signRS256(t, keys[0], "k0", with(func(c jwt.MapClaims) { delete(c, "exp") })), wantReason: "required claim missing"},
		{name: "exp not a number", header: "Bearer " + signRS256(t, keys[0], "k0", with(func(c jwt.MapClaims) { c["exp"] = "tomorrow" })), wantReason: "malformed"},
		{name: "wrong iss", header: "Bearer " + signRS256(t, keys[0], "k0", with(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })), wantReason: "untrusted issuer"},
		{name: "missing iss", header: "Bearer " + signRS256(t, keys[0], "k0", with(func(c jwt.MapClaims) { delete(c, "iss") })), wantReason: "untrusted issuer"},
		{name: "wrong aud", header: "Bearer " + signRS256(t, keys[0], "k0", with(func(c jwt.MapClaims) { c["aud"] = "another-app" })), wantReason: "wrong audience"},
		{name: "aud array without app", header: "Bearer " + signRS256(t, keys[0], "k0", with(func(c jwt.MapClaims) { c["aud"] = []string{"x", "y"} })), wantReason: "wrong audience"},
		{name: "missing aud", header: "Bearer " + signRS256(t, keys[0], "k0", with(func(c jwt.MapClaims) { delete(c, "aud") })), wantReason: "aud claim is required"},
		{name: "serviceurl claim missing", header: "Bearer " + signRS256(t, keys[0], "k0", with(func(c jwt.MapClaims) { delete(c, "serviceurl") })), wantReason: "no serviceurl claim"},
		{name: "serviceurl claim different", header: "Bearer " + valid, serviceURL: "https://smba.trafficmanager.net/amer/", wantReason: "does not match"},
		{name: "serviceurl claim other host", header: "Bearer " + signRS256(t, keys[0], "k0", with(func(c jwt.MapClaims) { c["serviceurl"] = "https://evil.example/emea/" })), wantReason: "does not match"},
		{name: "serviceurl claim wrong type", header: "Bearer " + signRS256(t, keys[0], "k0", with(func(c jwt.MapClaims) { c["serviceurl"] = 7 })), wantReason: "malformed"},
		{name: "key not endorsed for channel", header: "Bearer " + valid, channelID: "webchat", wantReason: "not endorsed"},
		{name: "endorsed key, empty channel", header: "Bearer " + valid, channelID: "-", wantReason: "not endorsed"},
		{name: "token for another cloud", header: "Bearer " + signRS256(t, keys[3], "gov0", with(func(c jwt.MapClaims) { c["iss"] = "https://api.botframework.us" })), wantReason: "untrusted issuer"},
		{name: "other cloud's key with our issuer", header: "Bearer " + signRS256(t, keys[3], "gov0", channelClaims(now)), wantReason: "unknown signing key id"},
		{name: "emulator token while emulator off", header: "Bearer " + signRS256(t, keys[0], "k0", with(func(c jwt.MapClaims) {
			c["iss"] = "https://sts.windows.net/d6d49420-f39b-4df7-a1dc-d59a935871db/"
			c["appid"] = testAppID
		})), wantReason: "untrusted issuer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serviceURL, channelID := testServiceURL, "msteams"
			if tt.serviceURL != "" {
				serviceURL = tt.serviceURL
			}
			switch tt.channelID {
			case "":
			case "-":
				channelID = ""
			default:
				channelID = tt.channelID
			}
			id, err := f.auth.Authenticate(t.Context(), tt.header)
			if err == nil {
				if id == nil {
					t.Fatal("nil identity without error")
				}
				err = id.Check(serviceURL, channelID)
			} else if id != nil {
				t.Errorf("identity %+v returned with error", id)
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrUnauthorized) {
				t.Errorf("error does not wrap ErrUnauthorized: %v", err)
			}
			if !strings.Contains(err.Error(), tt.wantReason) {
				t.Errorf("error %q does not say %q", err, tt.wantReason)
			}
		})
	}
}

func TestAuthenticateAccepts(t *testing.T) {
	f := newAuthFixture(t, nil)
	keys := testKeys()
	now := f.clock.Now()
	with := func(mut func(jwt.MapClaims)) jwt.MapClaims {
		c := channelClaims(now)
		mut(c)
		return c
	}
	tests := []struct {
		name       string
		token      string
		serviceURL string
		channelID  string
	}{
		{"teams token", signRS256(t, keys[0], "k0", channelClaims(now)), testServiceURL, "msteams"},
		{"bearer scheme any case", "", testServiceURL, "msteams"},
		{"aud api:// form", signRS256(t, keys[0], "k0", with(func(c jwt.MapClaims) { c["aud"] = "api://" + testAppID })), testServiceURL, "msteams"},
		{"aud array with app", signRS256(t, keys[0], "k0", with(func(c jwt.MapClaims) { c["aud"] = []string{"x", testAppID} })), testServiceURL, "msteams"},
		{"serviceUrl case and trailing slash", signRS256(t, keys[0], "k0", channelClaims(now)), "HTTPS://SMBA.trafficmanager.net/emea", "msteams"},
		{"expired within skew", signRS256(t, keys[0], "k0", with(func(c jwt.MapClaims) { c["exp"] = now.Add(-4 * time.Minute).Unix() })), testServiceURL, "msteams"},
		{"nbf within skew", signRS256(t, keys[0], "k0", with(func(c jwt.MapClaims) { c["nbf"] = now.Add(4 * time.Minute).Unix() })), testServiceURL, "msteams"},
		{"key without endorsements", signRS256(t, keys[1], "k1", channelClaims(now)), testServiceURL, "webchat"},
		{"second endorsement", signRS256(t, keys[0], "k0", channelClaims(now)), testServiceURL, "emulator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := "Bearer " + tt.token
			if tt.token == "" {
				header = "bEaReR " + signRS256(t, keys[0], "k0", channelClaims(now))
			}
			id, err := f.auth.Authenticate(t.Context(), header)
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if err := id.Check(tt.serviceURL, tt.channelID); err != nil {
				t.Fatalf("Check: %v", err)
			}
			if id.Emulator || id.Issuer != publicIssuer || id.ServiceURL != testServiceURL {
				t.Errorf("identity = %+v", id)
			}
		})
	}
	if got := f.idp.jwksHits.Load(); got != 1 {
		t.Errorf("JWKS fetched %d times for valid tokens, want 1 (warm-up only)", got)
	}
}

func TestAuthenticateEmulator(t *testing.T) {
	keys := testKeys()
	emu := newFakeIdP(t, idpKey{kid: "emu0", priv: keys[2]})
	f := newAuthFixture(t, func(c *AuthConfig) {
		c.AllowEmulator = true
		c.EmulatorMetadataURL = emu.metadataURL()
	})
	now := f.clock.Now()
	emuClaims := func(mut func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"aud": testAppID, "exp": now.Add(time.Hour).Unix(), "nbf": now.Add(-time.Minute).Unix()}
		mut(c)
		return c
	}
	tests := []struct {
		name       string
		token      string
		wantReason string // "" = accepted
	}{
		{"v1 appid", signRS256(t, keys[2], "emu0", emuClaims(func(c jwt.MapClaims) {
			c["iss"], c["ver"], c["appid"] = "https://sts.windows.net/d6d49420-f39b-4df7-a1dc-d59a935871db/", "1.0", testAppID
		})), ""},
		{"v1 without ver", signRS256(t, keys[2], "emu0", emuClaims(func(c jwt.MapClaims) {
			c["iss"], c["appid"] = "https://sts.windows.net/f8cdef31-a31e-4b4a-93e4-5f571e91255a/", testAppID
		})), ""},
		{"v2 azp", signRS256(t, keys[2], "emu0", emuClaims(func(c jwt.MapClaims) {
			c["iss"], c["ver"], c["azp"] = "https://login.microsoftonline.com/f8cdef31-a31e-4b4a-93e4-5f571e91255a/v2.0", "2.0", testAppID
		})), ""},
		{"v1 other app", signRS256(t, keys[2], "emu0", emuClaims(func(c jwt.MapClaims) {
			c["iss"], c["ver"], c["appid"] = "https://sts.windows.net/d6d49420-f39b-4df7-a1dc-d59a935871db/", "1.0", "someone-else"
		})), "emulator token is for app"},
		{"v2 with appid only", signRS256(t, keys[2], "emu0", emuClaims(func(c jwt.MapClaims) {
			c["iss"], c["ver"], c["appid"] = "https://login.microsoftonline.com/f8cdef31-a31e-4b4a-93e4-5f571e91255a/v2.0", "2.0", testAppID
		})), "emulator token is for app"},
		{"unknown version", signRS256(t, keys[2], "emu0", emuClaims(func(c jwt.MapClaims) {
			c["iss"], c["ver"], c["appid"] = "https://sts.windows.net/d6d49420-f39b-4df7-a1dc-d59a935871db/", "3.0", testAppID
		})), "unknown version"},
		{"emulator issuer, channel key", signRS256(t, keys[0], "k0", emuClaims(func(c jwt.MapClaims) {
			c["iss"], c["appid"] = "https://sts.windows.net/d6d49420-f39b-4df7-a1dc-d59a935871db/", testAppID
		})), "unknown signing key id"},
		{"channel issuer, emulator key", signRS256(t, keys[2], "emu0", channelClaims(now)), "unknown signing key id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := f.auth.Authenticate(t.Context(), "Bearer "+tt.token)
			if err == nil {
				err = id.Check("http://localhost:5000", "emulator")
			}
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if !id.Emulator || id.AppID != testAppID {
					t.Errorf("identity = %+v", id)
				}
				return
			}
			if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), tt.wantReason) {
				t.Fatalf("err = %v, want ErrUnauthorized saying %q", err, tt.wantReason)
			}
		})
	}
}

// TestUnknownKidRefetchRateLimited: an unknown kid refetches the keys, but
// at most once per MinRefetchInterval, so a flood of forged kids cannot
// turn into a flood of requests to the IdP.
func TestUnknownKidRefetchRateLimited(t *testing.T) {
	f := newAuthFixture(t, nil)
	keys := testKeys()
	tok := func() string { return "Bearer " + signRS256(t, keys[2], "k2", channelClaims(f.clock.Now())) }

	// Right after the warm-up fetch the keys are as fresh as they get.
	if _, err := f.auth.Authenticate(t.Context(), tok()); err == nil || !strings.Contains(err.Error(), "rate-limited") {
		t.Fatalf("err = %v, want rate-limited unknown kid", err)
	}
	f.clock.Advance(time.Minute)
	for i := range 5 {
		if _, err := f.auth.Authenticate(t.Context(), tok()); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("attempt %d: err = %v", i, err)
		}
	}
	if got := f.idp.jwksHits.Load(); got != 2 {
		t.Fatalf("JWKS fetched %d times, want 2 (warm-up + one refetch)", got)
	}

	// The key is published (rotation), but the refetch window is closed.
	f.idp.setKeys(idpKey{kid: "k0", priv: keys[0], endorsements: []string{"msteams"}}, idpKey{kid: "k2", priv: keys[2]})
	f.clock.Advance(30 * time.Second)
	if _, err := f.auth.Authenticate(t.Context(), tok()); err == nil || !strings.Contains(err.Error(), "rate-limited") {
		t.Fatalf("err = %v, want rate-limited unknown kid", err)
	}
	if got := f.idp.jwksHits.Load(); got != 2 {
		t.Fatalf("JWKS fetched %d times inside the window, want 2", got)
	}

	// After the window the rotated key is picked up.
	f.clock.Advance(31 * time.Second)
	id, err := f.auth.Authenticate(t.Context(), tok())
	if err != nil {
		t.Fatalf("after window: %v", err)
	}
	if err := id.Check(testServiceURL, "msteams"); err != nil {
		t.Fatal(err)
	}
	if got := f.idp.jwksHits.Load(); got != 3 {
		t.Fatalf("JWKS fetched %d times, want 3", got)
	}
}

// TestConcurrentUnknownKidSharesOneFetch: many requests signed with a newly
// rotated key arrive at once; one fetch serves them all.
func TestConcurrentUnknownKidSharesOneFetch(t *testing.T) {
	f := newAuthFixture(t, nil)
	keys := testKeys()
	f.idp.setKeys(idpKey{kid: "k0", priv: keys[0]}, idpKey{kid: "k2", priv: keys[2]})
	f.idp.jwksDelay.Store(int64(100 * time.Millisecond))
	f.clock.Advance(2 * time.Minute)
	header := "Bearer " + signRS256(t, keys[2], "k2", channelClaims(f.clock.Now()))

	const callers = 50
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			_, err := f.auth.Authenticate(t.Context(), header)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("caller rejected: %v", err)
		}
	}
	if got := f.idp.jwksHits.Load(); got != 2 {
		t.Errorf("JWKS fetched %d times, want 2 (warm-up + one shared refetch)", got)
	}
}

// TestKeysRefreshedEvery24h: keys are not refetched while fresh; once 24 h
// old, a request triggers a background refresh that replaces the key set.
func TestKeysRefreshedEvery24h(t *testing.T) {
	f := newAuthFixture(t, nil)
	keys := testKeys()

	f.clock.Advance(23 * time.Hour)
	old := "Bearer " + signRS256(t, keys[0], "k0", channelClaims(f.clock.Now()))
	if _, err := f.auth.Authenticate(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	// Microsoft rotates: k0 is withdrawn, k2 published.
	f.idp.setKeys(idpKey{kid: "k2", priv: keys[2], endorsements: []string{"msteams"}})

	f.clock.Advance(time.Hour)
	if got := f.idp.jwksHits.Load(); got != 1 {
		t.Fatalf("JWKS fetched %d times before 24h, want 1", got)
	}
	// The stale cache still serves this request while it refreshes.
	old = "Bearer " + signRS256(t, keys[0], "k0", channelClaims(f.clock.Now()))
	if _, err := f.auth.Authenticate(t.Context(), old); err != nil {
		t.Fatalf("stale cache did not serve: %v", err)
	}
	waitFor(t, "background refresh", func() bool { return f.idp.jwksHits.Load() == 2 })
	waitFor(t, "new keys in cache", func() bool {
		_, err := f.auth.Authenticate(t.Context(), "Bearer "+signRS256(t, keys[2], "k2", channelClaims(f.clock.Now())))
		return err == nil
	})
	if _, err := f.auth.Authenticate(t.Context(), old); err == nil {
		t.Error("withdrawn key still accepted after refresh")
	}
	if got := f.idp.jwksHits.Load(); got != 2 {
		t.Errorf("JWKS fetched %d times, want 2", got)
	}
}

// TestIdPOutageWarmCacheKeepsServing: with the IdP down, a stale but warm
// cache keeps authenticating, and refresh attempts stay rate-limited.
func TestIdPOutageWarmCacheKeepsServing(t *testing.T) {
	f := newAuthFixture(t, nil)
	keys := testKeys()
	f.idp.down.Store(true)
	f.clock.Advance(25 * time.Hour)

	for i := range 100 {
		id, err := f.auth.Authenticate(t.Context(), "Bearer "+signRS256(t, keys[0], "k0", channelClaims(f.clock.Now())))
		if err != nil {
			t.Fatalf("request %d rejected during outage: %v", i, err)
		}
		if err := id.Check(testServiceURL, "msteams"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "background refresh attempt", func() bool { return f.idp.metadataHits.Load() == 2 })
	// Unknown kids during the outage are rejected without another fetch.
	if _, err := f.auth.Authenticate(t.Context(), "Bearer "+signRS256(t, keys[2], "k2", channelClaims(f.clock.Now()))); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("unknown kid during outage: %v", err)
	}
	time.Sleep(20 * time.Millisecond) // let any stray background fetch land
	if got := f.idp.metadataHits.Load(); got != 2 {
		t.Errorf("metadata fetched %d times during the outage, want 2 (warm-up + one refresh attempt)", got)
	}

	// Recovery: the next attempt after the interval succeeds.
	f.idp.down.Store(false)
	f.clock.Advance(2 * time.Minute)
	if _, err := f.auth.Authenticate(t.Context(), "Bearer "+signRS256(t, keys[0], "k0", channelClaims(f.clock.Now()))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "refresh after recovery", func() bool { return f.idp.jwksHits.Load() == 2 })
}

// TestColdStartIdPDown: Warm failing is not fatal; requests retry the fetch
// once the IdP answers, no more often than every few seconds.
func TestColdStartIdPDown(t *testing.T) {
	keys := testKeys()
	idp := newFakeIdP(t, idpKey{kid: "k0", priv: keys[0]})
	idp.down.Store(true)
	clock := newFakeClock()
	a, err := NewAuthenticator(AuthConfig{AppID: testAppID, OpenIDMetadataURL: idp.metadataURL(), HTTPClient: idp.srv.Client(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Warm(t.Context()); err == nil {
		t.Fatal("Warm succeeded with the IdP down")
	}
	if a.KeysLoaded() {
		t.Error("KeysLoaded with the IdP down since start")
	}
	header := "Bearer " + signRS256(t, keys[0], "k0", channelClaims(clock.Now()))
	for range 10 {
		if _, err := a.Authenticate(t.Context(), header); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("err = %v", err)
		}
	}
	if got := idp.metadataHits.Load(); got != 1 {
		t.Fatalf("metadata fetched %d times, want 1 (Warm; requests rate-limited)", got)
	}
	idp.down.Store(false)
	clock.Advance(6 * time.Second)
	if _, err := a.Authenticate(t.Context(), header); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	if !a.KeysLoaded() {
		t.Error("KeysLoaded false after keys were fetched")
	}
	// An IdP outage after that keeps the cached keys: still loaded.
	idp.down.Store(true)
	clock.Advance(25 * time.Hour)
	_ = a.Warm(t.Context())
	if !a.KeysLoaded() {
		t.Error("KeysLoaded false after a failed refresh of cached keys")
	}
}

// TestVerifiedTokenReuse: the connector reuses one token for many requests.
// A reused token skips signature work but never claim validation.
func TestVerifiedTokenReuse(t *testing.T) {
	f := newAuthFixture(t, nil)
	keys := testKeys()
	header := "Bearer " + signRS256(t, keys[0], "k0", channelClaims(f.clock.Now()))
	for range 3 {
		id, err := f.auth.Authenticate(t.Context(), header)
		if err != nil {
			t.Fatal(err)
		}
		if err := id.Check(testServiceURL, "msteams"); err != nil {
			t.Fatal(err)
		}
	}
	// Still a valid token: tampering with one byte of the signature is a
	// different token and gets verified (and rejected).
	tampered := header[:len(header)-2] + flip(header[len(header)-2]) + header[len(header)-1:]
	if _, err := f.auth.Authenticate(t.Context(), tampered); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("tampered token: %v", err)
	}
	// exp is re-checked against the clock on every use.
	f.clock.Advance(time.Hour + 6*time.Minute)
	if _, err := f.auth.Authenticate(t.Context(), header); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired reused token: err = %v", err)
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

func TestJWKSParsing(t *testing.T) {
	keys := testKeys()
	good := jwk{Kty: "RSA", Kid: "a", N: b64(keys[0].N.Bytes()), E: "AQAB"}
	tests := []struct {
		name    string
		key     jwk
		wantErr string
	}{
		{"good", good, ""},
		{"padded", jwk{Kty: "RSA", N: good.N + "=", E: "AQAB=="}, ""},
		{"EC", jwk{Kty: "EC"}, "not RSA"},
		{"no material", jwk{Kty: "RSA"}, "no n/e"},
		{"small key", jwk{Kty: "RSA", N: b64(keys[0].N.Bytes()[:64]), E: "AQAB"}, "too small"},
		{"even exponent", jwk{Kty: "RSA", N: good.N, E: "Ag"}, "exponent"},
		{"huge exponent", jwk{Kty: "RSA", N: good.N, E: "AQIDBAU"}, "exponent"},
		{"bad base64", jwk{Kty: "RSA", N: "!!", E: "AQAB"}, "modulus"},
		{"bad x5c", jwk{Kty: "RSA", X5c: []string{"AAAA"}}, "x5c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.key.rsaKey()
			if tt.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func b64(b []byte) string { return strings.TrimRight(base64URL(b), "=") }
