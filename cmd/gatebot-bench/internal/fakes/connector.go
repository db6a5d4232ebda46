package fakes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Op is the kind of a Connector call.
type Op string

// Connector operations (botframework-protocol.md §3).
const (
	OpPost   Op = "post"   // POST /v3/conversations/{id}/activities
	OpReply  Op = "reply"  // POST /v3/conversations/{id}/activities/{activityId}
	OpUpdate Op = "update" // PUT /v3/conversations/{id}/activities/{activityId}
	OpCreate Op = "create" // POST /v3/conversations (new channel thread)
	OpMember Op = "member" // GET /v3/conversations/{id}/members/{userId}
)

// Window is one of Teams' per-conversation limits: at most Max sends in
// any Period.
type Window struct {
	Period time.Duration
	Max    int
}

// TeamsLimits are Teams' per bot, per thread limits for sending
// (botframework-protocol.md §4, TD bots/how-to/rate-limit.md).
var TeamsLimits = []Window{{time.Second, 7}, {2 * time.Second, 8}, {30 * time.Second, 60}, {time.Hour, 1800}}

// Mode is how the Connector answers one conversation.
type Mode int

// Modes for SetMode.
const (
	// ModeOK serves the conversation normally.
	ModeOK Mode = iota
	// ModeRefuse answers 403 BotNotInConversationRoster (not retryable).
	ModeRefuse
	// ModeDown answers 503 (retryable), as a Connector outage does.
	ModeDown
	// ModeThrottle answers every send 429 with Retry-After
	// ThrottleRetryAfter, as a conversation throttled for long does.
	ModeThrottle
	// ModeBadGateway answers 502, as a failing proxy in front of the
	// Connector does.
	ModeBadGateway
	// ModeUnreachable closes the connection without an answer, as an
	// unreachable or crashing Connector does to the caller.
	ModeUnreachable
)

// ThrottleRetryAfter is the Retry-After, in seconds, of ModeThrottle.
const ThrottleRetryAfter = 2

// TokenChecker validates the bot's bearer token.
type TokenChecker interface {
	CheckBotToken(authorization string) error
}

// Member is a conversation member as GET …/members/{id} returns it.
type Member struct {
	ID                string `json:"id"`
	Name              string `json:"name,omitempty"`
	AADObjectID       string `json:"aadObjectId,omitempty"`
	UserPrincipalName string `json:"userPrincipalName,omitempty"`
	TenantID          string `json:"tenantId,omitempty"`
}

