package apitoken

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	rdb    *redis.Client
	mr     *miniredis.Miniredis // nil on real Redis
	prefix string
	clock  *clock
	cmds   *cmdCounter
}

// cmdCounter records the commands a client sends, to measure round trips.
type cmdCounter struct {
	mu   sync.Mutex
	cmds []string
}

func (c *cmdCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *cmdCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.mu.Lock()
		c.cmds = append(c.cmds, cmd.Name())
		c.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (c *cmdCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.mu.Lock()
		for _, cmd := range cmds {
			c.cmds = append(c.cmds, "pipeline:"+cmd.Name())
		}
		c.mu.Unlock()
		return next(ctx, cmds)
	}
}

func (c *cmdCounter) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.cmds
	c.cmds = nil
	return out
}

func realRedisURL() string {
	if u := os.Getenv("GATEBOT_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

func newEnv(tb testing.TB, real bool) *env {
	tb.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	e := &env{prefix: "{gbtest-tok-" + hex.EncodeToString(b[:]) + "}:", clock: &clock{t: time.Now().UTC().Truncate(time.Second)}, cmds: &cmdCounter{}}
	if real {
		opt, err := redis.ParseURL(realRedisURL())
		if err != nil {
			tb.Fatalf("GATEBOT_TEST_REDIS_URL: %v", err)
		}
		e.rdb = redis.NewClient(opt)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := e.rdb.Ping(ctx).Err(); err != nil {
			e.rdb.Close()
			tb.Skipf("real Redis at %s does not answer (%v): skipping the real-Redis variant; start redis-server or set GATEBOT_TEST_REDIS_URL", realRedisURL(), err)
		}
		tb.Cleanup(func() {
			ctx := context.Background()
			keys, _ := e.rdb.Keys(ctx, e.prefix+"*").Result()
			if len(keys) > 0 {
				e.rdb.Del(ctx, keys...)
			}
			e.rdb.Close()
		})
	} else {
		e.mr = miniredis.RunT(tb)
		e.rdb = redis.NewClient(&redis.Options{Addr: e.mr.Addr()})
		tb.Cleanup(func() { e.rdb.Close() })
	}
	e.rdb.AddHook(e.cmds)
	return e
}

func (e *env) store(tb testing.TB) *Store {
	tb.Helper()
	s, err := NewStore(e.rdb, Options{Prefix: e.prefix, Now: e.clock.Now})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func backends(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, real := range []bool{false, true} {
		name := "miniredis"
		if real {
			name = "redis"
		}
		t.Run(name, func(t *testing.T) { fn(t, newEnv(t, real)) })
	}
}

func mustCreate(t *testing.T, s *Store, r CreateRequest) (Secret, *Token) {
	t.Helper()
	sec, tok, err := s.Create(context.Background(), r)
	if err != nil {
		t.Fatalf("Create(%+v): %v", r, err)
	}
	return sec, tok
}

var ciProd = CreateRequest{Name: "ci-prod", Scopes: []Scope{ScopeWrite, ScopeRead}, Pipelines: []string{"deploy-web", "deploy-api"}, Creator: "alice", TTL: 90 * 24 * time.Hour}

func TestSecretFormat(t *testing.T) {
	seen := map[Secret]bool{}
	for range 200 {
		s := newSecret()
		if !WellFormed(string(s)) {
			t.Fatalf("fresh secret %q is not well formed", s)
		}
		if len(s) != 53 || !strings.HasPrefix(string(s), "gbt_") {
			t.Fatalf("secret %q: want gbt_ and 53 characters", s)
		}
		if seen[s] {
			t.Fatalf("secret repeated: %q", s)
		}
		seen[s] = true
	}
	s := string(newSecret())
	flip := func(i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	bad := map[string]string{
		"empty":            "",
		"no prefix":        "ghp_" + s[4:],
		"short":            s[:52],
		"long":             s + "a",
		"bad alphabet":     s[:10] + "-" + s[11:],
		"body typo":        flip(10),
		"checksum typo":    flip(50),
		"bearer included":  "Bearer " + s,
		"lowercase prefix": "GBT_" + s[4:],
	}
	for name, v := range bad {
		if WellFormed(v) {
			t.Errorf("%s: %q accepted as well formed", name, v)
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := newSecret()
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", "token", s)
	for _, out := range []string{s.String(), buf.String()} {
		if strings.Contains(out, s.Reveal()[4:]) {
			t.Fatalf("secret leaked: %s", out)
		}
		if !strings.Contains(out, "gbt_[redacted]") {
			t.Errorf("masked form missing: %s", out)
		}
	}
}

func TestFromHeader(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"Bearer gbt_x", "gbt_x", true},
		{"bearer   gbt_x ", "gbt_x", true},
		{"BEARER gbt_x", "gbt_x", true},
		{"", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Basic dXNlcjpwYXNz", "", false},
		{"gbt_x", "", false},
	}
	for _, c := range cases {
		got, ok := FromHeader(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("FromHeader(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestCreateAndAuthenticate(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		s := e.store(t)
		sec, tok := mustCreate(t, s, ciProd)
		if !strings.HasPrefix(tok.ID, "tok_") || tok.Name != "ci-prod" || tok.Creator != "alice" {
			t.Fatalf("token record: %+v", tok)
		}
		if want := e.clock.Now().Add(90 * 24 * time.Hour); !tok.Expires.Equal(want) {
			t.Errorf("Expires = %v, want %v", tok.Expires, want)
		}
		if strings.Join(tok.Pipelines, ",") != "deploy-api,deploy-web" || strings.Join(scopeStrings(tok.Scopes), ",") != "gates:read,gates:write" {
			t.Errorf("pipelines/scopes not normalised: %v %v", tok.Pipelines, tok.Scopes)
		}
		got, err := s.Authenticate(ctx, sec.Reveal())
		if err != nil {
			t.Fatalf("Authenticate: %v", err)
		}
		if got.ID != tok.ID || !got.Has(ScopeWrite) || !got.MayAccess("deploy-api") || got.MayAccess("deploy-db") || got.AllPipelines() {
			t.Errorf("authenticated token: %+v", got)
		}
		// Nothing stored holds the secret.
		keys, err := e.rdb.Keys(ctx, e.prefix+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			v, _ := e.rdb.Dump(ctx, k).Result()
			if strings.Contains(k+v, sec.Reveal()[4:]) {
				t.Errorf("key %s holds the secret", k)
			}
		}
		_, all, err := s.Create(ctx, CreateRequest{Name: "admin", Scopes: []Scope{ScopeRead}, Pipelines: []string{"a", "*"}})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(all.Pipelines, ",") != "*" || !all.AllPipelines() || !all.MayAccess("anything") {
			t.Errorf("\"*\" should absorb the other pipelines: %v", all.Pipelines)
		}
	})
}

func TestOwnerRoundTrip(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		s := e.store(t)
		tests := []struct {
			name, owner      string
			wantOwner        string
			wantUPN, wantAAD string
		}{
			{name: "by-upn", owner: " alice@example.com ", wantOwner: "alice@example.com", wantUPN: "alice@example.com"},
			{name: "by-aad", owner: "aad:aaaa-1111", wantOwner: "aad:aaaa-1111", wantAAD: "aaaa-1111"},
			{name: "no-owner"},
		}
		for _, tt := range tests {
			e.clock.Advance(time.Second) // List is ordered by creation
			sec, created := mustCreate(t, s, CreateRequest{Name: tt.name, Scopes: []Scope{ScopeWrite}, Pipelines: []string{"*"}, Owner: tt.owner})
			auth, err := s.Authenticate(ctx, sec.Reveal())
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Get(ctx, tt.name)
			if err != nil {
				t.Fatal(err)
			}
			for label, tok := range map[string]*Token{"Create": created, "Authenticate": auth, "Get": got} {
				if tok.Owner != tt.wantOwner || tok.OwnerUPN() != tt.wantUPN || tok.OwnerAADObjectID() != tt.wantAAD {
					t.Errorf("%s %s: owner %q upn %q aad %q, want %q %q %q", tt.name, label,
						tok.Owner, tok.OwnerUPN(), tok.OwnerAADObjectID(), tt.wantOwner, tt.wantUPN, tt.wantAAD)
				}
			}
		}
		list, err := s.List(ctx)
		if err != nil || len(list) != 3 || list[0].Owner != "alice@example.com" || list[2].Owner != "" {
			t.Errorf("List: %+v, %v", list, err)
		}
	})
}

// A record written before tokens had owners still authenticates, ownerless.
func TestOwnerlessRecordStillWorks(t *testing.T) {
	e := newEnv(t, false)
	s := e.store(t)
	ctx := context.Background()
	sec, tok := mustCreate(t, s, ciProd)
	h := hashOf(sec.Reveal())
	old := `{"id":"` + tok.ID + `","name":"ci-prod","scopes":["gates:write"],"pipelines":["*"],"created":"2026-01-01T00:00:00Z"}`
	if err := e.rdb.Set(ctx, s.hashKey(h), old, 0).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := s.Authenticate(ctx, sec.Reveal())
	if err != nil || got.Owner != "" || got.OwnerUPN() != "" || got.OwnerAADObjectID() != "" {
		t.Fatalf("old record: %+v, %v", got, err)
	}
}

func scopeStrings(s []Scope) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = string(v)
	}
	return out
}

func TestAuthenticateRefusals(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		s := e.store(t)
		other := e.store(t) // a second replica
		sec, _ := mustCreate(t, s, ciProd)
		short, _ := mustCreate(t, s, CreateRequest{Name: "short", Scopes: []Scope{ScopeRead}, Pipelines: []string{"*"}, TTL: time.Hour})

		// Both replicas accept it first.
		for _, st := range []*Store{s, other} {
			if _, err := st.Authenticate(ctx, sec.Reveal()); err != nil {
				t.Fatalf("before revocation: %v", err)
			}
		}
		e.cmds.take()
		if _, err := s.Authenticate(ctx, "gbt_nonsense"); !errors.Is(err, ErrUnknown) {
			t.Errorf("malformed: %v, want ErrUnknown", err)
		}
		if cmds := e.cmds.take(); len(cmds) != 0 {
			t.Errorf("a malformed token cost Redis commands: %v", cmds)
		}
		if _, err := s.Authenticate(ctx, string(newSecret())); !errors.Is(err, ErrUnknown) {
			t.Errorf("unknown: %v, want ErrUnknown", err)
		}
		rt, err := s.Revoke(ctx, "ci-prod", "bob")
		if err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		if rt.RevokedBy != "bob" || rt.Revoked.IsZero() {
			t.Errorf("revoked record: %+v", rt)
		}
		// The other replica refuses it on its very next request.
		for _, st := range []*Store{other, s} {
			if _, err := st.Authenticate(ctx, sec.Reveal()); !errors.Is(err, ErrRevoked) {
				t.Errorf("after revocation: %v, want ErrRevoked", err)
			}
		}
		e.clock.Advance(time.Hour)
		if _, err := s.Authenticate(ctx, short.Reveal()); !errors.Is(err, ErrExpired) {
			t.Errorf("expired: %v, want ErrExpired", err)
		}
	})
}

