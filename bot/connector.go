package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
)

const (
	defaultMaxRetries = 3
	// maxRetryAfter: a longer Retry-After is not waited out in-line; the
	// caller gets the 429 instead.
	maxRetryAfter = time.Minute
	// maxRetryElapsed bounds all attempts of one call.
	maxRetryElapsed = 2 * time.Minute
	// maxErrorBodyBytes and maxResponseBytes cap what is read back.
	maxErrorBodyBytes = 64 << 10
	maxResponseBytes  = 1 << 20
)

// ConnectorConfig configures a Connector.
type ConnectorConfig struct {
	// Tokens supplies the bearer token. nil sends no Authorization header,
	// which only the Emulator and Agents Playground accept (dev mode).
	Tokens TokenSource
	// Trust decides which serviceUrls may be called at all.
	Trust ServiceURLPolicy
	// HTTPClient defaults to a client with a 30 s timeout.
	HTTPClient *http.Client
	// Logger receives refusals, retries and failures; nil discards.
	Logger *slog.Logger
	// MaxRetries is the number of retries after the first attempt for
	// retryable answers (412, 429, 502, 503, 504); 0 means 3, negative
	// means none.
	MaxRetries int
	// Pacing keeps sends and conversation creates per conversation under
	// Teams' documented rate limits by waiting before sending.
	Pacing bool
	// Observer, if set, is told of every call once it has ended (for
	// metrics).
	Observer ConnectorObserver
}

// ConnectorObserver is told of each connector call after its last attempt:
// op is send, reply, update, delete, create or member; outcome is one of
// the Outcome* values; retries counts repeated attempts; throttled says
// whether Teams answered 429 at least once.
type ConnectorObserver interface {
	ConnectorCall(op, outcome string, retries int, throttled bool)
}

// Outcomes a ConnectorObserver receives.
const (
	OutcomeOK          = "ok"
	OutcomeUntrusted   = "untrusted"    // the serviceUrl is not trusted: nothing was sent
	OutcomeThrottled   = "throttled"    // 429 after the retries
	OutcomeClientError = "client_error" // another 4xx (401 token, 403/404 bot removed)
	OutcomeServerError = "server_error" // 5xx after the retries
	OutcomeError       = "error"        // transport, token or decoding failure
)

// Connector is a Bot Connector REST client (v3). It sends the bearer token
// only to serviceUrls its policy trusts. It is safe for concurrent use.
type Connector struct {
	tokens     TokenSource
	trust      ServiceURLPolicy
	client     *http.Client
	logger     *slog.Logger
	maxTries   uint
	pacer      *pacer
	observer   ConnectorObserver
	newBackOff func() backoff.BackOff
}

// NewConnector returns a Connector. A config with no trusted hosts and no
// loopback is refused: it could never send anything.
func NewConnector(cfg ConnectorConfig) (*Connector, error) {
	if len(cfg.Trust.TrustedHosts) == 0 && len(cfg.Trust.LoopbackHTTPHosts) == 0 && !cfg.Trust.AllowLoopback {
		return nil, errors.New("bot: connector needs trusted service hosts")
	}
	c := &Connector{
		tokens:   cfg.Tokens,
		trust:    cfg.Trust,
		client:   cfg.HTTPClient,
		logger:   cfg.Logger,
		observer: cfg.Observer,
		newBackOff: func() backoff.BackOff {
			b := backoff.NewExponentialBackOff()
			b.InitialInterval = 500 * time.Millisecond
			b.MaxInterval = 10 * time.Second
			return b
		},
	}
	if c.client == nil {
		c.client = &http.Client{Timeout: 30 * time.Second}
	}
	c.client = withoutRedirects(c.client)
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.MaxRetries == 0:
		c.maxTries = defaultMaxRetries + 1
	case cfg.MaxRetries < 0:
		c.maxTries = 1
	default:
		c.maxTries = uint(cfg.MaxRetries) + 1
	}
	if cfg.Pacing {
		c.pacer = newPacer()
	}
	return c, nil
}

