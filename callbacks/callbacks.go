// Package callbacks delivers a gate's state changes to the callback_url
// its API caller gave, signed per Standard Webhooks 1.0 with the
// configured secret.
//
// Delivery is at least once from the store's outbox: approvals writes an
// event (once per state change, with the gate as it was) in the same
// transaction as the change, every replica claims due events for a lease
// while it sends them, and a failed attempt is rescheduled with growing
// delays until the receiver answers 2xx. Events of one gate are not
// ordered: receivers order by data.version. At most PerHost attempts go to
// one host at once, so a slow receiver delays only its own events.
//
// It must not import handlers, bot or cards.
package callbacks

import (
	"bytes"
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

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/standardwebhooks"
)

// Outbox is the part of the approvals store the deliverer works on.
// *approvals.Store implements it.
type Outbox interface {
	ClaimCallbacks(ctx context.Context, limit int, lease time.Duration) ([]approvals.CallbackEvent, error)
	CallbackDelivered(ctx context.Context, id string) error
	RetryCallback(ctx context.Context, ev approvals.CallbackEvent, at time.Time) error
	GiveUpCallback(ctx context.Context, id string) error
}

// Deliverer sends queued callbacks. Create it with New, run it with Run.
type Deliverer struct {
	opts   Options
	log    *slog.Logger
	secret []byte
	allow  []hostRule
	hc     *http.Client

	slots chan struct{} // attempts in flight
	mu    sync.Mutex
	hosts map[string]int // attempts in flight per host
	wg    sync.WaitGroup
}

// Options configure a Deliverer.
type Options struct {
	Outbox Outbox // required
	// Secret is the whsec_… signing secret. Required.
	Secret string
	// Hosts is the allow-list of callback destinations: a host name
	// ("ci.example.com", https on any port), a wildcard ("*.example.com",
	// https, any subdomain), or an origin ("http://10.0.0.5:8080") allowing
	// exactly that scheme, host and port.
	Hosts []string
	// Render is the gate as the callback body's "data" shows it (the
	// API's gate representation). Required.
	Render func(g *approvals.Gate) any
	// HTTPClient sends callbacks; it is copied and never follows redirects.
	// Default: a client with Timeout.
	HTTPClient *http.Client
	// Schedule is the delay before each retry; after the last one the event
	// is given up. Default: 5s, 5m, 30m, 2h, 5h, 10h, 10h (Standard
	// Webhooks' suggestion), each ±20 %.
	Schedule []time.Duration
	// PollEvery is how often due events are looked for, default 250 ms.
	PollEvery time.Duration
	// Timeout bounds one delivery attempt, default 15 s. An attempt's claim
	// lasts twice as long: a replica that dies mid-attempt delays the event
	// by that much.
	Timeout time.Duration
	// Parallel bounds attempts in flight, default 16; PerHost bounds them
	// per destination host, default 4.
	Parallel, PerHost int
	Logger            *slog.Logger
	Now               func() time.Time
}

// Tuning.
const (
	defaultTimeout    = 15 * time.Second
	maxRetryAfterWait = time.Hour
	maxCallbackURL    = 2048
)

var defaultSchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// New validates o and returns a Deliverer.
func New(o Options) (*Deliverer, error) {
	var errs []error
	if o.Outbox == nil {
		errs = append(errs, errors.New("callbacks: Outbox is required"))
	}
	if o.Render == nil {
		errs = append(errs, errors.New("callbacks: Render is required"))
	}
	secret, err := standardwebhooks.ParseSecret(o.Secret)
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
	if len(o.Schedule) == 0 {
		o.Schedule = defaultSchedule
	}
	if o.PollEvery <= 0 {
		o.PollEvery = 250 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	if o.Parallel <= 0 {
		o.Parallel = 16
	}
	if o.PerHost <= 0 {
		o.PerHost = 4
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
	return &Deliverer{opts: o, log: log.With("component", "callbacks"), secret: secret, allow: rules, hc: hc,
		slots: make(chan struct{}, o.Parallel), hosts: map[string]int{}}, nil
}

// ValidateHosts checks allow-list entries as New does, for config checks.
func ValidateHosts(hosts []string) error {
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
func (c *Deliverer) CheckURL(raw string) error {
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

// Payload is the body of a callback: a Standard Webhooks-style envelope
// around the gate as the API shows it.
type Payload struct {
	Type      string    `json:"type"` // "gate." + state
	Timestamp time.Time `json:"timestamp"`
	Data      any       `json:"data"`
}

// body renders ev. It depends only on the event (the gate as it was and
// when it changed), so every attempt sends the same bytes.
func (c *Deliverer) body(ev approvals.CallbackEvent) ([]byte, error) {
	b, err := json.Marshal(Payload{Type: "gate." + string(ev.Gate.State), Timestamp: ev.Gate.UpdatedAt.UTC(), Data: c.opts.Render(ev.Gate)})
	if err != nil {
		return nil, fmt.Errorf("encode callback: %w", err)
	}
	return b, nil
}

// Run delivers due callbacks until ctx ends, then waits for attempts in
// flight.
func (c *Deliverer) Run(ctx context.Context) error {
	for sleep(ctx, c.opts.PollEvery) {
		for ctx.Err() == nil {
			n := cap(c.slots) - len(c.slots)
			if n == 0 {
				break
			}
			evs, err := c.opts.Outbox.ClaimCallbacks(ctx, n, 2*c.opts.Timeout)
			if err != nil {
				c.log.WarnContext(ctx, "callback queue unavailable", "err", err)
				break
			}
			for _, ev := range evs {
				host := hostOf(ev.URL)
				if !c.takeHost(host) {
					// That receiver is busy with its own events: come back
					// to this one shortly, without holding a slot.
					c.opts.Outbox.RetryCallback(ctx, ev, c.opts.Now().Add(c.opts.PollEvery))
					continue
				}
				c.slots <- struct{}{}
				c.wg.Add(1)
				go func() {
					defer c.wg.Done()
					defer func() { <-c.slots; c.releaseHost(host) }()
					c.deliver(context.WithoutCancel(ctx), ev)
				}()
			}
			if len(evs) < n {
				break
			}
		}
	}
	c.wg.Wait()
	return nil
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Host)
}

func (c *Deliverer) takeHost(h string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hosts[h] >= c.opts.PerHost {
		return false
	}
	c.hosts[h]++
	return true
}

func (c *Deliverer) releaseHost(h string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hosts[h]--; c.hosts[h] <= 0 {
		delete(c.hosts, h)
	}
}

// deliver makes one attempt at one claimed event and reschedules,
// finishes or gives it up.
func (c *Deliverer) deliver(ctx context.Context, ev approvals.CallbackEvent) {
	log := c.log.With("event_id", ev.ID, "gate_id", ev.GateID, "attempt", ev.Attempts+1, "callback", redactURL(ev.URL))
	if err := c.CheckURL(ev.URL); err != nil {
		log.ErrorContext(ctx, "callback URL no longer allowed; giving the event up", "reason", err.Error())
		c.giveUp(ctx, ev.ID)
		return
	}
	body, err := c.body(ev)
	if err != nil {
		log.ErrorContext(ctx, "cannot render the callback; giving the event up", "err", err)
		c.giveUp(ctx, ev.ID)
		return
	}
	status, retryAfter, err := c.send(ctx, ev.ID, ev.URL, body)
	switch {
	case err == nil && status/100 == 2:
		if err := c.opts.Outbox.CallbackDelivered(ctx, ev.ID); err != nil {
			log.WarnContext(ctx, "callback delivered but not marked done; it will be sent again", "err", err)
		}
		log.InfoContext(ctx, "callback delivered", "status", status)
		return
	case err == nil && status == http.StatusGone:
		log.WarnContext(ctx, "callback receiver answered 410 Gone; giving the event up")
		c.giveUp(ctx, ev.ID)
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
		c.giveUp(ctx, ev.ID)
		return
	}
	delay := jitter(c.opts.Schedule[ev.Attempts-1])
	if retryAfter > delay {
		delay = min(retryAfter, maxRetryAfterWait)
	}
	log.WarnContext(ctx, "callback failed; will retry", "error", ev.LastError, "retry_in", delay.String())
	if err := c.opts.Outbox.RetryCallback(ctx, ev, c.opts.Now().Add(delay)); err != nil {
		log.WarnContext(ctx, "could not reschedule the callback; its lease expiry retries it", "err", err)
	}
}

func (c *Deliverer) giveUp(ctx context.Context, id string) {
	if err := c.opts.Outbox.GiveUpCallback(ctx, id); err != nil {
		c.log.WarnContext(ctx, "could not give a callback up; it will be tried again", "event_id", id, "err", err)
	}
}

// send POSTs the event, signed, and returns the status and any Retry-After.
func (c *Deliverer) send(ctx context.Context, id, target string, body []byte) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gatebot-callbacks/1")
	standardwebhooks.SetHeaders(req.Header, c.secret, id, c.opts.Now(), body)
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
	return resp.StatusCode, c.retryAfter(resp.Header.Get("Retry-After")), nil
}

// retryAfter reads a Retry-After value, delay-seconds or an HTTP-date
// (RFC 9110 allows both); 0 when absent, unreadable or past.
func (c *Deliverer) retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(secs, 0)) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(c.opts.Now()), 0)
	}
	return 0
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

// sleep waits d or until ctx ends; it reports whether to go on.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
