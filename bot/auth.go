package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// clockSkew is the industry-standard tolerance the Bot Framework spec
	// names for exp and nbf.
	clockSkew = 5 * time.Minute
	// maxTokenBytes bounds the bearer token before any parsing; Bot
	// Framework tokens are around 1.5 KB.
	maxTokenBytes = 8 << 10
	// defaultRefreshInterval is the spec's "at least once every 24 hours".
	defaultRefreshInterval = 24 * time.Hour
	// defaultMinRefetchInterval limits fetches caused by unknown kids.
	defaultMinRefetchInterval = time.Minute
)

// emulatorIssuers are the token issuers of the Bot Framework Emulator (and
// other AAD-token callers), verbatim from botbuilder-js
// tokenValidationParameters.ts.
var emulatorIssuers = [...]string{
	"https://sts.windows.net/d6d49420-f39b-4df7-a1dc-d59a935871db/",
	"https://login.microsoftonline.com/d6d49420-f39b-4df7-a1dc-d59a935871db/v2.0",
	"https://sts.windows.net/f8cdef31-a31e-4b4a-93e4-5f571e91255a/",
	"https://login.microsoftonline.com/f8cdef31-a31e-4b4a-93e4-5f571e91255a/v2.0",
	"https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
	"https://sts.windows.net/cab8a31a-1906-4287-a0d8-4eef66b95f6e/",
	"https://login.microsoftonline.us/cab8a31a-1906-4287-a0d8-4eef66b95f6e/v2.0",
	"https://login.microsoftonline.us/f8cdef31-a31e-4b4a-93e4-5f571e91255a/",
	"https://login.microsoftonline.us/f8cdef31-a31e-4b4a-93e4-5f571e91255a/v2.0",
}

// AuthConfig configures inbound authentication. Only AppID is required;
// endpoints default to Cloud's, and Cloud defaults to the public cloud.
type AuthConfig struct {
	// AppID is the bot's Microsoft App ID, the expected audience.
	AppID string
	// Cloud supplies the metadata URL, issuer and emulator metadata URL.
	Cloud Cloud
	// OpenIDMetadataURL overrides Cloud.OpenIDMetadataURL.
	OpenIDMetadataURL string
	// Issuer overrides Cloud.Issuer.
	Issuer string
	// AllowEmulator accepts Emulator (AAD) tokens as a second path. Off in
	// production.
	AllowEmulator bool
	// EmulatorMetadataURL overrides Cloud.EmulatorMetadataURL.
	EmulatorMetadataURL string
	// HTTPClient fetches metadata and keys; nil means a client with a 10 s
	// timeout.
	HTTPClient *http.Client
	// Logger receives key-refresh events; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// RefreshInterval is how long fetched keys are used before a
	// background refresh; 0 means 24 h, the maximum.
	RefreshInterval time.Duration
	// MinRefetchInterval is the minimum time between fetches triggered by
	// an unknown key id; 0 means one minute.
	MinRefetchInterval time.Duration
}

// Authenticator validates the Bot Framework JWTs of incoming requests. It is
// safe for concurrent use.
type Authenticator struct {
	appID        string
	issuer       string
	channelKeys  *keySet
	emulatorKeys *keySet
	parser       *jwt.Parser
	validator    *jwt.Validator
	verified     verifiedCache
	logger       *slog.Logger
}

// Identity is the validated identity of a request. Call Check with the
// activity's serviceUrl and channelId before acting on the activity.
type Identity struct {
	// Issuer is the token's iss claim.
	Issuer string
	// ServiceURL is the token's serviceurl claim (channel tokens).
	ServiceURL string
	// AppID is the caller's app id (appid/azp) when the token carries one.
	AppID string
	// Emulator is true for a token accepted on the Emulator path.
	Emulator bool
	// ExpiresAt is the token's exp.
	ExpiresAt time.Time

	endorsements []string
}

// botClaims are the claims gatebot reads; a wrong JSON type in any of them
// fails parsing, so nothing downstream type-asserts.
type botClaims struct {
	jwt.RegisteredClaims
	ServiceURL string `json:"serviceurl"`
	AppID      string `json:"appid"`
	AZP        string `json:"azp"`
	Version    string `json:"ver"`
}