// ConnectorConfig configures the fake Connector.
type ConnectorConfig struct {
	// Tokens checks every call's Authorization header; nil accepts calls
	// without a token (auth-off rigs).
	Tokens TokenChecker
	// Limits are the per-conversation windows; nil means TeamsLimits.
	Limits []Window
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Call is one recorded Connector request.
type Call struct {
	Conversation string    `json:"conversation"`
	Op           Op        `json:"op"`
	ActivityID   string    `json:"activity_id,omitempty"` // assigned (post, reply, create) or updated
	ReplyToID    string    `json:"reply_to_id,omitempty"`
	At           time.Time `json:"at"`
	Status       int       `json:"status"`
	BodyHash     string    `json:"body_hash,omitempty"`
	// Identical is set on an update whose card equals the previous
	// accepted card of that activity: a send Teams shows no change for.
	Identical bool   `json:"identical,omitempty"`
	Body      []byte `json:"-"`
	// Gate is the gate id the body names, if any.
	Gate string `json:"gate,omitempty"`
}

// OK reports whether the Connector accepted the call.
func (c Call) OK() bool { return c.Status >= 200 && c.Status < 300 }

type conversation struct {
	mu       sync.Mutex
	calls    []Call
	sends    []time.Time // accepted sends within the longest window
	lastCard map[string]string
	mode     Mode
	changed  chan struct{} // closed and replaced on every call
}

// Connector is the fake Bot Connector. It is safe for concurrent use.
type Connector struct {
	cfg     ConnectorConfig
	nextID  atomic.Int64
	unauth  atomic.Int64
	members sync.Map // user id → Member

	mu    sync.Mutex
	convs map[string]*conversation
}

// NewConnector returns a Connector.
func NewConnector(cfg ConnectorConfig) *Connector {
	if cfg.Limits == nil {
		cfg.Limits = TeamsLimits
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Connector{cfg: cfg, convs: map[string]*conversation{}}
}

// AddMember makes GET …/members/{m.ID} answer m in every conversation.
func (c *Connector) AddMember(m Member) { c.members.Store(m.ID, m) }

// SetMode sets how conversation id is answered from now on.
func (c *Connector) SetMode(id string, m Mode) {
	cv := c.conv(id)
	cv.mu.Lock()
	cv.mode = m
	cv.mu.Unlock()
}

func (c *Connector) conv(id string) *conversation {
	c.mu.Lock()
	defer c.mu.Unlock()
	cv := c.convs[id]
	if cv == nil {
		cv = &conversation{lastCard: map[string]string{}, changed: make(chan struct{})}
		c.convs[id] = cv
	}
	return cv
}

// ServeHTTP serves the /v3/conversations API (mount it under the
// serviceUrl's path with http.StripPrefix).
func (c *Connector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c.cfg.Tokens != nil {
		if err := c.cfg.Tokens.CheckBotToken(r.Header.Get("Authorization")); err != nil {
			c.unauth.Add(1)
			connectorError(w, http.StatusUnauthorized, "BotNotRegistered", "Authorization has been denied for this request.")
			return
		}
	}
	seg, ok := splitPath(r.URL.EscapedPath())
	if !ok {
		connectorError(w, http.StatusNotFound, "NotFound", "no such API")
		return
	}
	switch {
	case r.Method == http.MethodPost && len(seg) == 0:
		c.send(w, r, OpCreate, "", "")
	case r.Method == http.MethodPost && len(seg) == 2 && seg[1] == "activities":
		c.send(w, r, OpPost, seg[0], "")
	case r.Method == http.MethodPost && len(seg) == 3 && seg[1] == "activities":
		c.send(w, r, OpReply, seg[0], seg[2])
	case r.Method == http.MethodPut && len(seg) == 3 && seg[1] == "activities":
		c.send(w, r, OpUpdate, seg[0], seg[2])
	case r.Method == http.MethodGet && len(seg) == 3 && seg[1] == "members":
		c.member(w, seg[0], seg[2])
	default:
		connectorError(w, http.StatusMethodNotAllowed, "BadArgument", "unsupported operation")
	}
}

// splitPath returns the unescaped segments after /v3/conversations.
func splitPath(p string) ([]string, bool) {
	rest, ok := strings.CutPrefix(p, "/v3/conversations")
	if !ok {
		return nil, false
	}
	rest = strings.Trim(rest, "/")
	if rest == "" {
		return nil, true
	}
	var out []string
	for _, s := range strings.Split(rest, "/") {
		u, err := url.PathUnescape(s)
		if err != nil || u == "" {
			return nil, false
		}
		out = append(out, u)
	}
	return out, true
}

type inActivity struct {
	Type        string          `json:"type"`
	Text        string          `json:"text"`
	ReplyToID   string          `json:"replyToId"`
	Attachments json.RawMessage `json:"attachments"`
}

type inCreate struct {
	IsGroup     bool        `json:"isGroup"`
	TenantID    string      `json:"tenantId"`
	Activity    *inActivity `json:"activity"`
	ChannelData struct {
		Channel struct {
			ID string `json:"id"`
		} `json:"channel"`
	} `json:"channelData"`
}

// send handles the activity operations: decode, mode, pacing, record.
func (c *Connector) send(w http.ResponseWriter, r *http.Request, op Op, convID, activityID string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		connectorError(w, http.StatusBadRequest, "BadArgument", "unreadable body")
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		connectorError(w, http.StatusUnsupportedMediaType, "BadArgument", "Content-Type must be application/json")
		return
	}
	var act inActivity
	if op == OpCreate {
		var p inCreate
		if json.Unmarshal(body, &p) != nil || p.ChannelData.Channel.ID == "" || p.Activity == nil {
			connectorError(w, http.StatusBadRequest, "BadArgument", "create needs channelData.channel.id and an activity")
			return
		}
		convID, act = p.ChannelData.Channel.ID, *p.Activity
	} else if json.Unmarshal(body, &act) != nil || act.Type != "message" {
		connectorError(w, http.StatusBadRequest, "BadArgument", "body must be a message activity")
		return
	}
	if len(body) > 100<<10 {
		connectorError(w, http.StatusRequestEntityTooLarge, "MessageSizeTooBig", "Message size too big")
		return
	}
	sum := sha256.Sum256(append(append([]byte(act.Text), 0), act.Attachments...))
	call := Call{Conversation: convID, Op: op, ActivityID: activityID, ReplyToID: act.ReplyToID,
		BodyHash: hex.EncodeToString(sum[:8]), Body: body}
	cv := c.conv(convID)
	cv.mu.Lock()
	now := c.cfg.Now()
	call.At = now
	status, retryAfter := http.StatusOK, 0
	switch cv.mode {
	case ModeRefuse:
		status = http.StatusForbidden
	case ModeDown:
		status = http.StatusServiceUnavailable
	case ModeThrottle:
		status, retryAfter = http.StatusTooManyRequests, ThrottleRetryAfter
	case ModeBadGateway:
		status = http.StatusBadGateway
	case ModeUnreachable:
		status = 0 // recorded as no answer
	default:
		if retryAfter = c.admit(cv, now); retryAfter > 0 {
			status = http.StatusTooManyRequests
		}
	}
	call.Status = status
	if status == http.StatusOK {
		if op != OpUpdate {
			call.ActivityID = fmt.Sprintf("1%012d", c.nextID.Add(1))
		} else if prev, ok := cv.lastCard[activityID]; ok && prev == call.BodyHash {
			call.Identical = true
		}
		cv.lastCard[call.ActivityID] = call.BodyHash
	}
	cv.calls = append(cv.calls, call)
	close(cv.changed)
	cv.changed = make(chan struct{})
	cv.mu.Unlock()

	switch status {
	case 0:
		closeWithoutAnswer(w)
	case http.StatusBadGateway:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
	case http.StatusForbidden:
		connectorError(w, status, "BotNotInConversationRoster", "The bot is not part of the conversation roster.")
	case http.StatusServiceUnavailable:
		connectorError(w, status, "ServiceUnavailable", "The service is unavailable.")
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", fmt.Sprint(retryAfter))
		connectorError(w, status, "Throttled", "Too many requests for this conversation.")
	default:
		w.Header().Set("X-Correlating-OperationId", call.ActivityID)
		if op == OpCreate {
			// Teams answers a new channel thread with the thread's id: the
			// channel id plus ";messageid=" and the root message's id.
			writeJSON(w, http.StatusCreated, map[string]string{"id": convID + ";messageid=" + call.ActivityID, "activityId": call.ActivityID})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": call.ActivityID})
	}
}

// admit books one send at now unless a window is full; it returns 0 or
// the whole seconds until the window that is full frees a slot (Teams'
// Retry-After). Called with cv.mu held.
func (c *Connector) admit(cv *conversation, now time.Time) int {
	longest := time.Duration(0)
	for _, win := range c.cfg.Limits {
		longest = max(longest, win.Period)
	}
	keep := cv.sends[:0]
	for _, t := range cv.sends {
		if now.Sub(t) < longest {
			keep = append(keep, t)
		}
	}
	cv.sends = keep
	wait := time.Duration(0)
	for _, win := range c.cfg.Limits {
		var in []time.Time
		for i := len(cv.sends) - 1; i >= 0 && now.Sub(cv.sends[i]) < win.Period; i-- {
			in = append(in, cv.sends[i])
		}
		if len(in) >= win.Max {
			// The oldest send counted in this window leaves it first.
			oldest := in[win.Max-1]
			wait = max(wait, oldest.Add(win.Period).Sub(now))
		}
	}
	if wait > 0 {
		return max(1, int(math.Ceil(wait.Seconds())))
	}
	cv.sends = append(cv.sends, now)
	return 0
}

func (c *Connector) member(w http.ResponseWriter, convID, userID string) {
	m, ok := c.members.Load(userID)
	cv := c.conv(convID)
	cv.mu.Lock()
	call := Call{Conversation: convID, Op: OpMember, ActivityID: userID, At: c.cfg.Now(), Status: http.StatusOK}
	if !ok {
		call.Status = http.StatusNotFound
	}
	cv.calls = append(cv.calls, call)
	close(cv.changed)
	cv.changed = make(chan struct{})
	cv.mu.Unlock()
	if !ok {
		connectorError(w, http.StatusNotFound, "MemberNotFoundInConversation", "The member was not found.")
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// closeWithoutAnswer drops the connection of w's request without writing
// anything: the caller sees the connection closed (EOF or reset).
func closeWithoutAnswer(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		if tc, ok := conn.(interface{ SetLinger(int) error }); ok {
			_ = tc.SetLinger(0) // a reset, not a graceful close
		}
		_ = conn.Close()
		return
	}
	panic(http.ErrAbortHandler) // no hijacking (HTTP/2): abort the stream
}

func connectorError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// Wait returns the first call in conversation id at index from or later
// that match accepts, and the index after it; it blocks until one arrives
// or ctx ends.
func (c *Connector) Wait(ctx context.Context, id string, from int, match func(Call) bool) (Call, int, error) {
	cv := c.conv(id)
	for {
		cv.mu.Lock()
		for i := from; i < len(cv.calls); i++ {
			if match(cv.calls[i]) {
				call := cv.calls[i]
				cv.mu.Unlock()
				return call, i + 1, nil
			}
		}
		from = len(cv.calls)
		ch := cv.changed
		cv.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return Call{}, from, ctx.Err()
		}
	}
}

// Calls returns a copy of every call recorded for conversation id.
func (c *Connector) Calls(id string) []Call {
	cv := c.conv(id)
	cv.mu.Lock()
	defer cv.mu.Unlock()
	return append([]Call(nil), cv.calls...)
}

// AllCalls returns a copy of every recorded call, conversation by
// conversation in the order each received them.
func (c *Connector) AllCalls() []Call {
	c.mu.Lock()
	ids := make([]string, 0, len(c.convs))
	for id := range c.convs {
		ids = append(ids, id)
	}
	c.mu.Unlock()
	slices.Sort(ids)
	var out []Call
	for _, id := range ids {
		out = append(out, c.Calls(id)...)
	}
	return out
}

// ConnectorStats sums the recorded calls.
type ConnectorStats struct {
	Calls         int         `json:"calls"`
	ByOp          map[Op]int  `json:"by_op"`
	ByStatus      map[int]int `json:"by_status"`
	Throttled     int         `json:"throttled"`
	IdenticalSend int         `json:"identical_sends"`
	Unauthorized  int64       `json:"unauthorized"`
	Conversations int         `json:"conversations"`
}

// Stats sums every conversation's calls.
func (c *Connector) Stats() ConnectorStats {
	s := ConnectorStats{ByOp: map[Op]int{}, ByStatus: map[int]int{}, Unauthorized: c.unauth.Load()}
	c.mu.Lock()
	convs := make([]*conversation, 0, len(c.convs))
	for _, cv := range c.convs {
		convs = append(convs, cv)
	}
	s.Conversations = len(c.convs)
	c.mu.Unlock()
	for _, cv := range convs {
		cv.mu.Lock()
		for _, call := range cv.calls {
			s.Calls++
			s.ByOp[call.Op]++
			s.ByStatus[call.Status]++
			if call.Status == http.StatusTooManyRequests {
				s.Throttled++
			}
			if call.Identical {
				s.IdenticalSend++
			}
		}
		cv.mu.Unlock()
	}
	return s
}
