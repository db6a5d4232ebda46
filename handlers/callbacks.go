package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/pipelines/webhook"
)

// Callbacks delivers a gate's state changes to the callback_url its API
// caller gave, signed per Standard Webhooks 1.0 with the configured secret.
//
// Delivery is at least once through a queue in Redis that every replica
// works on: an event is written (once per gate version, with its body
// fixed) before any attempt, claimed for a lease while it is being sent,
// and rescheduled with growing delays until the receiver answers 2xx, so a
// replica that dies mid-way only delays it. Events are enqueued when
// gatebot changes a gate (Server.changed) and, to cover a crash between a
// gate's change and that enqueue or changes made elsewhere, by a sweep
// that re-reads every watched gate each SweepEvery until it is final.
// Events of one gate are not ordered: receivers order by data.version.
//
// Redis keys, under the store's prefix P:
//
//	P cb:due            zset    event id → next attempt (ms)
//	P cb:ev:<event id>  string  event: url, body, attempts (TTL eventTTL)
//	P cb:last:<gate>    string  "<version> <state>" newest enqueued (TTL lastTTL)
//	P cb:seen:<gate>    hash    version → 1 for every version handled (TTL lastTTL)
//	P cb:watch          zset    gate id → next sweep (ms)
//	P cb:dead           zset    event id → when it was given up (ms)
type Callbacks struct {
	rdb    redis.UniversalClient
	opts   CallbackOptions
	log    *slog.Logger
	secret []byte
	allow  []hostRule
	hc     *http.Client
}

// GateSource is where the sweep re-reads gates. *approvals.Store
// implements it.
type GateSource interface {
	Get(ctx context.Context, id string) (*approvals.Gate, error)
}

// CallbackOptions configure Callbacks.
type CallbackOptions struct {
	Redis redis.UniversalClient // required
	// Prefix starts every key, default "gatebot:" (the approvals prefix).
	Prefix string
	// Secret is the whsec_… signing secret. Required.
	Secret string
	// Hosts is the allow-list of callback destinations: a host name
	// ("ci.example.com", https on any port), a wildcard ("*.example.com",
	// https, any subdomain), or an origin ("http://10.0.0.5:8080") allowing
	// exactly that scheme, host and port.
	Hosts []string
	// Gates is read by the sweep. Required.
	Gates GateSource
	// HTTPClient sends callbacks; it is copied and never follows redirects.
	// Default: a client with a 15 s timeout.
	HTTPClient *http.Client
	// BaseURL makes the links in bodies absolute (as APIOptions.BaseURL).
	BaseURL string
	// Schedule is the delay before each retry; after the last one the event
	// is given up. Default: 5s, 5m, 30m, 2h, 5h, 10h, 10h (Standard
	// Webhooks' suggestion), each ±20 %.
	Schedule []time.Duration
	// SweepEvery is how often watched gates are re-read, default 15 s.
	SweepEvery time.Duration
	// PollEvery is how often due events are looked for, default 500 ms.
	PollEvery time.Duration
	// Timeout bounds one delivery attempt, default 15 s. An attempt's claim
	// lasts twice as long: a replica that dies mid-attempt delays the event
	// by that much.
	Timeout time.Duration
	Logger  *slog.Logger
	Now     func() time.Time
}

// Callback tuning.
const (
	defaultCallbackTimeout = 15 * time.Second
	callbackBatch          = 32 // gates per sweep step
	callbackParallel       = 8  // events claimed and sent at once
	maxRetryAfterWait      = time.Hour
	eventTTL               = 3 * 24 * time.Hour
	lastTTL                = 35 * 24 * time.Hour
	maxCallbackURL         = 2048
)

var defaultSchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// NewCallbacks validates o and returns Callbacks. Call Run to deliver.
func NewCallbacks(o CallbackOptions) (*Callbacks, error) {
	var errs []error
	if o.Redis == nil {
		errs = append(errs, errors.New("callbacks: Redis is required"))
	}
	if o.Gates == nil {
		errs = append(errs, errors.New("callbacks: Gates is required"))
	}
	secret, err := webhook.ParseSecret(o.Secret)
	if err != nil {
		errs = append(errs, fmt.Errorf("callbacks: secret: %w", err))
	}
	rules, err := parseHostRules(o.Hosts)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if o.Prefix == "" {
		o.Prefix = approvals.DefaultPrefix
	}
	if len(o.Schedule) == 0 {
		o.Schedule = defaultSchedule
	}
	if o.SweepEvery <= 0 {
		o.SweepEvery = 15 * time.Second
	}
	if o.PollEvery <= 0 {
		o.PollEvery = 500 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultCallbackTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hc := &http.Client{Timeout: o.Timeout}
	if o.HTTPClient != nil {
		c := *o.HTTPClient
		hc = &c
	}
	// A redirect could lead a signed request anywhere; the allow-list is
	// about the final destination, so none is followed.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Callbacks{rdb: o.Redis, opts: o, log: log.With("component", "callbacks"), secret: secret, allow: rules, hc: hc}, nil
}

func (c *Callbacks) dueKey() string             { return c.opts.Prefix + "cb:due" }
func (c *Callbacks) eventKey(id string) string  { return c.opts.Prefix + "cb:ev:" + id }
func (c *Callbacks) lastKey(gate string) string { return c.opts.Prefix + "cb:last:" + gate }
func (c *Callbacks) seenKey(gate string) string { return c.opts.Prefix + "cb:seen:" + gate }
func (c *Callbacks) watchKey() string           { return c.opts.Prefix + "cb:watch" }
func (c *Callbacks) deadKey() string            { return c.opts.Prefix + "cb:dead" }

// ValidateCallbackHosts checks allow-list entries as NewCallbacks does,
// for config checks.
func ValidateCallbackHosts(hosts []string) error {
	_, err := parseHostRules(hosts)
	return err
}

// hostRule is one allow-list entry.
type hostRule struct {
	scheme string // "" = https, any port
	host   string // lower case; with port when scheme is set
	suffix bool   // host is ".example.com" for "*.example.com"
}

func parseHostRules(entries []string) ([]hostRule, error) {
	var rules []hostRule
	var errs []error
	for _, e := range entries {
		e = strings.TrimSpace(e)
		switch {
		case strings.Contains(e, "://"):
			u, err := url.Parse(e)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
				errs = append(errs, fmt.Errorf("callback host %q: an origin is scheme://host[:port] with nothing after it", e))
				continue
			}
			rules = append(rules, hostRule{scheme: u.Scheme, host: strings.ToLower(hostPort(u))})
		case strings.HasPrefix(e, "*."):
			if !validHost(e[2:]) || !strings.Contains(e[2:], ".") {
				errs = append(errs, fmt.Errorf("callback host %q: a wildcard is *.domain.tld", e))
				continue
			}
			rules = append(rules, hostRule{host: strings.ToLower(e[1:]), suffix: true})
		default:
			if !validHost(e) {
				errs = append(errs, fmt.Errorf("callback host %q is not a host name (or an origin such as https://host:port)", e))
				continue
			}
			rules = append(rules, hostRule{host: strings.Trim(strings.ToLower(e), "[]")}) // url.Hostname has no brackets
		}
	}
	return rules, errors.Join(errs...)
}

func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	if net.ParseIP(strings.Trim(h, "[]")) != nil {
		return true
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// hostPort is u's host with the scheme's default port made explicit.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "http" {
		return u.Host + ":80"
	}
	return u.Host + ":443"
}

// CheckURL reports whether raw may receive callbacks. The error says why
// not, in words fit for an API caller.
func (c *Callbacks) CheckURL(raw string) error {
	if len(raw) > maxCallbackURL {
		return fmt.Errorf("at most %d characters", maxCallbackURL)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return errors.New("must be an absolute http(s) URL")
	}
	if u.User != nil {
		return errors.New("must not carry credentials (user:password@)")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return errors.New("must be an https URL")
	}
	host := strings.ToLower(u.Hostname())
	for _, r := range c.allow {
		switch {
		case r.scheme != "":
			if u.Scheme == r.scheme && strings.ToLower(hostPort(u)) == r.host {
				return nil
			}
		case u.Scheme != "https":
		case r.suffix:
			if strings.HasSuffix(host, r.host) && len(host) > len(r.host) {
				return nil
			}
		case host == r.host:
			return nil
		}
	}
	if u.Scheme != "https" {
		return fmt.Errorf("must be an https URL (http only for origins listed in api.callback_hosts)")
	}
	return fmt.Errorf("host %q is not in gatebot's callback allow-list (api.callback_hosts)", u.Hostname())
}

