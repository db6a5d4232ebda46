package apitoken

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/redis/go-redis/v9"
)

// Scope is a permission a token carries.
type Scope string

// The scopes of the gates API.
const (
	ScopeRead  Scope = "gates:read"  // read gates
	ScopeWrite Scope = "gates:write" // open and cancel gates
)

// Scopes lists every known scope.
var Scopes = []Scope{ScopeRead, ScopeWrite}

// AllPipelines in Token.Pipelines grants access to every pipeline.
const AllPipelines = "*"

// Token is a personal access token's record. It never holds the secret.
type Token struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Scopes    []Scope  `json:"scopes"`
	Pipelines []string `json:"pipelines"`
	Creator   string   `json:"creator,omitempty"`
	// Owner is the person gates opened with this token are requested by,
	// so that the approval rules (no self-approval) apply to them: a UPN,
	// or "aad:<object id>". Empty for tokens without an owner.
	Owner     string    `json:"owner,omitempty"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires,omitzero"` // zero: never
	Revoked   time.Time `json:"revoked,omitzero"`
	RevokedBy string    `json:"revoked_by,omitempty"`
	// LastUsed is filled by List and Get; it lags by up to
	// Options.LastUsedEvery.
	LastUsed time.Time `json:"-"`
}

// Has reports whether the token carries scope s.
func (t *Token) Has(s Scope) bool { return slices.Contains(t.Scopes, s) }

// MayAccess reports whether the token may touch pipeline (by its
// configured name).
func (t *Token) MayAccess(pipeline string) bool {
	return slices.Contains(t.Pipelines, AllPipelines) || slices.Contains(t.Pipelines, pipeline)
}

// AllPipelines reports whether the token may touch every pipeline.
func (t *Token) AllPipelines() bool { return slices.Contains(t.Pipelines, AllPipelines) }

// OwnerUPN is the owner's user principal name, when the owner is given
// as a UPN.
func (t *Token) OwnerUPN() string {
	if t.Owner == "" || strings.HasPrefix(t.Owner, ownerAADPrefix) {
		return ""
	}
	return t.Owner
}

// OwnerAADObjectID is the owner's Entra object id, when the owner is
// given as "aad:<object id>".
func (t *Token) OwnerAADObjectID() string {
	id, _ := strings.CutPrefix(t.Owner, ownerAADPrefix)
	if id == t.Owner {
		return ""
	}
	return id
}

// Status is "active", "revoked" or "expired" at now.
func (t *Token) Status(now time.Time) string {
	switch {
	case !t.Revoked.IsZero():
		return "revoked"
	case !t.Expires.IsZero() && !now.Before(t.Expires):
		return "expired"
	}
	return "active"
}

// Errors callers tell apart. Authenticate's ErrUnknown, ErrRevoked and
// ErrExpired all mean 401; they differ only in what is logged.
var (
	ErrUnknown     = errors.New("unknown token")
	ErrRevoked     = errors.New("token revoked")
	ErrExpired     = errors.New("token expired")
	ErrNotFound    = errors.New("no such token")
	ErrNameTaken   = errors.New("a live token already has this name")
	ErrInvalid     = errors.New("invalid token request")
	ErrUnavailable = errors.New("token store unavailable")
)

// Options configure a Store. The zero value is usable.
type Options struct {
	// Prefix starts every key, default "gatebot:" (share it with the
	// approvals store).
	Prefix string
	// Grace is how long revoked and expired tokens are remembered, so that
	// their use is reported as such rather than as an unknown token, and
	// listed; default 30 days.
	Grace time.Duration
	// LastUsedEvery bounds how often one replica records a token's use,
	// default 1 minute.
	LastUsedEvery time.Duration
	// Now is the clock, default time.Now.
	Now func() time.Time
	// Logger, nil discards.
	Logger *slog.Logger
}

// Defaults applied by NewStore.
const (
	DefaultPrefix        = "gatebot:"
	DefaultGrace         = 30 * 24 * time.Hour
	DefaultLastUsedEvery = time.Minute
	// usedMax bounds the last-used throttle map.
	usedMax = 10000
)

// Store keeps tokens in Redis. It is safe for concurrent use.
type Store struct {
	rdb  redis.UniversalClient
	opts Options
	log  *slog.Logger

	mu   sync.Mutex
	used map[string]time.Time // token id → last time this replica wrote last-used
}