// resourceResponse is the connector's answer to a send, reply or update.
type resourceResponse struct {
	ID string `json:"id"`
}

// SendToConversation posts an activity to a conversation (for a channel
// thread, the "…;messageid=…" id) and returns the new activity id, "" when
// the connector did not return one (202 or empty body, or a text+attachment
// message Teams split).
func (c *Connector) SendToConversation(ctx context.Context, serviceURL, conversationID string, act *Activity) (string, error) {
	out := prepareActivity(act, conversationID)
	var rr resourceResponse
	err := c.do(ctx, call{op: "send", method: http.MethodPost, serviceURL: serviceURL,
		path: []string{conversationID, "activities"}, in: out, out: &rr, lenient: true, pace: "conv|" + conversationID})
	return rr.ID, err
}

// ReplyToActivity posts an activity as a reply to activityID and returns
// the new activity id ("" as for SendToConversation).
func (c *Connector) ReplyToActivity(ctx context.Context, serviceURL, conversationID, activityID string, act *Activity) (string, error) {
	out := prepareActivity(act, conversationID)
	if out.ReplyToID == "" {
		out.ReplyToID = activityID
	}
	var rr resourceResponse
	err := c.do(ctx, call{op: "reply", method: http.MethodPost, serviceURL: serviceURL,
		path: []string{conversationID, "activities", activityID}, in: out, out: &rr, lenient: true, pace: "conv|" + conversationID})
	return rr.ID, err
}

// UpdateActivity replaces a sent activity (PUT), for example a card.
func (c *Connector) UpdateActivity(ctx context.Context, serviceURL, conversationID, activityID string, act *Activity) error {
	out := prepareActivity(act, conversationID)
	if out.ID == "" {
		out.ID = activityID
	}
	return c.do(ctx, call{op: "update", method: http.MethodPut, serviceURL: serviceURL,
		path: []string{conversationID, "activities", activityID}, in: out, out: &resourceResponse{}, lenient: true})
}

// DeleteActivity deletes a sent activity.
func (c *Connector) DeleteActivity(ctx context.Context, serviceURL, conversationID, activityID string) error {
	return c.do(ctx, call{op: "delete", method: http.MethodDelete, serviceURL: serviceURL,
		path: []string{conversationID, "activities", activityID}})
}

// ConversationParameters creates a conversation: a new thread in a Teams
// channel (IsGroup, ChannelData {"channel":{"id":…}}, Activity) or a 1:1
// chat (Members with the user, TenantID).
type ConversationParameters struct {
	IsGroup     bool
	Bot         ChannelAccount
	Members     []ChannelAccount
	TopicName   string
	TenantID    string
	Activity    *Activity
	ChannelData any
}

// MarshalJSON writes the connector's ConversationParameters shape without
// empty fields.
func (p ConversationParameters) MarshalJSON() ([]byte, error) {
	w := struct {
		IsGroup     bool             `json:"isGroup"`
		Bot         *ChannelAccount  `json:"bot,omitempty"`
		Members     []ChannelAccount `json:"members,omitempty"`
		TopicName   string           `json:"topicName,omitempty"`
		TenantID    string           `json:"tenantId,omitempty"`
		Activity    *Activity        `json:"activity,omitempty"`
		ChannelData any              `json:"channelData,omitempty"`
	}{IsGroup: p.IsGroup, Members: p.Members, TopicName: p.TopicName, TenantID: p.TenantID, Activity: p.Activity, ChannelData: p.ChannelData}
	if p.Bot != (ChannelAccount{}) {
		w.Bot = &p.Bot
	}
	return json.Marshal(w)
}

// ConversationResourceResponse is the answer to CreateConversation. For a
// new channel thread, ActivityID is the root message; post follow-ups to
// ID + ";messageid=" + ActivityID to stay in the thread.
type ConversationResourceResponse struct {
	ID         string `json:"id"`
	ActivityID string `json:"activityId,omitempty"`
	ServiceURL string `json:"serviceUrl,omitempty"`
}

