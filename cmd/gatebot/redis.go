package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// sentinelScheme is the URL scheme of a Redis behind Sentinel:
// redis+sentinel://[[user]:pass@]host1:26379,host2:26379/<master>[/<db>].
// The password is the data nodes'; Sentinel's own, if any, is
// redis.sentinel.password. rediss+sentinel:// is the same with TLS.
const (
	sentinelScheme    = "redis+sentinel"
	sentinelTLSScheme = "rediss+sentinel"
)

// RedisSentinel names a master monitored by Sentinel; an alternative to a
// redis+sentinel:// URL.
type RedisSentinel struct {
	Master   string   `yaml:"master"`
	Addrs    []string `yaml:"addrs"`    // host:port of the sentinels
	Username string   `yaml:"username"` // for the sentinels, if they require it
	Password Secret   `yaml:"password"` // for the sentinels, if they require it
}

// redisOptions turns the Redis config into client options: one node
// (redis://, rediss://, unix://) or a Sentinel-monitored master, with TLS
// from rediss:// and redis.ca_file, redis.cert_file, redis.key_file.
func redisOptions(c RedisConfig) (*redis.UniversalOptions, error) {
	var o *redis.UniversalOptions
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, fmt.Errorf("redis.url: not a URL")
	}
	switch {
	case u.Scheme == sentinelScheme || u.Scheme == sentinelTLSScheme:
		if len(c.Sentinel.Addrs) > 0 || c.Sentinel.Master != "" {
			return nil, errors.New("redis: set the sentinels in redis.url or in redis.sentinel, not both")
		}
		if o, err = parseSentinelURL(u); err != nil {
			return nil, fmt.Errorf("redis.url: %w", err)
		}
	default:
		opt, err := redis.ParseURL(c.URL)
		if err != nil {
			// go-redis errors quote the URL, password included.
			return nil, fmt.Errorf("redis.url: %s", strings.ReplaceAll(err.Error(), c.URL, redactRedisURL(u)))
		}
		o = &redis.UniversalOptions{
			Addrs: []string{opt.Addr}, DB: opt.DB, Username: opt.Username, Password: opt.Password,
			TLSConfig: opt.TLSConfig, Protocol: opt.Protocol,
		}
		if opt.Network == "unix" {
			// UniversalOptions has no network: a unix socket needs its dialer.
			o.Dialer = opt.Dialer
			if o.Dialer == nil {
				o.Dialer = unixDialer(opt.Addr)
			}
		}
		if s := c.Sentinel; s.Master != "" || len(s.Addrs) > 0 {
			if s.Master == "" || len(s.Addrs) == 0 {
				return nil, errors.New("redis.sentinel: needs both master and addrs")
			}
			// The URL then carries only credentials, db and TLS for the
			// data nodes; its host is ignored.
			o.Addrs, o.MasterName = s.Addrs, s.Master
		}
	}
	if s := c.Sentinel; o.MasterName != "" {
		o.SentinelUsername, o.SentinelPassword = s.Username, s.Password.Reveal()
	}
	if c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" {
		if o.TLSConfig == nil {
			return nil, errors.New("redis.ca_file, cert_file and key_file need TLS: use a rediss:// URL")
		}
		if err := loadRedisTLS(o.TLSConfig, c); err != nil {
			return nil, err
		}
	}
	// RESP2 unless the URL asks for 3: gatebot uses no RESP3 feature, and
	// the client inspects every RESP3 reply for push notifications (7 % of
	// gatebot's CPU in the gate-flow profile).
	if o.Protocol == 0 {
		o.Protocol = 2
	}
	// Fail fast while Redis is down, so callers get a quick 503 or a short
	// Teams message instead of hanging turns.
	// A hung Redis (accepting, never answering) must not hold a card
	// click past its 4 s budget: commands honour the caller's deadline, and
	// a timed-out command is retried at most once.
	o.DialerRetries, o.DialTimeout, o.ReadTimeout, o.WriteTimeout = 1, 2*time.Second, 2*time.Second, 2*time.Second
	o.ContextTimeoutEnabled, o.MaxRetries = true, 1
	return o, nil
}