// NewStore returns a Store on rdb.
func NewStore(rdb redis.UniversalClient, o Options) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("apitoken: nil redis client")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.LastUsedEvery <= 0 {
		o.LastUsedEvery = DefaultLastUsedEvery
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{rdb: rdb, opts: o, log: log, used: map[string]time.Time{}}, nil
}

func (s *Store) hashKey(h string) string    { return s.opts.Prefix + "tok:h:" + h }
func (s *Store) idKey(id string) string     { return s.opts.Prefix + "tok:id:" + id }
func (s *Store) nameKey(name string) string { return s.opts.Prefix + "tok:n:" + name }
func (s *Store) allKey() string             { return s.opts.Prefix + "tok:all" }
func (s *Store) usedKey(id string) string   { return s.opts.Prefix + "tok:lu:" + id }

func (s *Store) now() time.Time { return s.opts.Now().UTC().Truncate(time.Millisecond) }

func unavailable(op string, err error) error {
	return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
}

// CreateRequest describes a token to create.
type CreateRequest struct {
	Name      string
	Scopes    []Scope
	Pipelines []string // pipeline names, or AllPipelines
	Creator   string
	// Owner is a UPN (must contain '@') or "aad:<object id>"; optional.
	Owner string
	TTL   time.Duration // 0: never expires
}

const ownerAADPrefix = "aad:"

var (
	validName     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	validPipeline = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	// An Entra object id is a GUID; accept any short id of its alphabet.
	validAADID = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)
)

// checkOwner reports what is wrong with an owner, or nil.
func checkOwner(o string) error {
	if o == "" {
		return nil
	}
	if id, ok := strings.CutPrefix(o, ownerAADPrefix); ok {
		if !validAADID.MatchString(id) {
			return errors.New("owner: aad: needs an Entra object id, e.g. aad:00000000-0000-0000-0000-000000000000")
		}
		return nil
	}
	if len(o) > 256 || strings.ContainsFunc(o, unicode.IsSpace) || strings.Count(o, "@") != 1 ||
		strings.HasPrefix(o, "@") || strings.HasSuffix(o, "@") {
		return errors.New("owner: a user principal name such as alice@example.com, or aad:<object id>")
	}
	return nil
}

// check reports every problem with r, wrapped in ErrInvalid.
func (r *CreateRequest) check() error {
	var errs []error
	if !validName.MatchString(r.Name) {
		errs = append(errs, errors.New("name: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"))
	} else if strings.HasPrefix(r.Name, "tok_") {
		errs = append(errs, errors.New("name: must not start with tok_ (reserved for token ids)"))
	}
	if len(r.Scopes) == 0 {
		errs = append(errs, errors.New("scopes: at least one of gates:read, gates:write"))
	}
	for _, sc := range r.Scopes {
		if !slices.Contains(Scopes, sc) {
			errs = append(errs, fmt.Errorf("scopes: %q is not one of gates:read, gates:write", sc))
		}
	}
	if len(r.Pipelines) == 0 {
		errs = append(errs, errors.New(`pipelines: at least one pipeline name, or "*" for all`))
	}
	for _, p := range r.Pipelines {
		if p != AllPipelines && !validPipeline.MatchString(p) {
			errs = append(errs, fmt.Errorf("pipelines: %q is not a pipeline name", p))
		}
	}
	if err := checkOwner(r.Owner); err != nil {
		errs = append(errs, err)
	}
	if r.TTL < 0 {
		errs = append(errs, errors.New("ttl: must not be negative"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}

func newTokenID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return "tok_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// Create stores a new token and returns its secret, which is not kept and
// cannot be shown again. A live token with the same name gives ErrNameTaken.
func (s *Store) Create(ctx context.Context, r CreateRequest) (Secret, *Token, error) {
	r.Owner = strings.TrimSpace(r.Owner)
	if err := r.check(); err != nil {
		return "", nil, err
	}
	now := s.now()
	t := &Token{
		ID: newTokenID(), Name: r.Name, Creator: r.Creator, Owner: r.Owner, Created: now,
		Scopes: slices.Compact(slices.Sorted(slices.Values(r.Scopes))),
	}
	t.Pipelines = slices.Compact(slices.Sorted(slices.Values(r.Pipelines)))
	if slices.Contains(t.Pipelines, AllPipelines) {
		t.Pipelines = []string{AllPipelines}
	}
	var ttl, nameTTL time.Duration
	if r.TTL > 0 {
		t.Expires = now.Add(r.TTL)
		nameTTL = r.TTL
		ttl = r.TTL + s.opts.Grace
	}
	secret := newSecret()
	h := hashOf(string(secret))
	raw, err := json.Marshal(t)
	if err != nil {
		return "", nil, fmt.Errorf("encode token: %w", err)
	}
	err = s.rdb.Watch(ctx, func(tx *redis.Tx) error {
		n, err := tx.Exists(ctx, s.nameKey(t.Name)).Result()
		if err != nil {
			return unavailable("create token", err)
		}
		if n > 0 {
			return fmt.Errorf("%q: %w", t.Name, ErrNameTaken)
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, s.hashKey(h), raw, ttl)
			p.Set(ctx, s.idKey(t.ID), h, ttl)
			p.Set(ctx, s.nameKey(t.Name), t.ID, nameTTL)
			p.ZAdd(ctx, s.allKey(), redis.Z{Score: float64(now.UnixMilli()), Member: t.ID})
			return nil
		})
		return err
	}, s.nameKey(t.Name))
	switch {
	case errors.Is(err, redis.TxFailedErr):
		return "", nil, fmt.Errorf("%q: %w", t.Name, ErrNameTaken)
	case errors.Is(err, ErrNameTaken), errors.Is(err, ErrUnavailable):
		return "", nil, err
	case err != nil:
		return "", nil, unavailable("create token", err)
	}
	s.log.InfoContext(ctx, "api token created", "token_id", t.ID, "token_name", t.Name, "creator", t.Creator, "owner", t.Owner)
	return secret, t, nil
}

// Authenticate returns the token whose secret is given (without the
// "Bearer " scheme; see FromHeader). It reads the record on every call, one
// GET, so revocation is effective at once everywhere. Errors: ErrUnknown
// (including malformed tokens, refused without a lookup), ErrRevoked,
// ErrExpired, ErrUnavailable.
func (s *Store) Authenticate(ctx context.Context, secret string) (*Token, error) {
	if !WellFormed(secret) {
		return nil, fmt.Errorf("%w: not a well-formed gatebot token", ErrUnknown)
	}
	raw, err := s.rdb.Get(ctx, s.hashKey(hashOf(secret))).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrUnknown
	}
	if err != nil {
		return nil, unavailable("authenticate", err)
	}
	var t Token
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("decode token: %w", err)
	}
	now := s.opts.Now()
	switch t.Status(now) {
	case "revoked":
		return &t, ErrRevoked
	case "expired":
		return &t, ErrExpired
	}
	s.touch(ctx, t.ID, now)
	return &t, nil
}