func TestAuthenticateIsOneGET(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		s := e.store(t)
		sec, _ := mustCreate(t, s, ciProd)
		if _, err := s.Authenticate(ctx, sec.Reveal()); err != nil {
			t.Fatal(err)
		}
		if cmds := e.cmds.take(); len(cmds) < 2 {
			t.Fatalf("first use should also record last-used: %v", cmds)
		}
		for range 5 {
			if _, err := s.Authenticate(ctx, sec.Reveal()); err != nil {
				t.Fatal(err)
			}
			if cmds := e.cmds.take(); len(cmds) != 1 || cmds[0] != "get" {
				t.Fatalf("a warm authentication sent %v, want exactly one GET", cmds)
			}
		}
		e.clock.Advance(DefaultLastUsedEvery)
		if _, err := s.Authenticate(ctx, sec.Reveal()); err != nil {
			t.Fatal(err)
		}
		if cmds := e.cmds.take(); strings.Join(cmds, " ") != "get set" {
			t.Fatalf("after a minute: %v, want get then set (last used)", cmds)
		}
	})
}

func TestListGetRevoke(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		s := e.store(t)
		sec, a := mustCreate(t, s, ciProd)
		e.clock.Advance(time.Second)
		_, b := mustCreate(t, s, CreateRequest{Name: "reader", Scopes: []Scope{ScopeRead}, Pipelines: []string{"*"}})
		if _, err := s.Authenticate(ctx, sec.Reveal()); err != nil {
			t.Fatal(err)
		}
		list, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].ID != a.ID || list[1].ID != b.ID {
			t.Fatalf("List: %+v", list)
		}
		if !list[0].LastUsed.Equal(e.clock.Now().Truncate(time.Millisecond)) || !list[1].LastUsed.IsZero() {
			t.Errorf("last used: %v / %v", list[0].LastUsed, list[1].LastUsed)
		}
		if list[1].Status(e.clock.Now()) != "active" || !list[1].Expires.IsZero() {
			t.Errorf("a token without TTL never expires: %+v", list[1])
		}
		for _, key := range []string{"ci-prod", a.ID} {
			got, err := s.Get(ctx, key)
			if err != nil || got.ID != a.ID {
				t.Errorf("Get(%q) = %v, %v", key, got, err)
			}
		}
		if _, _, err := s.Create(ctx, ciProd); !errors.Is(err, ErrNameTaken) {
			t.Errorf("duplicate name: %v, want ErrNameTaken", err)
		}
		if _, err := s.Revoke(ctx, b.ID, "carol"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Revoke(ctx, b.ID, "carol"); err != nil {
			t.Errorf("revoking twice: %v", err)
		}
		// The name is free again; the old record stays listed as revoked.
		e.clock.Advance(time.Second)
		_, c := mustCreate(t, s, CreateRequest{Name: "reader", Scopes: []Scope{ScopeRead}, Pipelines: []string{"*"}})
		list, err = s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 3 || list[1].Status(e.clock.Now()) != "revoked" || list[2].ID != c.ID {
			t.Fatalf("List after revoke: %+v", list)
		}
		if got, err := s.Get(ctx, "reader"); err != nil || got.ID != c.ID {
			t.Errorf("Get(reader) after rotation: %v, %v", got, err)
		}
		for _, key := range []string{"nobody", "tok_nope"} {
			if _, err := s.Revoke(ctx, key, "x"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Revoke(%q): %v, want ErrNotFound", key, err)
			}
		}
	})
}