// parseSentinelURL reads redis+sentinel://[[user]:pass@]h1:p1,h2:p2/master[/db].
func parseSentinelURL(u *url.URL) (*redis.UniversalOptions, error) {
	o := &redis.UniversalOptions{}
	for _, a := range strings.Split(u.Host, ",") {
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("sentinel address %q is not host:port", a)
		}
		o.Addrs = append(o.Addrs, a)
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) == 0 || parts[0] == "" || len(parts) > 2 {
		return nil, errors.New("a sentinel URL names the master: redis+sentinel://host:26379,…/<master>[/<db>]")
	}
	o.MasterName = parts[0]
	if len(parts) == 2 {
		db, err := strconv.Atoi(parts[1])
		if err != nil || db < 0 {
			return nil, fmt.Errorf("database %q is not a number", parts[1])
		}
		o.DB = db
	}
	if u.User != nil {
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
	}
	if u.Scheme == sentinelTLSScheme {
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if len(u.Query()) > 0 {
		return nil, errors.New("a sentinel URL takes no query parameters")
	}
	return o, nil
}

// loadRedisTLS adds the configured CA and client certificate to t.
func loadRedisTLS(t *tls.Config, c RedisConfig) error {
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return fmt.Errorf("redis.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("redis.ca_file: %s holds no PEM certificate", c.CAFile)
		}
		t.RootCAs = pool
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("redis.cert_file and redis.key_file go together")
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return fmt.Errorf("redis.cert_file/key_file: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return nil
}

// unixDialer dials the socket at path whatever address go-redis asks for.
func unixDialer(path string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}
}

// redactRedisURL is u without its password, for error messages.
func redactRedisURL(u *url.URL) string {
	r := *u
	if _, ok := r.User.Password(); ok {
		r.User = url.UserPassword(r.User.Username(), "xxxxx")
	}
	return r.String()
}

// openRedis connects to the configured Redis, or starts an embedded
// in-memory one for local dev. hooks (metrics) are added to the client.
func openRedis(c RedisConfig, log *slog.Logger, hooks ...redis.Hook) (redis.UniversalClient, func(), error) {
	if c.URL == "" && c.Sentinel.Master == "" {
		mr := miniredis.NewMiniRedis()
		if err := mr.StartAddr("127.0.0.1:0"); err != nil {
			return nil, nil, fmt.Errorf("start embedded redis: %w", err)
		}
		log.Warn("USING AN EMBEDDED IN-MEMORY REDIS: gates, votes and audit entries are lost when gatebot stops. Set redis.url (or REDIS_URL) to keep them.", "addr", mr.Addr())
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		for _, h := range hooks {
			rdb.AddHook(h)
		}
		return rdb, func() { rdb.Close(); mr.Close() }, nil
	}
	o, err := redisOptions(c)
	if err != nil {
		return nil, nil, err
	}
	rdb := redis.NewUniversalClient(o)
	for _, h := range hooks {
		rdb.AddHook(h)
	}
	return rdb, func() { rdb.Close() }, nil
}

// check adds the Redis config's problems to ps, without connecting.
func (c RedisConfig) check(ps *problems) {
	if c.URL == "" {
		if c.Sentinel.Master != "" || len(c.Sentinel.Addrs) > 0 {
			ps.add("redis.url", "is required with redis.sentinel (redis://[:password@]/0 gives the data nodes' password and db)")
		}
		return
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		ps.add("redis.url", "is not a URL")
		return
	}
	switch u.Scheme {
	case "redis", "rediss", "unix", sentinelScheme, sentinelTLSScheme:
	default:
		ps.add("redis.url", "must be a redis://, rediss://, unix:// or redis+sentinel:// URL")
		return
	}
	if _, err := redisOptions(c); err != nil {
		ps.add("redis", "%s", strings.TrimPrefix(err.Error(), "redis: "))
	}
}