// callbackEvent is one queued delivery. Body is fixed at enqueue time so
// every attempt sends the same bytes under the same webhook-id.
type callbackEvent struct {
	ID        string    `json:"id"`
	Gate      string    `json:"gate"`
	Version   int64     `json:"ver"`
	URL       string    `json:"url"`
	Body      string    `json:"body"`
	Attempts  int       `json:"att"`
	First     time.Time `json:"first"`
	LastError string    `json:"lerr,omitempty"`
}

// CallbackPayload is the body of a callback: a Standard Webhooks-style
// envelope around the gate as GET /api/v1/gates/{id} shows it.
type CallbackPayload struct {
	Type      string    `json:"type"` // "gate." + state
	Timestamp time.Time `json:"timestamp"`
	Data      APIGate   `json:"data"`
}

// enqueueScript queues the event of (gate, version) once. Versions can
// arrive out of order (card refreshes and the trigger worker enqueue
// concurrently), so an older version than the last one queued is still
// sent; a newer one is sent only if its state differs from the last one's
// (a version that changes no state, such as a run-status detail, is not a
// state change). KEYS: last, seen, event, due. ARGV: version, state, event
// JSON, due (ms), event id, last TTL (ms), event TTL (ms).
var enqueueScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[2], ARGV[1], '1') == 0 then return 0 end
redis.call('PEXPIRE', KEYS[2], ARGV[6])
local newer = true
local last = redis.call('GET', KEYS[1])
if last then
  local sp = string.find(last, ' ', 1, true)
  if sp then
    local v = tonumber(string.sub(last, 1, sp - 1))
    local ver = tonumber(ARGV[1])
    if v == ver then return 0 end
    if v > ver then
      newer = false
    elseif string.sub(last, sp + 1) == ARGV[2] then
      return 0
    end
  end
end
if newer then redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2], 'PX', ARGV[6]) end
redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[7])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[5])
return 1
`)

// eventID is the webhook-id: stable for one gate version.
func eventID(g *approvals.Gate) string {
	return "evt_" + g.ID + "_v" + strconv.FormatInt(g.Version, 10)
}

// Enqueue queues a callback for g's current state if g has a callback URL,
// g's version was not handled already and it changed the state. Pending (the state a gate is
// created in) is never sent: the caller got it in the create response.
func (c *Callbacks) Enqueue(ctx context.Context, g *approvals.Gate) error {
	if g == nil || g.CallbackURL == "" || g.State == approvals.StatePending {
		return nil
	}
	now := c.opts.Now()
	body, err := json.Marshal(CallbackPayload{Type: "gate." + string(g.State), Timestamp: now.UTC(), Data: renderGate(g, strings.TrimRight(c.opts.BaseURL, "/"))})
	if err != nil {
		return fmt.Errorf("encode callback: %w", err)
	}
	ev := callbackEvent{ID: eventID(g), Gate: g.ID, Version: g.Version, URL: g.CallbackURL, Body: string(body), First: now.UTC()}
	raw, _ := json.Marshal(ev)
	n, err := enqueueScript.Run(ctx, c.rdb, []string{c.lastKey(g.ID), c.seenKey(g.ID), c.eventKey(ev.ID), c.dueKey()},
		g.Version, string(g.State), raw, now.UnixMilli(), ev.ID, lastTTL.Milliseconds(), eventTTL.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("enqueue callback: %w: %w", approvals.ErrUnavailable, err)
	}
	if n == 1 {
		c.log.DebugContext(ctx, "callback queued", "gate_id", g.ID, "event_id", ev.ID, "state", g.State)
	}
	return nil
}

// Watch puts g under the sweep until it is final, so that no state change
// goes unsent whatever happens between the change and its enqueue.
func (c *Callbacks) Watch(ctx context.Context, g *approvals.Gate) error {
	at := c.opts.Now().Add(c.opts.SweepEvery).UnixMilli()
	if err := c.rdb.ZAdd(ctx, c.watchKey(), redis.Z{Score: float64(at), Member: g.ID}).Err(); err != nil {
		return fmt.Errorf("watch gate: %w: %w", approvals.ErrUnavailable, err)
	}
	return nil
}

// claimDue takes up to ARGV[2] members of KEYS[1] due at ARGV[1] and
// pushes them to ARGV[3], so one replica works on each at a time.
var claimDue = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[3], m) end
return due
`)