// CreateConversation creates a conversation (POST /v3/conversations).
func (c *Connector) CreateConversation(ctx context.Context, serviceURL string, p ConversationParameters) (ConversationResourceResponse, error) {
	if p.Activity != nil {
		a := prepareActivity(p.Activity, "")
		p.Activity = &a
	}
	var out ConversationResourceResponse
	err := c.do(ctx, call{op: "create", method: http.MethodPost, serviceURL: serviceURL,
		in: p, out: &out, pace: createPaceKey(p)})
	if err == nil && out.ID == "" {
		err = errors.New("bot: create conversation: connector returned no conversation id")
	}
	return out, err
}

// createPaceKey paces creates per target: the channel for a new thread,
// the user for a 1:1 chat.
func createPaceKey(p ConversationParameters) string {
	if p.ChannelData != nil {
		if b, err := json.Marshal(p.ChannelData); err == nil {
			var cd TeamsChannelData
			if json.Unmarshal(b, &cd) == nil && cd.Channel.ID != "" {
				return "conv|" + cd.Channel.ID
			}
		}
	}
	if len(p.Members) > 0 {
		return "member|" + p.Members[0].ID
	}
	return "create"
}

// Member is a conversation member as Teams returns it.
type Member struct {
	ID                string `json:"id"`
	Name              string `json:"name,omitempty"`
	AADObjectID       string `json:"aadObjectId,omitempty"`
	UserPrincipalName string `json:"userPrincipalName,omitempty"`
	Email             string `json:"email,omitempty"`
	TenantID          string `json:"tenantId,omitempty"`
}

// GetMember returns one member of a conversation
// (GET /v3/conversations/{id}/members/{userId}).
func (c *Connector) GetMember(ctx context.Context, serviceURL, conversationID, userID string) (Member, error) {
	var m Member
	err := c.do(ctx, call{op: "get member", method: http.MethodGet, serviceURL: serviceURL,
		path: []string{conversationID, "members", userID}, out: &m})
	if err == nil && m.ID == "" {
		err = errors.New("bot: get member: connector returned no member id")
	}
	return m, err
}

// prepareActivity copies act so the caller's value is never modified, and
// fills what the connector requires.
func prepareActivity(act *Activity, conversationID string) Activity {
	var out Activity
	if act != nil {
		out = *act
	}
	if out.Type == "" {
		out.Type = TypeMessage
	}
	if out.Conversation.ID == "" && conversationID != "" {
		out.Conversation.ID = conversationID
	}
	return out
}

type call struct {
	op         string
	method     string
	serviceURL string
	path       []string // segments after /v3/conversations, escaped one by one
	in         any      // JSON body, nil for none
	out        any      // decoded 2xx body, nil to discard
	// lenient: an undecodable 2xx body is logged, not an error; the
	// activity was delivered and the caller must not resend it.
	lenient bool
	pace    string // pacing key; "" = not paced
	// noWait: one attempt, and pacing or a 429 ends it with *PacedError
	// instead of waiting.
	noWait bool
}

// retryAfterError carries the connector error and the delay Retry-After
// asked for, so the last error is still the APIError when retries run out.
type retryAfterError struct {
	err   error
	after *backoff.RetryAfterError
}

func (e *retryAfterError) Error() string   { return e.err.Error() }
func (e *retryAfterError) Unwrap() []error { return []error{e.err, e.after} }

