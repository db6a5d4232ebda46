// Package handlers is gatebot's application layer: the HTTP surface
// (POST /api/messages for the Bot Framework, health endpoints, the external
// API), chat command routing, and the workers that trigger granted gates,
// follow their runs and expire stale ones. It ties bot, cards, approvals and
// pipelines together.
//
// Nothing imports handlers except cmd/gatebot.
package handlers

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/bot"
	"github.com/gatebot/gatebot/logging"
	"github.com/gatebot/gatebot/pipelines"
)

// DefaultMaxBody caps request bodies; Teams activities are far smaller.
const DefaultMaxBody = 256 << 10

// Authenticator validates the Bot Framework bearer token of an inbound
// request. *bot.Authenticator implements it.
type Authenticator interface {
	Authenticate(ctx context.Context, authorization string) (*bot.Identity, error)
}

// Connector is the part of the Bot Connector client gatebot uses.
// *bot.Connector implements it.
type Connector interface {
	SendToConversation(ctx context.Context, serviceURL, conversationID string, act *bot.Activity) (string, error)
	TryUpdateActivity(ctx context.Context, serviceURL, conversationID, activityID string, act *bot.Activity) error
	TrySendToConversation(ctx context.Context, serviceURL, conversationID string, act *bot.Activity) (string, error)
	CreateConversation(ctx context.Context, serviceURL string, p bot.ConversationParameters) (bot.ConversationResourceResponse, error)
	GetMember(ctx context.Context, serviceURL, conversationID, userID string) (bot.Member, error)
}

// Store is the part of the approvals store gatebot's handlers use.
// *approvals.Store implements it.
type Store interface {
	Open(ctx context.Context, o approvals.Opening) (*approvals.Gate, bool, error)
	SetPost(ctx context.Context, id string, post approvals.Post, digest string) (*approvals.Gate, error)
	ClaimPost(ctx context.Context, id, holder string, lease time.Duration) (bool, error)
	PostHolder(ctx context.Context, id string) (string, error)
	ReleasePost(ctx context.Context, id, holder string, dueIn time.Duration) error
	TakeOverPost(ctx context.Context, id, from, holder string, lease time.Duration) (bool, error)
	Get(ctx context.Context, id string) (*approvals.Gate, error)
	Resolve(ctx context.Context, idOrPrefix string) (*approvals.Gate, error)
	List(ctx context.Context, q approvals.ListQuery) ([]*approvals.Gate, string, error)
	Decide(ctx context.Context, id string, p approvals.Person, approve bool, reason, where string) (*approvals.Gate, approvals.Outcome, error)
	DecideHeld(ctx context.Context, id string, p approvals.Person, approve bool, reason, where string, hold time.Duration) (*approvals.Gate, approvals.Outcome, error)
	Cancel(ctx context.Context, id string, by approvals.Person, reason string) (*approvals.Gate, error)
	CancelPending(ctx context.Context, id string, by approvals.Person, reason string) (*approvals.Gate, error)
	RunCancelRequested(ctx context.Context, id string, who approvals.Person, reason string) (*approvals.Gate, error)
	Retry(ctx context.Context, id string, who approvals.Person) (*approvals.Gate, error)
	RecordCopy(ctx context.Context, id string, c approvals.Copy, conversation string) (*approvals.Gate, error)
	HoldCard(ctx context.Context, id string, d time.Duration) error
	ReleaseCard(ctx context.Context, id string) error
	Once(ctx context.Context, key string, ttl time.Duration) (bool, error)
	PutConversation(ctx context.Context, key string, ref []byte) error
	DeleteConversation(ctx context.Context, key string) error
	Ping(ctx context.Context) error
}

// Pipeline is one configured pipeline as the handlers see it.
type Pipeline struct {
	Def          *pipelines.Definition
	Provider     pipelines.Provider
	ProviderType string
	Channel      string // configured channel name for gates opened over the API
	Policy       approvals.Policy
	Runners      []string // UPNs or aad:<id> allowed to open gates; empty = anyone
	Aliases      []string // other ids callers may use (Opsera-style pipeline ids)
	StepID       string   // the approval gate's step id (Opsera compatibility)
	PollEvery    time.Duration
	// Confirm makes Approve ask "Approve … to Target?" before the vote is
	// recorded (approval.confirm).
	Confirm bool
	Target  string
	// NotifyDM also sends the gate's card to each listed approver's
	// personal chat (approval.notify: dm); every copy is kept in sync.
	NotifyDM bool
}

