package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/gatebot/gatebot/standardwebhooks"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/apiclient"
)

// ProviderType is the provider `type` in gatebot's configuration.
const ProviderType = "webhook"

// EventGateApproved is the type of the event sent by Trigger.
const EventGateApproved = "gate.approved"

// EventCancelRequested is the type of the event sent by Cancel.
const EventCancelRequested = "gate.cancel_requested"

// Keys of Run.Ref.
const (
	RefGateID    = "gate_id"
	RefStatusURL = "status_url"
	RefCancelURL = "cancel_url"
)

// Config is a webhook provider section.
//
//	providers:
//	  hook:
//	    type: webhook
//	    url: https://deploy.example.com/hooks/gatebot
//	    secret: ${GATEBOT_WEBHOOK_SECRET}   # whsec_<base64 of 24-64 random bytes>
//	    status_url_allowed: [https://deploy.example.com/runs/]
type Config struct {
	// URL receives the signed gate.approved event.
	URL string `yaml:"url"`
	// Secret is the Standard Webhooks signing secret, whsec_<base64>.
	Secret apiclient.Secret `yaml:"secret"`
	// StatusURLAllowed lists URL prefixes (scheme, host, path prefix) that
	// a receiver's status_url and cancel_url may use. Empty: URL's origin.
	StatusURLAllowed []string `yaml:"status_url_allowed"`
}

// Validate reports every problem with the configuration.
func (c Config) Validate() []error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("url is required"))
	} else if _, err := parseURL(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("url: %w", err))
	}
	if c.Secret == "" {
		errs = append(errs, errors.New("secret is required (whsec_ followed by base64 of 24 to 64 random bytes)"))
	} else if _, err := standardwebhooks.ParseSecret(c.Secret.Reveal()); err != nil {
		errs = append(errs, fmt.Errorf("secret: %w", err))
	}
	for i, p := range c.StatusURLAllowed {
		if _, err := parseURL(p); err != nil {
			errs = append(errs, fmt.Errorf("status_url_allowed[%d]: %w", i, err))
		}
	}
	return errs
}

// parseURL accepts absolute http(s) URLs without user info or fragment,
// whose path has no dot segments.
func parseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return nil, err
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, fmt.Errorf("%q: scheme must be https (or http)", s)
	case u.Host == "":
		return nil, fmt.Errorf("%q: host is missing", s)
	case u.User != nil:
		return nil, fmt.Errorf("%q: must not contain user info", s)
	case u.Fragment != "":
		return nil, fmt.Errorf("%q: must not have a fragment", s)
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return nil, fmt.Errorf("%q: path must not contain . or .. segments", s)
		}
	}
	return u, nil
}

// Option adjusts a Client built by New.
type Option = apiclient.Option

// WithHTTPClient sets the HTTP client (it is copied; set its Timeout).
func WithHTTPClient(hc *http.Client) Option { return apiclient.WithHTTPClient("webhook", hc) }

// WithLogger sets the logger; nil discards.
func WithLogger(l *slog.Logger) Option { return apiclient.WithLogger(l) }

// WithNow replaces the clock (signature timestamps), for tests.
func WithNow(now func() time.Time) Option { return apiclient.WithNow("webhook", now) }

// Client sends signed webhooks. It is safe for concurrent use.
type Client struct {
	cfg     Config
	key     []byte
	target  *url.URL
	allowed []*url.URL
	opts    apiclient.Settings
	log     *slog.Logger
}

var (
	_ pipelines.Provider = (*Client)(nil)
	_ pipelines.Canceler = (*Client)(nil)
)

// New validates cfg and returns a Client.
func New(cfg Config, opts ...Option) (*Client, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("webhook: config: %w", errors.Join(errs...))
	}
	o, err := apiclient.ApplyOptions(opts)
	if err != nil {
		return nil, err
	}
	key, _ := standardwebhooks.ParseSecret(cfg.Secret.Reveal())
	target, _ := parseURL(cfg.URL)
	c := &Client{cfg: cfg, key: key, target: target, opts: o, log: o.Logger.With("provider", ProviderType)}
	if len(cfg.StatusURLAllowed) == 0 {
		c.allowed = []*url.URL{{Scheme: target.Scheme, Host: target.Host, Path: "/"}}
	}
	for _, p := range cfg.StatusURLAllowed {
		u, _ := parseURL(p)
		c.allowed = append(c.allowed, u)
	}
	return c, nil
}