func (c *Connector) do(ctx context.Context, cl call) (err error) {
	var (
		retries   int
		throttled bool
	)
	if c.observer != nil {
		defer func() {
			if o := callOutcome(err); o != "" {
				c.observer.ConnectorCall(cl.op, o, retries, throttled)
			}
		}()
	}
	// "op" is passed with each record rather than through Logger.With,
	// which formats the attribute on every call even when nothing is
	// logged (2 % of a chat turn's CPU in the echo profile).
	logger := c.logger
	if err := c.trust.Check(cl.serviceURL); err != nil {
		logger.Warn("bot: refusing to call untrusted serviceUrl", "op", cl.op, "service_url", redactServiceURL(cl.serviceURL), "err", err)
		return fmt.Errorf("bot: %s: %w", cl.op, err)
	}
	var b strings.Builder
	b.WriteString(strings.TrimRight(cl.serviceURL, "/"))
	b.WriteString("/v3/conversations")
	for _, seg := range cl.path {
		if seg == "" {
			return fmt.Errorf("bot: %s: empty id in request path", cl.op)
		}
		b.WriteByte('/')
		b.WriteString(url.PathEscape(seg))
	}
	target := b.String()
	body, err := requestBody(cl.in)
	if err != nil {
		return fmt.Errorf("bot: %s: marshal request: %w", cl.op, err)
	}
	idempotent := cl.method != http.MethodPost

	attempt := func() (struct{}, error) {
		if c.pacer != nil && cl.pace != "" && cl.noWait {
			if d := c.pacer.tryReserve(cl.pace, c.pacer.now()); d > 0 {
				return struct{}{}, backoff.Permanent(&PacedError{Wait: d})
			}
		} else if c.pacer != nil && cl.pace != "" {
			if err := c.pacer.wait(ctx, cl.pace); err != nil {
				return struct{}{}, backoff.Permanent(err)
			}
		}
		req, err := http.NewRequestWithContext(ctx, cl.method, target, bytes.NewReader(body))
		if err != nil {
			return struct{}{}, backoff.Permanent(err)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json; charset=utf-8")
		}
		req.Header.Set("Accept", "application/json")
		if c.tokens != nil {
			tok, err := c.tokens.Token(ctx)
			if err == nil && tok == "" {
				err = errors.New("empty token")
			}
			if err != nil {
				return struct{}{}, backoff.Permanent(fmt.Errorf("outbound token: %w", err))
			}
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := c.client.Do(req)
		if err != nil {
			if ctx.Err() != nil || !idempotent {
				// A POST may have been delivered; resending could
				// duplicate the message.
				return struct{}{}, backoff.Permanent(err)
			}
			return struct{}{}, err
		}
		defer resp.Body.Close()
		corr := resp.Header.Get("X-Correlating-OperationId")
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return struct{}{}, backoff.Permanent(c.decodeSuccess(logger, resp, cl, corr))
		}
		apiErr := readAPIError(resp, corr)
		switch resp.StatusCode {
		case http.StatusPreconditionFailed:
			return struct{}{}, apiErr
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			if !idempotent {
				// The gateway may have delivered the POST before failing;
				// resending could post a second approval card.
				return struct{}{}, backoff.Permanent(apiErr)
			}
			return struct{}{}, apiErr
		case http.StatusTooManyRequests:
			throttled = true
			d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
			if c.pacer != nil && cl.pace != "" {
				wait := d
				if !ok {
					wait = time.Second
				}
				c.pacer.block(cl.pace, c.pacer.now().Add(min(wait, maxRetryAfter)))
				if cl.noWait {
					return struct{}{}, backoff.Permanent(&PacedError{Wait: min(wait, maxRetryAfter), Err: apiErr})
				}
			}
			switch {
			case !ok:
				return struct{}{}, apiErr
			case d > maxRetryAfter:
				return struct{}{}, backoff.Permanent(apiErr)
			}
			return struct{}{}, &retryAfterError{err: apiErr, after: &backoff.RetryAfterError{Duration: d}}
		}
		return struct{}{}, backoff.Permanent(apiErr)
	}

	tries := c.maxTries
	if cl.noWait {
		tries = 1
	}
	_, err = backoff.Retry(ctx, attempt,
		backoff.WithBackOff(c.newBackOff()),
		backoff.WithMaxTries(tries),
		backoff.WithMaxElapsedTime(maxRetryElapsed),
		backoff.WithNotify(func(err error, next time.Duration) {
			retries++
			logger.Warn("bot: connector call failed, retrying", "op", cl.op, "err", err, "retry_in", next)
		}),
	)
	if err == nil {
		return nil
	}
	var paced *PacedError
	if errors.As(err, &paced) && paced.Err == nil {
		return err // gatebot's own pacing: not a failure, the caller retries later
	}
	var ra *retryAfterError
	if errors.As(err, &ra) {
		err = ra.err
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		logger.Warn("bot: connector call failed", "op", cl.op, "status", apiErr.StatusCode, "code", apiErr.Code, "correlation_id", apiErr.CorrelationID)
	} else {
		logger.Warn("bot: connector call failed", "op", cl.op, "err", err)
	}
	return fmt.Errorf("bot: %s: %w", cl.op, err)
}