// Channel is a Teams conversation gatebot posts API-opened gates to.
type Channel struct {
	ServiceURL     string
	ConversationID string
	TenantID       string
}

// Options configures a Server. Zero values are safe defaults except where
// noted.
type Options struct {
	Logger *slog.Logger
	// Auth validates inbound tokens. Nil means local dev mode: no inbound
	// checks at all, which cmd/gatebot allows only on a loopback listener.
	Auth Authenticator
	// Trust decides which serviceUrls may be called. Required.
	Trust bot.ServiceURLPolicy
	// Tenants decides which tenants' activities are acted on. Required
	// (Allowed non-empty) with Auth; without Auth (local dev mode) an
	// empty policy serves every tenant and activities without one.
	Tenants   bot.TenantPolicy
	Connector Connector // required
	Store     Store     // required
	Pipelines map[string]*Pipeline
	Channels  map[string]Channel
	// Bindings holds channels registered from Teams (channel register),
	// used for a Channels entry without a ConversationID. Optional.
	Bindings ChannelBindings
	// BotID is the bot's Bot Framework id (28:<app id>), for proactive
	// posts. Optional in dev mode.
	BotID   string
	BotName string
	MaxBody int64
	Now     func() time.Time
	// MemberCacheTTL bounds how long a looked-up UPN is trusted.
	MemberCacheTTL time.Duration
	// API configures the external API (/api/v1, see api.go); without
	// API.Tokens only its OpenAPI description is served.
	API APIOptions
	// Metrics records activities, auth failures, refusals and card-click
	// latency; nil records nothing.
	Metrics Metrics
	// MetricsHandler, if set, is served at GET /metrics.
	MetricsHandler http.Handler
	// Tracer, when set, traces every request (OpenTelemetry), following a
	// caller's traceparent on the external API; nil traces nothing.
	Tracer trace.Tracer
	// PostRetry is when a card post the Connector failed for now (5xx,
	// 429, unreachable) is tried again by the unposted sweep; default 30 s.
	PostRetry time.Duration
	// Instance names this replica in the claims it holds (a card post);
	// default "local".
	Instance string
	// Replicas is the replica registry: /readyz says from it whether the
	// live replicas disagree, and fails while another deployment that was
	// first uses the Redis prefix. Optional.
	Replicas ReplicaView
}

// Server serves gatebot's HTTP endpoints and runs its background workers.
type Server struct {
	opt     Options
	log     *slog.Logger
	router  *mux.Router
	byAlias map[string]*Pipeline
	members *memberCache[string]
	// approvers caches allow-list entries resolved to Teams accounts
	// (approverCard), by tenant and entry; a zero account is a miss.
	approvers *memberCache[bot.Member]
	// sent remembers the digest of the card each message shows (notify.go).
	sent *memberCache[string]

	refusals Refusals
	helpOnce sync.Once
	helpRaw  json.RawMessage // the help card, encoded once
	bg       sync.WaitGroup  // async turn work, waited for on Shutdown
	metrics  Metrics
	ready    readiness
	draining atomic.Bool // set by Drain: /readyz answers 503
	// stopAsync cancels async work that Shutdown's deadline cut short.
	asyncCtx  context.Context
	stopAsync context.CancelFunc
}