// Event is the JSON body of the gate.approved (and gate.cancel_requested)
// message.
type Event struct {
	Type      string         `json:"type"`
	GateID    string         `json:"gate_id"`
	RunID     string         `json:"run_id,omitempty"`
	Pipeline  string         `json:"pipeline,omitempty"`
	Target    map[string]any `json:"target,omitempty"`
	Inputs    map[string]any `json:"inputs,omitempty"`
	Approvers []string       `json:"approvers,omitempty"`
	Requester string         `json:"requester,omitempty"`
	Message   string         `json:"message,omitempty"`
}

// Answer is what a receiver may return from the trigger (every field
// optional) and from its status_url (status required).
type Answer struct {
	RunID     string `json:"run_id"`
	Status    string `json:"status"`
	URL       string `json:"url"`
	Detail    string `json:"detail"`
	StatusURL string `json:"status_url"`
	CancelURL string `json:"cancel_url"`
}

// MessageID is the webhook-id of a gate's gate.approved event: the same on
// every retry, so receivers deduplicate.
func MessageID(gateID string) string { return "gatebot-" + gateID }

// Trigger POSTs the signed gate.approved event to the configured URL.
func (c *Client) Trigger(ctx context.Context, req pipelines.Request) (pipelines.Run, error) {
	if req.GateID == "" {
		return pipelines.Run{}, errors.New("webhook: trigger run: empty gate id")
	}
	ev := Event{
		Type: EventGateApproved, GateID: req.GateID, Pipeline: req.Pipeline, Target: req.Target,
		Inputs: req.Inputs, Approvers: req.Approvers, Requester: req.Requester, Message: req.Message,
	}
	if ev.Inputs == nil {
		ev.Inputs = map[string]any{}
	}
	ans, err := c.send(ctx, http.MethodPost, c.target, MessageID(req.GateID), ev, "trigger run")
	if err != nil {
		return pipelines.Run{}, err
	}
	run := pipelines.Run{
		ID:     ans.RunID,
		URL:    ans.URL,
		Status: pipelines.StatusQueued,
		Detail: "webhook: accepted",
		Ref:    map[string]string{RefGateID: req.GateID},
	}
	if st := pipelines.Status(ans.Status); st.Valid() {
		run.Status = st
		run.Detail = "webhook: " + ans.Status
	} else if ans.Status != "" {
		run.Detail = "webhook: accepted (" + apiclient.Truncate(ans.Status, 64) + ")"
	}
	if ans.Detail != "" {
		run.Detail = "webhook: " + apiclient.Truncate(ans.Detail, 200)
	}
	for _, f := range [...]struct{ key, raw string }{{RefStatusURL, ans.StatusURL}, {RefCancelURL, ans.CancelURL}} {
		key, raw := f.key, f.raw
		if raw == "" {
			continue
		}
		if _, err := c.checkURL(raw); err != nil {
			// The receiver accepted the event, so the run exists: keep it
			// and say why gatebot will not follow it, rather than failing.
			c.log.WarnContext(ctx, "receiver's URL refused", "gate_id", req.GateID, "field", key, "err", err)
			run.Detail += "; " + key + " refused: not under status_url_allowed"
			continue
		}
		run.Ref[key] = raw
	}
	return run, nil
}

// Status GETs the run's status_url, or, without one, returns run as it is
// (its state then changes only through gatebot's callback endpoint).
func (c *Client) Status(ctx context.Context, run pipelines.Run) (pipelines.Run, error) {
	raw := run.Ref[RefStatusURL]
	if raw == "" {
		return run, nil
	}
	u, err := c.checkURL(raw)
	if err != nil {
		return run, err
	}
	id := MessageID(run.Ref[RefGateID]) + "-status-" + strconv.FormatInt(c.opts.Now().UnixNano(), 36)
	ans, err := c.send(ctx, http.MethodGet, u, id, nil, "run status")
	if err != nil {
		return run, err
	}
	out := run
	st := pipelines.Status(ans.Status)
	switch {
	case st.Valid():
		out.Status = st
		out.Detail = "webhook: " + ans.Status
	case ans.Status == "":
		return run, (&pipelines.APIError{Provider: ProviderType, Op: "run status", StatusCode: http.StatusOK,
			Err: fmt.Errorf("%w: no status", apiclient.ErrMalformedResponse)})
	default: // not one of the five: keep following the run
		out.Status = pipelines.StatusRunning
		out.Detail = "webhook: " + apiclient.Truncate(ans.Status, 64)
	}
	if ans.Detail != "" {
		out.Detail = "webhook: " + apiclient.Truncate(ans.Detail, 200)
	}
	if ans.URL != "" {
		out.URL = ans.URL
	}
	if ans.RunID != "" && out.ID == "" {
		out.ID = ans.RunID
	}
	return out, nil
}