func TestCreateInvalid(t *testing.T) {
	s := newEnv(t, false).store(t)
	cases := map[string]CreateRequest{
		"no name":         {Scopes: []Scope{ScopeRead}, Pipelines: []string{"*"}},
		"bad name":        {Name: "ci prod", Scopes: []Scope{ScopeRead}, Pipelines: []string{"*"}},
		"id-like name":    {Name: "tok_abc", Scopes: []Scope{ScopeRead}, Pipelines: []string{"*"}},
		"no scopes":       {Name: "x", Pipelines: []string{"*"}},
		"unknown scope":   {Name: "x", Scopes: []Scope{"admin"}, Pipelines: []string{"*"}},
		"no pipelines":    {Name: "x", Scopes: []Scope{ScopeRead}},
		"bad pipeline":    {Name: "x", Scopes: []Scope{ScopeRead}, Pipelines: []string{"a b"}},
		"negative ttl":    {Name: "x", Scopes: []Scope{ScopeRead}, Pipelines: []string{"*"}, TTL: -time.Second},
		"long name (65)":  {Name: strings.Repeat("a", 65), Scopes: []Scope{ScopeRead}, Pipelines: []string{"*"}},
		"owner not upn":   {Name: "x", Scopes: []Scope{ScopeRead}, Pipelines: []string{"*"}, Owner: "alice"},
		"owner two @":     {Name: "x", Scopes: []Scope{ScopeRead}, Pipelines: []string{"*"}, Owner: "a@b@c"},
		"owner bare @":    {Name: "x", Scopes: []Scope{ScopeRead}, Pipelines: []string{"*"}, Owner: "@example.com"},
		"owner space":     {Name: "x", Scopes: []Scope{ScopeRead}, Pipelines: []string{"*"}, Owner: "al ice@example.com"},
		"owner aad: bare": {Name: "x", Scopes: []Scope{ScopeRead}, Pipelines: []string{"*"}, Owner: "aad:"},
		"owner aad: junk": {Name: "x", Scopes: []Scope{ScopeRead}, Pipelines: []string{"*"}, Owner: "aad:a b"},
	}
	for name, r := range cases {
		if _, _, err := s.Create(context.Background(), r); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func TestUnavailable(t *testing.T) {
	e := newEnv(t, false)
	sec, _ := mustCreate(t, e.store(t), ciProd)
	// No client retries: the answer should come at once.
	fast := redis.NewClient(&redis.Options{Addr: e.mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { fast.Close() })
	s, _ := NewStore(fast, Options{Prefix: e.prefix})
	l, err := NewLimiter(fast, LimiterOptions{Prefix: e.prefix})
	if err != nil {
		t.Fatal(err)
	}
	e.mr.Close()
	ctx := context.Background()
	if _, err := s.Authenticate(ctx, sec.Reveal()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Authenticate with Redis down: %v", err)
	}
	if _, err := l.Allow(ctx, "k"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Allow with Redis down: %v", err)
	}
	if _, err := s.List(ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("List with Redis down: %v", err)
	}
}

func TestLimiter(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		opts := LimiterOptions{Prefix: e.prefix, Rate: 2, Burst: 3, Now: e.clock.Now}
		a, err := NewLimiter(e.rdb, opts)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := NewLimiter(e.rdb, opts) // another replica
		allow := func(l *Limiter, key string) Decision {
			t.Helper()
			d, err := l.Allow(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
		// The burst is shared by both replicas.
		for i, l := range []*Limiter{a, b, a} {
			d := allow(l, "tok_1")
			if !d.Allowed || d.Remaining != 2-i || d.Limit != 3 {
				t.Fatalf("request %d: %+v", i, d)
			}
		}
		d := allow(b, "tok_1")
		if d.Allowed || d.RetryAfter != 500*time.Millisecond {
			t.Fatalf("4th request in a burst of 3: %+v, want refused for 500ms", d)
		}
		if d := allow(a, "tok_2"); !d.Allowed {
			t.Errorf("another key is limited separately: %+v", d)
		}
		e.clock.Advance(499 * time.Millisecond)
		if d := allow(a, "tok_1"); d.Allowed {
			t.Errorf("allowed before the retry time: %+v", d)
		}
		e.clock.Advance(time.Millisecond)
		if d := allow(a, "tok_1"); !d.Allowed || d.Remaining != 0 {
			t.Errorf("at the retry time: %+v", d)
		}
		// Idle time refills the burst, and no more.
		e.clock.Advance(time.Hour)
		for i := range 3 {
			if d := allow(b, "tok_1"); !d.Allowed {
				t.Fatalf("after idling, request %d refused", i)
			}
		}
		if d := allow(b, "tok_1"); d.Allowed {
			t.Errorf("burst exceeded after idling")
		}
	})
}

func TestLimiterOptions(t *testing.T) {
	rdb := newEnv(t, false).rdb
	if _, err := NewLimiter(rdb, LimiterOptions{Rate: -1}); err == nil {
		t.Error("negative rate accepted")
	}
	l, err := NewLimiter(rdb, LimiterOptions{})
	if err != nil || l.opts.Rate != 10 || l.opts.Burst != 20 {
		t.Errorf("defaults: %+v %v", l, err)
	}
}