// New validates o and returns a Server.
func New(o Options) (*Server, error) {
	var errs []error
	if o.Connector == nil {
		errs = append(errs, errors.New("handlers: Connector is required"))
	}
	if o.Store == nil {
		errs = append(errs, errors.New("handlers: Store is required"))
	}
	if o.Auth != nil && len(o.Tenants.Allowed) == 0 {
		errs = append(errs, errors.New("handlers: Tenants.Allowed is required when inbound auth is on"))
	}
	if o.Auth == nil && len(o.Tenants.Allowed) == 0 {
		o.Tenants = bot.TenantPolicy{Allowed: []string{bot.AnyTenant}, AllowMissing: true}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	// Request, turn and gate loggers each add their keys; Unique writes
	// each key once per line however the helpers nest.
	o.Logger = slog.New(logging.Unique(o.Logger.Handler()))
	if o.Metrics == nil {
		o.Metrics = noMetrics{}
	}
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MemberCacheTTL <= 0 {
		o.MemberCacheTTL = 10 * time.Minute
	}
	if o.Instance == "" {
		o.Instance = "local"
	}
	if o.PostRetry <= 0 {
		o.PostRetry = defaultPostRetry
	}
	s := &Server{
		opt:       o,
		log:       o.Logger,
		byAlias:   map[string]*Pipeline{},
		members:   newMemberCache[string](o.MemberCacheTTL, o.Now),
		approvers: newMemberCache[bot.Member](o.MemberCacheTTL, o.Now),
		sent:      newMemberCache[string](time.Hour, o.Now),
		metrics:   o.Metrics,
	}
	s.asyncCtx, s.stopAsync = context.WithCancel(context.Background())
	for name, p := range o.Pipelines {
		s.byAlias[name] = p
		for _, a := range p.Aliases {
			s.byAlias[a] = p
		}
	}
	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, http.StatusNotFound, "not-found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, http.StatusMethodNotAllowed, "method-not-allowed", r.Method+" is not allowed on "+r.URL.Path)
	})
	if o.Tracer != nil {
		r.Use(nameSpan)
	}
	r.Handle("/api/messages", s.adapt(s.handleMessages)).Methods(http.MethodPost)
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	}).Methods(http.MethodGet)
	r.HandleFunc("/readyz", s.handleReady).Methods(http.MethodGet)
	if o.MetricsHandler != nil {
		r.Handle("/metrics", o.MetricsHandler).Methods(http.MethodGet)
	}
	s.registerAPI(r)
	s.router = r
	return s, nil
}

// Router exposes the route table so other parts of the application (the
// external API) can register routes with the same middleware.
func (s *Server) Router() *mux.Router { return s.router }

// ServeHTTP implements http.Handler with request ids, access logs and panic
// recovery around every route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.opt.Now()
	rid := r.Header.Get("X-Request-Id")
	if rid == "" || len(rid) > 64 {
		rid = newID("r_")
	}
	w.Header().Set("X-Request-Id", rid)
	log := lazyLogger(s.log).With("request_id", rid)
	ctx := r.Context()
	var span trace.Span
	if s.opt.Tracer != nil {
		ctx, span = s.startRequestSpan(ctx, r, rid)
		log = log.With("trace_id", span.SpanContext().TraceID().String())
		defer span.End()
	}
	ctx = withLogger(ctx, log)
	rec := &statusRecorder{ResponseWriter: w}
	defer func() {
		if p := recover(); p != nil {
			log.Error("panic serving request", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if rec.status == 0 {
				writeProblem(rec, r, http.StatusInternalServerError, "internal", "internal error")
			}
		}
		status := rec.statusCode()
		if span != nil {
			endRequestSpan(span, status)
		}
		// Checked first: boxing the fields costs allocations on every
		// request even when the access log is off.
		if lvl := accessLevel(status); log.Enabled(ctx, lvl) {
			log.Log(ctx, lvl, "http request", "method", r.Method, "path", r.URL.Path, "status", status,
				"bytes", rec.bytes, "duration_ms", float64(s.opt.Now().Sub(start).Microseconds())/1000)
		}
	}()
	s.router.ServeHTTP(rec, r.WithContext(ctx))
}

