package apitoken

import (
	"context"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// gcraScript applies the generic cell rate algorithm to KEYS[1], which
// holds the theoretical arrival time (TAT) in µs. ARGV: now (µs), emission
// interval T (µs), burst tolerance τ = burst·T (µs). It returns
// {allowed (0/1), retry after (µs), remaining}. Time comes from the caller
// so that tests can drive it; replicas' clocks only need to agree to well
// under T.
var gcraScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local t = tonumber(ARGV[2])
local tau = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local newtat = tat + t
local allowat = newtat - tau
if now < allowat then
  return {0, allowat - now, 0}
end
local ttl = math.ceil((newtat - now) / 1000)
if ttl < 1 then ttl = 1 end
redis.call('SET', KEYS[1], string.format('%.0f', newtat), 'PX', ttl)
return {1, 0, math.floor((now - allowat) / t)}
`)

// LimiterOptions configure a Limiter.
type LimiterOptions struct {
	// Prefix starts every key, default "gatebot:".
	Prefix string
	// Rate is the sustained rate in requests per second, default 10.
	Rate float64
	// Burst is how many requests may come at once, default 2·Rate (at
	// least 1).
	Burst int
	// Now is the clock, default time.Now.
	Now func() time.Time
}

// Limiter limits requests per key (a token id) across every replica
// sharing one Redis: one script call per request.
type Limiter struct {
	rdb  redis.UniversalClient
	opts LimiterOptions
	t    int64 // emission interval, µs
	tau  int64 // burst tolerance, µs
}

// Decision is the outcome of one Allow.
type Decision struct {
	Allowed bool
	// RetryAfter is when the next request would be allowed, when refused.
	RetryAfter time.Duration
	// Remaining is how many more requests could come right now.
	Remaining int
	// Limit is the burst size.
	Limit int
}

// NewLimiter returns a Limiter on rdb.
func NewLimiter(rdb redis.UniversalClient, o LimiterOptions) (*Limiter, error) {
	if rdb == nil {
		return nil, errors.New("apitoken: nil redis client")
	}
	if o.Rate < 0 || o.Burst < 0 || math.IsNaN(o.Rate) || math.IsInf(o.Rate, 0) {
		return nil, errors.New("apitoken: rate and burst must be positive")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Rate == 0 {
		o.Rate = 10
	}
	if o.Burst == 0 {
		o.Burst = max(1, int(math.Ceil(2*o.Rate)))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	t := int64(math.Round(1e6 / o.Rate))
	if t < 1 {
		return nil, errors.New("apitoken: rate above 1,000,000 per second")
	}
	return &Limiter{rdb: rdb, opts: o, t: t, tau: t * int64(o.Burst)}, nil
}

// Allow counts one request for key and says whether it may proceed.
func (l *Limiter) Allow(ctx context.Context, key string) (Decision, error) {
	now := l.opts.Now().UnixMicro()
	res, err := gcraScript.Run(ctx, l.rdb, []string{l.opts.Prefix + "rl:" + key},
		strconv.FormatInt(now, 10), strconv.FormatInt(l.t, 10), strconv.FormatInt(l.tau, 10)).Int64Slice()
	if err != nil {
		return Decision{}, unavailable("rate limit", err)
	}
	if len(res) != 3 {
		return Decision{}, unavailable("rate limit", errors.New("unexpected script reply"))
	}
	return Decision{
		Allowed:    res[0] == 1,
		RetryAfter: time.Duration(res[1]) * time.Microsecond,
		Remaining:  int(res[2]),
		Limit:      l.opts.Burst,
	}, nil
}