// NewAuthenticator validates cfg and returns an Authenticator. It fails
// closed: an empty AppID is an error, never anonymous mode.
func NewAuthenticator(cfg AuthConfig) (*Authenticator, error) {
	if strings.TrimSpace(cfg.AppID) == "" {
		return nil, errors.New("bot: authenticator needs an app id")
	}
	cloud := cfg.Cloud
	if cloud.OpenIDMetadataURL == "" && cloud.Issuer == "" && cloud.Name == "" {
		cloud, _ = CloudPreset("public")
	}
	metadataURL := firstNonEmpty(cfg.OpenIDMetadataURL, cloud.OpenIDMetadataURL)
	issuer := firstNonEmpty(cfg.Issuer, cloud.Issuer)
	if issuer == "" {
		return nil, errors.New("bot: authenticator needs an issuer")
	}
	if err := checkFetchURL(metadataURL); err != nil {
		return nil, fmt.Errorf("bot: OpenID metadata URL: %w", err)
	}
	refresh := cfg.RefreshInterval
	if refresh == 0 {
		refresh = defaultRefreshInterval
	}
	if refresh < 0 || refresh > defaultRefreshInterval {
		return nil, fmt.Errorf("bot: key refresh interval %s must be between 0 and 24h", refresh)
	}
	minRefetch := cfg.MinRefetchInterval
	if minRefetch == 0 {
		minRefetch = defaultMinRefetchInterval
	}
	if minRefetch < 0 {
		return nil, errors.New("bot: negative minimum refetch interval")
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	newSet := func(name, u string) *keySet {
		return &keySet{name: name, metadataURL: u, client: client, logger: logger, now: now, refresh: refresh, minRefetch: minRefetch}
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithLeeway(clockSkew),
		jwt.WithExpirationRequired(),
		jwt.WithAudience(cfg.AppID, "api://"+cfg.AppID),
		jwt.WithTimeFunc(now),
	}
	a := &Authenticator{
		appID:       cfg.AppID,
		issuer:      issuer,
		channelKeys: newSet("channel", metadataURL),
		logger:      logger,
		parser:      jwt.NewParser(opts...),
		validator:   jwt.NewValidator(opts...),
		verified:    verifiedCache{now: now},
	}
	if cfg.AllowEmulator {
		emuURL := firstNonEmpty(cfg.EmulatorMetadataURL, cloud.EmulatorMetadataURL)
		if err := checkFetchURL(emuURL); err != nil {
			return nil, fmt.Errorf("bot: emulator metadata URL: %w", err)
		}
		a.emulatorKeys = newSet("emulator", emuURL)
	}
	return a, nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// Warm fetches the signing keys now, so the first request does not wait.
// A failure is not fatal: requests retry the fetch.
func (a *Authenticator) Warm(ctx context.Context) error {
	err := a.channelKeys.fetchShared(ctx, true)
	if a.emulatorKeys != nil {
		err = errors.Join(err, a.emulatorKeys.fetchShared(ctx, true))
	}
	return err
}

// KeysLoaded reports whether the Bot Framework signing keys have been
// fetched at least once, so a request can be authenticated without waiting
// for the identity provider: what a readiness probe asks.
func (a *Authenticator) KeysLoaded() bool { return a.channelKeys.loaded() }

// Authenticate validates the Authorization header value of a request from
// the channel: Bearer scheme; a JWT signed with RS256 by a key of the
// configured cloud's JWKS (or, if allowed, the Emulator's); issuer of the
// cloud (checked before the signature); audience the app id or
// api://<app id>; exp required and, like nbf, checked with 5 minutes of
// skew. Errors wrap ErrUnauthorized and say why, for logs only.
func (a *Authenticator) Authenticate(ctx context.Context, authorization string) (*Identity, error) {
	token, err := bearerToken(authorization)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnauthorized, err)
	}
	var claims botClaims
	key, emulator, err := a.verify(ctx, token, &claims)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrUnauthorized, describeJWTError(err))
	}
	id := &Identity{
		Issuer:       claims.Issuer,
		ServiceURL:   claims.ServiceURL,
		AppID:        firstNonEmpty(claims.AppID, claims.AZP),
		Emulator:     emulator,
		endorsements: key.endorsements,
	}
	if claims.ExpiresAt != nil {
		id.ExpiresAt = claims.ExpiresAt.Time
	}
	if emulator {
		// The Emulator names the bot in appid (v1 tokens) or azp (v2).
		var caller string
		switch claims.Version {
		case "", "1.0":
			caller = claims.AppID
		case "2.0":
			caller = claims.AZP
		default:
			return nil, fmt.Errorf("%w: emulator token has unknown version %q", ErrUnauthorized, claims.Version)
		}
		if caller != a.appID {
			return nil, fmt.Errorf("%w: emulator token is for app %q", ErrUnauthorized, caller)
		}
		id.AppID = caller
	}
	return id, nil
}