// accessLevel is the level of a request's access line: debug for what
// went well (probes and Teams traffic would flood the log at info), info
// for a refused request, error for a failed one.
func accessLevel(status int) slog.Level {
	switch {
	case status >= 500:
		return slog.LevelError
	case status >= 400:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

// asyncGrace is how long async work cut short by Shutdown's deadline has
// to give back what it claimed (a card post) before Shutdown returns.
const asyncGrace = 3 * time.Second

// Shutdown waits for asynchronous turn work to finish or ctx to end. Work
// still running then is cancelled and gets asyncGrace to release its
// claims, so other replicas take it over at once rather than after the
// claims' leases.
func (s *Server) Shutdown(ctx context.Context) error {
	s.Drain()
	done := make(chan struct{})
	go func() { s.bg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.stopAsync()
	select {
	case <-done:
	case <-time.After(asyncGrace):
	}
	return ctx.Err()
}

// goAsync runs fn after the response, detached from the request's
// cancellation but keeping its values (request id, logger).
func (s *Server) goAsync(ctx context.Context, timeout time.Duration, fn func(ctx context.Context)) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		defer context.AfterFunc(s.asyncCtx, cancel)()
		defer func() {
			if p := recover(); p != nil {
				loggerFrom(ctx).Error("panic in async work", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			}
		}()
		fn(ctx)
	}()
}

// HTTPError is an error with a status and a message that is safe to show
// the caller. Err, if set, is logged and never sent.
type HTTPError struct {
	Status int
	Type   string // short problem type slug
	Msg    string
	Err    error
	Header http.Header
}

func (e *HTTPError) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *HTTPError) Unwrap() error { return e.Err }

// adapt turns an error-returning handler into an http.Handler: HTTPErrors
// become problem+json with their message; anything else is a bare 500 whose
// cause is only logged.
func (s *Server) adapt(h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		log := loggerFrom(r.Context())
		var he *HTTPError
		if errors.As(err, &he) {
			for k, vs := range he.Header {
				for _, v := range vs {
					w.Header().Add(k, v)
				}
			}
			if he.Status >= 500 {
				log.Error("request failed", "status", he.Status, "err", err)
			} else {
				log.Info("request refused", "status", he.Status, "reason", err.Error())
			}
			writeProblem(w, r, he.Status, he.Type, he.Msg)
			return
		}
		if errors.Is(err, approvals.ErrUnavailable) {
			log.Error("store unavailable", "err", err)
			w.Header().Set("Retry-After", "5")
			writeProblem(w, r, http.StatusServiceUnavailable, "unavailable", "gatebot's store is unavailable; retry shortly")
			return
		}
		log.Error("internal error", "err", err)
		writeProblem(w, r, http.StatusInternalServerError, "internal", "internal error")
	})
}

// Problem is an RFC 9457 problem detail.
type Problem struct {
	Type     string         `json:"type"`
	Title    string         `json:"title"`
	Status   int            `json:"status"`
	Detail   string         `json:"detail,omitempty"`
	Instance string         `json:"instance,omitempty"`
	Errors   []ProblemField `json:"errors,omitempty"`
}

// ProblemField names one invalid field and the rule it breaks.
type ProblemField struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

func writeProblem(w http.ResponseWriter, r *http.Request, status int, typ, detail string, fields ...ProblemField) {
	if typ == "" {
		typ = "about:blank"
	} else if !strings.Contains(typ, ":") {
		typ = "https://gatebot.dev/problems/" + typ
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(Problem{
		Type: typ, Title: http.StatusText(status), Status: status, Detail: detail,
		Instance: r.URL.Path, Errors: fields,
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += n
	return n, err
}

func (r *statusRecorder) statusCode() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

type ctxKey int

const loggerKey ctxKey = iota

func withLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey, l)
}

// loggerFrom returns the request-scoped logger (carrying the request id),
// or a discarding one.
func loggerFrom(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey).(*slog.Logger); ok {
		return l
	}
	return slog.New(slog.DiscardHandler)
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func newID(prefix string) string {
	var b [10]byte
	rand.Read(b[:])
	return prefix + strings.ToLower(idEncoding.EncodeToString(b[:]))
}

// readBody reads at most limit bytes; a larger body is a 413.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	// Size the buffer from Content-Length (capped) so a normal activity is
	// read without regrowing it.
	var buf bytes.Buffer
	if n := r.ContentLength; n > 0 {
		buf.Grow(int(min(n+1, limit+1)))
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	body := buf.Bytes()
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &HTTPError{Status: http.StatusRequestEntityTooLarge, Type: "too-large",
				Msg: fmt.Sprintf("request body exceeds %d bytes", limit)}
		}
		return nil, &HTTPError{Status: http.StatusBadRequest, Type: "bad-request", Msg: "could not read the request body", Err: err}
	}
	return body, nil
}