// requestBody encodes a request body; nil stays nil. An Activity is
// encoded by its own MarshalJSON: through json.Marshal, encoding/json
// would validate and compact the whole (already compact, already
// HTML-escaped) output once more, which was a tenth of a reply's CPU.
// The bytes are the same either way (TestRequestBodySameBytes).
func requestBody(in any) ([]byte, error) {
	switch v := in.(type) {
	case nil:
		return nil, nil
	case Activity:
		return v.MarshalJSON()
	}
	return json.Marshal(in)
}

// callOutcome classifies a finished call for a ConnectorObserver; "" is a
// call that was not made.
func callOutcome(err error) string {
	var (
		apiErr *APIError
		paced  *PacedError
	)
	switch {
	case err == nil:
		return OutcomeOK
	case errors.As(err, &paced) && paced.Err == nil:
		return "" // gatebot's own pacing held the call: nothing was sent
	case errors.Is(err, ErrUntrustedServiceURL):
		return OutcomeUntrusted
	case !errors.As(err, &apiErr):
		return OutcomeError
	case apiErr.StatusCode == http.StatusTooManyRequests:
		return OutcomeThrottled
	case apiErr.StatusCode >= 500:
		return OutcomeServerError
	case apiErr.StatusCode >= 400:
		return OutcomeClientError
	}
	return OutcomeError
}

func (c *Connector) decodeSuccess(logger *slog.Logger, resp *http.Response, cl call, corr string) error {
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		if cl.lenient {
			logger.Warn("bot: reading connector response failed", "op", cl.op, "err", err, "correlation_id", corr)
			return nil
		}
		return fmt.Errorf("read response: %w", err)
	}
	if cl.out == nil || len(bytes.TrimSpace(data)) == 0 {
		if !cl.lenient && cl.out != nil {
			return fmt.Errorf("connector returned %d with an empty body", resp.StatusCode)
		}
		return nil
	}
	if err := json.Unmarshal(data, cl.out); err != nil {
		if cl.lenient {
			logger.Warn("bot: undecodable connector response", "op", cl.op, "status", resp.StatusCode, "correlation_id", corr)
			return nil
		}
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}

// withoutRedirects returns a copy of c that does not follow redirects. A
// redirect would carry the bearer token (or a client secret) to a host the
// trust policy never saw: Go forwards Authorization to subdomains, and
// parts of trafficmanager.net are customer-registrable.
func withoutRedirects(c *http.Client) *http.Client {
	cp := *c
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}

// readAPIError decodes an ErrorResponse body ({"error":{"code","message"}}).
func readAPIError(resp *http.Response, corr string) *APIError {
	e := &APIError{StatusCode: resp.StatusCode, CorrelationID: corr}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyBytes))
	var er struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &er) == nil {
		e.Code, e.Message = er.Error.Code, firstLine(er.Error.Message)
	}
	return e
}

// parseRetryAfter reads delta-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// redactServiceURL keeps a refused URL loggable without echoing arbitrary
// attacker input at length.
func redactServiceURL(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