// touch records a use of the token, at most once per LastUsedEvery per
// replica. It is bookkeeping: a failure is logged, never returned.
func (s *Store) touch(ctx context.Context, id string, now time.Time) {
	s.mu.Lock()
	last, ok := s.used[id]
	if ok && now.Sub(last) < s.opts.LastUsedEvery {
		s.mu.Unlock()
		return
	}
	if len(s.used) >= usedMax {
		for k, at := range s.used {
			if now.Sub(at) >= s.opts.LastUsedEvery {
				delete(s.used, k)
			}
		}
		if len(s.used) >= usedMax {
			clear(s.used)
		}
	}
	s.used[id] = now
	s.mu.Unlock()
	if err := s.rdb.Set(ctx, s.usedKey(id), now.UnixMilli(), 0).Err(); err != nil {
		s.log.WarnContext(ctx, "could not record token use", "token_id", id, "err", err)
	}
}

// List returns every remembered token (live, and revoked or expired ones
// within Grace), oldest first.
func (s *Store) List(ctx context.Context) ([]*Token, error) {
	ids, err := s.rdb.ZRange(ctx, s.allKey(), 0, -1).Result()
	if err != nil {
		return nil, unavailable("list tokens", err)
	}
	return s.load(ctx, ids, true)
}

// load reads the records of ids; with prune, ids whose record is gone are
// dropped from the index.
func (s *Store) load(ctx context.Context, ids []string, prune bool) ([]*Token, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	idKeys := make([]string, len(ids))
	usedKeys := make([]string, len(ids))
	for i, id := range ids {
		idKeys[i], usedKeys[i] = s.idKey(id), s.usedKey(id)
	}
	hashes, err := s.rdb.MGet(ctx, idKeys...).Result()
	if err != nil {
		return nil, unavailable("list tokens", err)
	}
	used, err := s.rdb.MGet(ctx, usedKeys...).Result()
	if err != nil {
		return nil, unavailable("list tokens", err)
	}
	recKeys := make([]string, 0, len(ids))
	live := make([]int, 0, len(ids))
	var gone []any
	for i, h := range hashes {
		hs, ok := h.(string)
		if !ok {
			gone = append(gone, ids[i])
			continue
		}
		recKeys = append(recKeys, s.hashKey(hs))
		live = append(live, i)
	}
	var out []*Token
	if len(recKeys) > 0 {
		recs, err := s.rdb.MGet(ctx, recKeys...).Result()
		if err != nil {
			return nil, unavailable("list tokens", err)
		}
		for j, r := range recs {
			rs, ok := r.(string)
			if !ok {
				gone = append(gone, ids[live[j]])
				continue
			}
			var t Token
			if err := json.Unmarshal([]byte(rs), &t); err != nil {
				return nil, fmt.Errorf("decode token %s: %w", ids[live[j]], err)
			}
			if u, ok := used[live[j]].(string); ok {
				if ms, err := strconv.ParseInt(u, 10, 64); err == nil {
					t.LastUsed = time.UnixMilli(ms).UTC()
				}
			}
			out = append(out, &t)
		}
	}
	if prune && len(gone) > 0 {
		if err := s.rdb.ZRem(ctx, s.allKey(), gone...).Err(); err != nil {
			s.log.WarnContext(ctx, "pruning token index failed", "err", err)
		}
		for _, id := range gone {
			s.rdb.Del(ctx, s.usedKey(id.(string)))
		}
	}
	return out, nil
}