// route picks the key set for an issuer; the issuer is checked before any
// key lookup or signature work.
func (a *Authenticator) route(iss string) (ks *keySet, emulator bool, err error) {
	switch {
	case iss == a.issuer:
		return a.channelKeys, false, nil
	case a.emulatorKeys != nil && slices.Contains(emulatorIssuers[:], iss):
		return a.emulatorKeys, true, nil
	}
	return nil, false, fmt.Errorf("untrusted issuer %q", iss)
}

// verify checks the token's signature and claims and returns the key that
// signed it. The Bot Connector reuses a token for many requests, so a
// token whose signature was already verified with a key that is still
// current skips decoding and the RSA operation; every claim is still
// validated against the clock on every call.
func (a *Authenticator) verify(ctx context.Context, token string, claims *botClaims) (*signingKey, bool, error) {
	if e, ok := a.verified.get(token); ok {
		// The cached claims are the ones decoded from this exact token
		// when its signature was verified; they are read, never changed.
		*claims = e.claims
		ks, emulator, err := a.route(claims.Issuer)
		if err == nil && ks == e.ks && ks.cached(e.kid) == e.key {
			if err := a.validator.Validate(claims); err != nil {
				return nil, false, fmt.Errorf("%w: %w", jwt.ErrTokenInvalidClaims, err)
			}
			return e.key, emulator, nil
		}
		*claims = botClaims{}
	}

	var (
		key      *signingKey
		ks       *keySet
		kid      string
		emulator bool
	)
	_, err := a.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		var err error
		if ks, emulator, err = a.route(claims.Issuer); err != nil {
			return nil, err
		}
		kid, _ = t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("token has no kid")
		}
		if key, err = ks.key(ctx, kid); err != nil {
			return nil, err
		}
		return key.pub, nil
	})
	if err != nil {
		return nil, false, err
	}
	var exp time.Time
	if claims.ExpiresAt != nil {
		exp = claims.ExpiresAt.Time
	}
	a.verified.put(token, verifiedEntry{ks: ks, kid: kid, key: key, exp: exp, claims: *claims})
	return key, emulator, nil
}

// bearerToken extracts the token of a "Bearer <jwt>" header value and does
// cheap shape checks before any decoding.
func bearerToken(h string) (string, error) {
	if h == "" {
		return "", errors.New("no Authorization header")
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", errors.New("authorization scheme is not Bearer")
	}
	if token == "" {
		return "", errors.New("empty bearer token")
	}
	if len(token) > maxTokenBytes {
		return "", fmt.Errorf("bearer token longer than %d bytes", maxTokenBytes)
	}
	dots := 0
	for i := 0; i < len(token); i++ {
		switch c := token[i]; {
		case c == '.':
			dots++
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return "", errors.New("bearer token is not a compact JWT")
		}
	}
	if dots != 2 {
		return "", errors.New("bearer token is not a compact JWT")
	}
	return token, nil
}

// describeJWTError turns a golang-jwt error into a short reason for logs.
func describeJWTError(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token: " + err.Error()
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "cannot verify token: " + err.Error()
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "invalid signature or algorithm: " + err.Error()
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "required claim missing: " + err.Error()
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token not valid yet (nbf)"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	}
	return err.Error()
}

// Check binds the token to the activity it came with: the serviceurl claim
// must equal the activity's serviceUrl (case-insensitive, trailing "/"
// ignored), and when the signing key lists endorsements, they must include
// the activity's channelId. Emulator tokens carry neither and are only
// checked for endorsements. Errors wrap ErrUnauthorized.
func (id *Identity) Check(serviceURL, channelID string) error {
	if id == nil {
		return fmt.Errorf("%w: no identity", ErrUnauthorized)
	}
	if !id.Emulator {
		if id.ServiceURL == "" {
			return fmt.Errorf("%w: token has no serviceurl claim", ErrUnauthorized)
		}
		if !strings.EqualFold(strings.TrimRight(id.ServiceURL, "/"), strings.TrimRight(serviceURL, "/")) {
			return fmt.Errorf("%w: serviceurl claim %q does not match activity serviceUrl %q", ErrUnauthorized, id.ServiceURL, serviceURL)
		}
	}
	if len(id.endorsements) > 0 && (channelID == "" || !slices.Contains(id.endorsements, channelID)) {
		return fmt.Errorf("%w: signing key is not endorsed for channel %q", ErrUnauthorized, channelID)
	}
	return nil
}