func (c *Callbacks) claim(ctx context.Context, key string, limit int, lease time.Duration) ([]string, error) {
	now := c.opts.Now()
	ids, err := claimDue.Run(ctx, c.rdb, []string{key}, now.UnixMilli(), limit, now.Add(lease).UnixMilli()).StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	return ids, nil
}

// Run delivers due callbacks and sweeps watched gates until ctx ends.
func (c *Callbacks) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.loop(ctx, c.opts.PollEvery, c.deliverDue) }()
	go func() { defer wg.Done(); c.loop(ctx, min(c.opts.SweepEvery, time.Second), c.sweep) }()
	wg.Wait()
	return nil
}

func (c *Callbacks) loop(ctx context.Context, every time.Duration, step func(context.Context) (bool, error)) {
	for {
		more, err := step(ctx)
		if err != nil && ctx.Err() == nil {
			c.log.WarnContext(ctx, "callback queue unavailable", "err", err)
		}
		if more && err == nil {
			continue
		}
		if !sleep(ctx, every) {
			return
		}
	}
}

// deliverDue sends one batch of due events; more reports a full batch.
// A batch is no larger than what is sent at once, so every claimed event's
// attempt starts at once and ends within Timeout, inside the lease.
func (c *Callbacks) deliverDue(ctx context.Context) (bool, error) {
	ids, err := c.claim(ctx, c.dueKey(), callbackParallel, 2*c.opts.Timeout)
	if err != nil {
		return false, err
	}
	var g errgroup.Group
	g.SetLimit(callbackParallel)
	for _, id := range ids {
		g.Go(func() error { c.deliver(ctx, id); return nil })
	}
	g.Wait()
	return len(ids) == callbackParallel, nil
}

// deliver makes one attempt at one claimed event and reschedules,
// finishes or gives it up.
func (c *Callbacks) deliver(ctx context.Context, id string) {
	log := c.log.With("event_id", id)
	raw, err := c.rdb.Get(ctx, c.eventKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		c.rdb.ZRem(ctx, c.dueKey(), id)
		return
	}
	if err != nil {
		log.WarnContext(ctx, "cannot load callback event; the lease will expire and it is retried", "err", err)
		return
	}
	var ev callbackEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		log.ErrorContext(ctx, "dropping unreadable callback event", "err", err)
		c.giveUp(ctx, id)
		return
	}
	log = log.With("gate_id", ev.Gate, "attempt", ev.Attempts+1, "callback", redactURL(ev.URL))
	if err := c.CheckURL(ev.URL); err != nil {
		log.ErrorContext(ctx, "callback URL no longer allowed; giving the event up", "reason", err.Error())
		c.giveUp(ctx, id)
		return
	}
	status, retryAfter, err := c.send(ctx, ev)
	switch {
	case err == nil && status/100 == 2:
		_, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, c.eventKey(id))
			p.ZRem(ctx, c.dueKey(), id)
			return nil
		})
		if err != nil {
			log.WarnContext(ctx, "callback delivered but not marked done; it will be sent again", "err", err)
		}
		log.InfoContext(ctx, "callback delivered", "status", status)
		return
	case err == nil && status == http.StatusGone:
		log.WarnContext(ctx, "callback receiver answered 410 Gone; giving the event up")
		c.giveUp(ctx, id)
		return
	}
	ev.Attempts++
	if err != nil {
		ev.LastError = err.Error()
	} else {
		ev.LastError = "HTTP " + strconv.Itoa(status)
	}
	if ev.Attempts > len(c.opts.Schedule) {
		log.ErrorContext(ctx, "callback given up after every retry", "last_error", ev.LastError)
		c.giveUp(ctx, id)
		return
	}
	delay := jitter(c.opts.Schedule[ev.Attempts-1])
	if retryAfter > delay {
		delay = min(retryAfter, maxRetryAfterWait)
	}
	log.WarnContext(ctx, "callback failed; will retry", "error", ev.LastError, "retry_in", delay.String())
	enc, _ := json.Marshal(ev)
	next := c.opts.Now().Add(delay).UnixMilli()
	if _, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SetArgs(ctx, c.eventKey(id), enc, redis.SetArgs{KeepTTL: true})
		p.ZAdd(ctx, c.dueKey(), redis.Z{Score: float64(next), Member: id})
		return nil
	}); err != nil {
		log.WarnContext(ctx, "could not reschedule the callback; its lease expiry retries it", "err", err)
	}
}