// Get returns the token with this id ("tok_…") or live name.
func (s *Store) Get(ctx context.Context, nameOrID string) (*Token, error) {
	id := nameOrID
	if !strings.HasPrefix(nameOrID, "tok_") {
		v, err := s.rdb.Get(ctx, s.nameKey(nameOrID)).Result()
		if errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("%q: %w", nameOrID, ErrNotFound)
		}
		if err != nil {
			return nil, unavailable("get token", err)
		}
		id = v
	}
	ts, err := s.load(ctx, []string{id}, false)
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, fmt.Errorf("%q: %w", nameOrID, ErrNotFound)
	}
	return ts[0], nil
}

// Revoke revokes the token with this id or live name, at once for every
// replica, and frees its name. The record is kept for Grace so that its
// use is logged as revoked. Revoking a revoked token is not an error.
func (s *Store) Revoke(ctx context.Context, nameOrID, by string) (*Token, error) {
	t, err := s.Get(ctx, nameOrID)
	if err != nil {
		return nil, err
	}
	hv, err := s.rdb.Get(ctx, s.idKey(t.ID)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%q: %w", nameOrID, ErrNotFound)
	}
	if err != nil {
		return nil, unavailable("revoke token", err)
	}
	var out *Token
	revoke := func(tx *redis.Tx) error {
		raw, err := tx.Get(ctx, s.hashKey(hv)).Bytes()
		if errors.Is(err, redis.Nil) {
			return fmt.Errorf("%q: %w", nameOrID, ErrNotFound)
		}
		if err != nil {
			return unavailable("revoke token", err)
		}
		var cur Token
		if err := json.Unmarshal(raw, &cur); err != nil {
			return fmt.Errorf("decode token: %w", err)
		}
		if !cur.Revoked.IsZero() {
			out = &cur
			return nil
		}
		cur.Revoked, cur.RevokedBy = s.now(), by
		enc, err := json.Marshal(&cur)
		if err != nil {
			return fmt.Errorf("encode token: %w", err)
		}
		// Free the name only if it still points at this token.
		owner, err := tx.Get(ctx, s.nameKey(cur.Name)).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return unavailable("revoke token", err)
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, s.hashKey(hv), enc, s.opts.Grace)
			p.Expire(ctx, s.idKey(cur.ID), s.opts.Grace)
			if owner == cur.ID {
				p.Del(ctx, s.nameKey(cur.Name))
			}
			return nil
		})
		if err != nil {
			return err
		}
		out = &cur
		return nil
	}
	// A concurrent revocation of the same token is the only contention.
	for range 3 {
		if err = s.rdb.Watch(ctx, revoke, s.hashKey(hv), s.nameKey(t.Name)); !errors.Is(err, redis.TxFailedErr) {
			break
		}
	}
	switch {
	case errors.Is(err, redis.TxFailedErr):
		return nil, unavailable("revoke token", err)
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrUnavailable):
		return nil, err
	case err != nil:
		return nil, unavailable("revoke token", err)
	}
	out.LastUsed = t.LastUsed
	s.log.InfoContext(ctx, "api token revoked", "token_id", out.ID, "token_name", out.Name, "by", by)
	return out, nil
}