// Cancel POSTs a signed gate.cancel_requested event to the run's
// cancel_url. Runs whose receiver gave none cannot be cancelled from
// gatebot: pipelines.ErrNotSupported.
func (c *Client) Cancel(ctx context.Context, run pipelines.Run) error {
	raw := run.Ref[RefCancelURL]
	if raw == "" {
		return fmt.Errorf("webhook: the receiver gave no cancel_url: %w", pipelines.ErrNotSupported)
	}
	u, err := c.checkURL(raw)
	if err != nil {
		return err
	}
	gate := run.Ref[RefGateID]
	ev := Event{Type: EventCancelRequested, GateID: gate, RunID: run.ID}
	_, err = c.send(ctx, http.MethodPost, u, MessageID(gate)+"-cancel", ev, "cancel run")
	return err
}

// ErrURLNotAllowed reports a receiver-supplied URL outside
// status_url_allowed.
var ErrURLNotAllowed = errors.New("webhook: URL not under status_url_allowed")

func (c *Client) checkURL(raw string) (*url.URL, error) {
	u, err := parseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrURLNotAllowed, err)
	}
	for _, a := range c.allowed {
		if strings.EqualFold(u.Scheme, a.Scheme) && strings.EqualFold(u.Host, a.Host) && underPath(u.Path, a.Path) {
			return u, nil
		}
	}
	return nil, fmt.Errorf("%w: %s://%s%s", ErrURLNotAllowed, u.Scheme, u.Host, u.Path)
}

func underPath(p, prefix string) bool {
	if prefix == "" || prefix == "/" {
		return true
	}
	if p == prefix || p == strings.TrimSuffix(prefix, "/") {
		return true
	}
	return strings.HasPrefix(p, strings.TrimSuffix(prefix, "/")+"/")
}

// send signs and sends one message to u and decodes the receiver's answer.
// A 2xx answer with no body, or one that is not a JSON object, is an
// acceptance without details.
func (c *Client) send(ctx context.Context, method string, u *url.URL, id string, ev any, op string) (Answer, error) {
	api, err := apiclient.New(apiclient.Options{
		Provider:   ProviderType,
		BaseURL:    u.Scheme + "://" + u.Host,
		HTTPClient: c.opts.HTTPClient,
		Logger:     c.opts.Logger,
		Now:        c.opts.Now,
		Secrets:    func() []apiclient.Secret { return []apiclient.Secret{c.cfg.Secret} },
		ParseError: parseError,
	})
	if err != nil {
		return Answer{}, fmt.Errorf("webhook: %w", err)
	}
	var body []byte
	if ev != nil {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(ev); err != nil {
			return Answer{}, fmt.Errorf("webhook: encode event: %w", err)
		}
		body = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	}
	var rd any
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := api.NewRequest(ctx, method, u.RequestURI(), rd)
	if err != nil {
		return Answer{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	standardwebhooks.SetHeaders(req.Header, c.key, id, c.opts.Now(), body)
	resp, err := api.Do(req, op, nil)
	if err != nil {
		return Answer{}, err
	}
	var ans Answer
	trimmed := bytes.TrimSpace(resp.Body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return ans, nil
	}
	if err := json.Unmarshal(trimmed, &ans); err != nil {
		return ans, &pipelines.APIError{Provider: ProviderType, Op: op, StatusCode: resp.StatusCode,
			Err: fmt.Errorf("%w: %w", apiclient.ErrMalformedResponse, err)}
	}
	return ans, nil
}

// parseError reads {"message"} or {"error"} if the receiver sends either.
func parseError(body []byte) (code, message string) {
	var e struct {
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return "", ""
	}
	if e.Message != "" {
		return "", e.Message
	}
	return "", e.Error
}