// giveUp moves id to the dead letters, which keep an event's id only as
// long as the event itself lives (eventTTL).
func (c *Callbacks) giveUp(ctx context.Context, id string) {
	now := c.opts.Now()
	c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, c.dueKey(), id)
		p.ZAdd(ctx, c.deadKey(), redis.Z{Score: float64(now.UnixMilli()), Member: id})
		p.ZRemRangeByScore(ctx, c.deadKey(), "-inf", "("+strconv.FormatInt(now.Add(-eventTTL).UnixMilli(), 10))
		return nil
	})
}

// send POSTs the event, signed, and returns the status and any Retry-After.
func (c *Callbacks) send(ctx context.Context, ev callbackEvent) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ev.URL, strings.NewReader(ev.Body))
	if err != nil {
		return 0, 0, fmt.Errorf("build request: %w", err)
	}
	ts := c.opts.Now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gatebot-callbacks/1")
	req.Header.Set(webhook.HeaderID, ev.ID)
	req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(webhook.HeaderSignature, webhook.Sign(c.secret, ev.ID, ts, []byte(ev.Body)))
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may hold secrets; it is logged redacted apart
		}
		return 0, 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	var ra time.Duration
	if v := resp.Header.Get("Retry-After"); v != "" {
		if secs, err := strconv.Atoi(v); err == nil && secs > 0 {
			ra = time.Duration(secs) * time.Second
		}
	}
	return resp.StatusCode, ra, nil
}

// sweep re-reads one batch of watched gates and queues what changed.
func (c *Callbacks) sweep(ctx context.Context) (bool, error) {
	ids, err := c.claim(ctx, c.watchKey(), callbackBatch, c.opts.SweepEvery)
	if err != nil {
		return false, err
	}
	for _, id := range ids {
		g, err := c.opts.Gates.Get(ctx, id)
		if errors.Is(err, approvals.ErrNotFound) {
			c.rdb.ZRem(ctx, c.watchKey(), id)
			continue
		}
		if err != nil {
			c.log.WarnContext(ctx, "sweep cannot read gate", "gate_id", id, "err", err)
			continue
		}
		if err := c.Enqueue(ctx, g); err != nil {
			c.log.WarnContext(ctx, "sweep cannot queue callback", "gate_id", id, "err", err)
			continue
		}
		if g.State.Final() || g.CallbackURL == "" {
			c.rdb.ZRem(ctx, c.watchKey(), id)
		}
	}
	return len(ids) == callbackBatch, nil
}

// jitter spreads d by ±20 %.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// redactURL keeps scheme, host and path: queries often carry tokens.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable)"
	}
	return u.Scheme + "://" + u.Host + u.Path
}

// enqueueCallback queues the callback of an API gate that changed. A
// failure is only logged: the sweep queues it later.
func (s *Server) enqueueCallback(ctx context.Context, g *approvals.Gate) {
	cb := s.opt.API.Callbacks
	if cb == nil || g == nil || g.CallbackURL == "" {
		return
	}
	if err := cb.Enqueue(ctx, g); err != nil {
		loggerFrom(ctx).Warn("could not queue the gate's callback; the sweep will", "gate_id", g.ID, "err", err)
	}
}
