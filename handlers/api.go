package handlers

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/gatebot/gatebot/apitoken"
	"github.com/gatebot/gatebot/approvals"
)

// The external API: /api/v1, authenticated with personal access tokens
// (package apitoken). openapi.yaml describes every route here; keep them
// in step (openapi_test.go checks the handlers against it).

// TokenAuthenticator resolves a bearer token. *apitoken.Store implements it.
type TokenAuthenticator interface {
	Authenticate(ctx context.Context, secret string) (*apitoken.Token, error)
}

// RateLimiter limits requests per token. *apitoken.Limiter implements it.
type RateLimiter interface {
	Allow(ctx context.Context, key string) (apitoken.Decision, error)
}

// CallbackChecker decides whether a URL may receive callbacks; the error
// says why not in words fit for an API caller.
type CallbackChecker interface {
	CheckURL(raw string) error
}

// APIOptions configure the external HTTP API under /api/v1. The gate
// endpoints are served only when Tokens is set; the OpenAPI description
// always is.
type APIOptions struct {
	Tokens TokenAuthenticator
	// Limiter, when set, limits each token's request rate.
	Limiter RateLimiter
	// Callbacks, when set, checks a gate's callback_url against the
	// allow-list (*callbacks.Deliverer implements it); without it a
	// callback_url is refused. Delivery itself runs from the store's
	// outbox, apart from the API.
	Callbacks CallbackChecker
	// MaxBody caps request bodies, default DefaultAPIMaxBody.
	MaxBody int64
	// BaseURL makes links absolute (the public URL, without /api/v1);
	// empty gives links relative to the host.
	BaseURL string
}

// API limits.
const (
	// DefaultAPIMaxBody caps API request bodies.
	DefaultAPIMaxBody = 64 << 10
	maxIdempotencyKey = 255
	maxListLimit      = 500
	defaultListLimit  = 50
	// apiPostBudget bounds posting an API gate's card, inside the request.
	apiPostBudget = 20 * time.Second
)

const apiPrefix = "/api/v1"

// openAPISpec describes the API; it is served as is.
//
//go:embed openapi.yaml
var openAPISpec []byte

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Length", strconv.Itoa(len(openAPISpec)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(openAPISpec)
}

// registerAPI adds the /api/v1 routes.
func (s *Server) registerAPI(r *mux.Router) {
	r.HandleFunc(apiPrefix+"/openapi.yaml", serveOpenAPI).Methods(http.MethodGet, http.MethodHead)
	if s.opt.API.Tokens == nil {
		return
	}
	if s.opt.API.MaxBody <= 0 {
		s.opt.API.MaxBody = DefaultAPIMaxBody
	}
	r.Handle(apiPrefix+"/pipeline/run/notification", s.adapt(s.apiAuth(apitoken.ScopeWrite, s.handleRunNotification))).Methods(http.MethodPost)
	r.Handle(apiPrefix+"/gates", s.adapt(s.apiAuth(apitoken.ScopeWrite, s.handleCreateGate))).Methods(http.MethodPost)
	r.Handle(apiPrefix+"/gates", s.adapt(s.apiAuth(apitoken.ScopeRead, s.handleListGates))).Methods(http.MethodGet)
	r.Handle(apiPrefix+"/gates/{id}", s.adapt(s.apiAuth(apitoken.ScopeRead, s.handleGetGate))).Methods(http.MethodGet)
	r.Handle(apiPrefix+"/gates/{id}", s.adapt(s.apiAuth(apitoken.ScopeWrite, s.handleCancelGate))).Methods(http.MethodDelete)
}

type apiHandler func(w http.ResponseWriter, r *http.Request, tok *apitoken.Token) error

// apiAuth authenticates the bearer token, applies the token's rate limit
// and checks its scope before h runs. Pipeline access is h's to check.
func (s *Server) apiAuth(scope apitoken.Scope, h apiHandler) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		ctx := r.Context()
		log := loggerFrom(ctx)
		secret, ok := apitoken.FromHeader(r.Header.Get("Authorization"))
		if !ok {
			return &HTTPError{Status: http.StatusUnauthorized, Type: "unauthorized",
				Msg:    "a bearer token is required: Authorization: Bearer <personal access token>",
				Header: http.Header{"Www-Authenticate": {`Bearer realm="gatebot"`}}}
		}
		tok, err := s.opt.API.Tokens.Authenticate(ctx, secret)
		if err != nil {
			if errors.Is(err, apitoken.ErrUnavailable) {
				return unavailableError(err)
			}
			reason := "unknown"
			switch {
			case errors.Is(err, apitoken.ErrRevoked):
				reason = "revoked"
			case errors.Is(err, apitoken.ErrExpired):
				reason = "expired"
			}
			args := []any{"reason", reason}
			if tok != nil {
				args = append(args, "token_id", tok.ID, "token_name", tok.Name)
			}
			log.Warn("api token refused", args...)
			return &HTTPError{Status: http.StatusUnauthorized, Type: "invalid-token",
				Msg:    "the token is unknown, revoked or expired",
				Header: http.Header{"Www-Authenticate": {`Bearer realm="gatebot", error="invalid_token"`}}}
		}
		log = log.With("token_id", tok.ID, "token_name", tok.Name)
		ctx = withLogger(ctx, log)
		if l := s.opt.API.Limiter; l != nil {
			d, err := l.Allow(ctx, tok.ID)
			if err != nil {
				return unavailableError(err)
			}
			w.Header().Set("RateLimit-Limit", strconv.Itoa(d.Limit))
			w.Header().Set("RateLimit-Remaining", strconv.Itoa(d.Remaining))
			if !d.Allowed {
				secs := strconv.Itoa(int(max(1, math.Ceil(d.RetryAfter.Seconds()))))
				log.Info("api rate limit hit")
				return &HTTPError{Status: http.StatusTooManyRequests, Type: "rate-limited",
					Msg:    "too many requests for this token; retry after " + secs + "s",
					Header: http.Header{"Retry-After": {secs}}}
			}
		}
		if !tok.Has(scope) {
			return &HTTPError{Status: http.StatusForbidden, Type: "insufficient-scope",
				Msg:    "this token lacks the " + string(scope) + " scope",
				Header: http.Header{"Www-Authenticate": {fmt.Sprintf(`Bearer realm="gatebot", error="insufficient_scope", scope=%q`, scope)}}}
		}
		err = h(w, r.WithContext(ctx), tok)
		if err != nil && s.apiProblem(w, r, err) {
			return nil
		}
		return err
	}
}

func unavailableError(err error) error {
	return &HTTPError{Status: http.StatusServiceUnavailable, Type: "unavailable",
		Msg: "gatebot's store is unavailable; retry shortly", Err: err,
		Header: http.Header{"Retry-After": {"5"}}}
}

// problemError is an HTTPError that also names the offending fields.
type problemError struct {
	HTTPError
	Fields []ProblemField
}

func (e *problemError) Unwrap() error { return &e.HTTPError }

func invalid(status int, typ, msg string, fields ...ProblemField) error {
	return &problemError{HTTPError: HTTPError{Status: status, Type: typ, Msg: msg}, Fields: fields}
}

// apiProblem writes a problemError with its fields and reports whether err
// was one; other errors go on to adapt.
func (s *Server) apiProblem(w http.ResponseWriter, r *http.Request, err error) bool {
	var pe *problemError
	if !errors.As(err, &pe) {
		return false
	}
	loggerFrom(r.Context()).Info("request refused", "status", pe.Status, "reason", pe.Msg, "fields", len(pe.Fields))
	writeProblem(w, r, pe.Status, pe.Type, pe.Msg, pe.Fields...)
	return true
}

// readJSON reads a size-capped body holding exactly one JSON object into v,
// refusing unknown fields, other media types and trailing data.
func (s *Server) readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return invalid(http.StatusUnsupportedMediaType, "unsupported-media-type", "the body must be JSON (Content-Type: application/json)")
	}
	body, err := readBody(w, r, s.opt.API.MaxBody)
	if err != nil {
		return err
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return invalid(http.StatusBadRequest, "malformed-json", "the body must be one JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeProblem(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid(http.StatusBadRequest, "malformed-json", "the body must be one JSON object with nothing after it")
	}
	return nil
}

func decodeProblem(err error) error {
	var (
		se *json.SyntaxError
		te *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &se):
		return invalid(http.StatusBadRequest, "malformed-json", fmt.Sprintf("malformed JSON at byte %d: %s", se.Offset, se.Error()))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return invalid(http.StatusBadRequest, "malformed-json", "malformed JSON: the body ends early")
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "(body)"
		}
		return invalid(http.StatusUnprocessableEntity, "invalid-request", "a field has the wrong type",
			ProblemField{Field: field, Detail: "must be " + jsonKind(te.Type.Kind().String()) + ", not " + te.Value})
	}
	if name, ok := strings.CutPrefix(err.Error(), `json: unknown field "`); ok {
		name = strings.TrimSuffix(name, `"`)
		return invalid(http.StatusUnprocessableEntity, "invalid-request", "unknown field "+strconv.Quote(name),
			ProblemField{Field: name, Detail: "is not a field of this request"})
	}
	return invalid(http.StatusBadRequest, "malformed-json", "the body is not valid JSON")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	case "bool":
		return "a boolean"
	case "int", "int64", "float64", "uint", "int32":
		return "a number"
	}
	return "another type"
}

// apiPipeline finds a pipeline by configured name or alias.
func (s *Server) apiPipeline(id string) (string, *Pipeline, bool) {
	if p, ok := s.opt.Pipelines[id]; ok {
		return id, p, true
	}
	for name, p := range s.opt.Pipelines {
		if slices.Contains(p.Aliases, id) {
			return name, p, true
		}
	}
	return "", nil, false
}

// runNotificationRequest is Opsera's Start Pipeline API body.
type runNotificationRequest struct {
	PipelineID          string `json:"pipelineId"`
	StepID              string `json:"stepId"`
	NotificationMessage string `json:"notificationMessage"`
}

// runNotificationResponse keeps Opsera's status/message style and adds the
// gate.
type runNotificationResponse struct {
	Status     string   `json:"status"`
	Message    string   `json:"message"`
	GateID     string   `json:"gateId"`
	PipelineID string   `json:"pipelineId"`
	StepID     string   `json:"stepId"`
	State      string   `json:"state"`
	Links      APILinks `json:"links"`
}

// handleRunNotification is Opsera's POST /api/v1/pipeline/run/notification:
// open the pipeline's approval gate, with notificationMessage as the card's
// message.
func (s *Server) handleRunNotification(w http.ResponseWriter, r *http.Request, tok *apitoken.Token) error {
	var req runNotificationRequest
	if err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	var fields []ProblemField
	if req.PipelineID == "" {
		fields = append(fields, ProblemField{Field: "pipelineId", Detail: "required"})
	}
	if req.StepID == "" {
		fields = append(fields, ProblemField{Field: "stepId", Detail: "required"})
	}
	if len(fields) > 0 {
		return invalid(http.StatusUnprocessableEntity, "invalid-request", "the request is invalid", fields...)
	}
	// The step is checked before the gate is opened, but after the
	// pipeline is known and the token's access to it.
	name, p, ok := s.apiPipeline(req.PipelineID)
	if ok && tok.MayAccess(name) && (p.StepID == "" || p.StepID != req.StepID) {
		detail := "is not the approval gate step of " + req.PipelineID
		if p.StepID == "" {
			detail = req.PipelineID + " has no approval step id configured (approval.step_id)"
		}
		return invalid(http.StatusUnprocessableEntity, "wrong-step", "stepId does not name the pipeline's approval gate step",
			ProblemField{Field: "stepId", Detail: detail})
	}
	g, created, err := s.openGate(r.Context(), r, tok, openRequest{
		field: "pipelineId", pipeline: req.PipelineID, message: req.NotificationMessage,
	})
	if err != nil {
		return err
	}
	links := s.gateLinks(g.ID)
	w.Header().Set("Location", links.Self)
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, status, runNotificationResponse{
		Status: "success", Message: "approval requested in Microsoft Teams; the pipeline starts once the gate is approved",
		GateID: g.ID, PipelineID: req.PipelineID, StepID: req.StepID, State: string(g.State), Links: links,
	})
	return nil
}

// createGateRequest is POST /api/v1/gates.
type createGateRequest struct {
	Pipeline    string         `json:"pipeline"`
	Inputs      map[string]any `json:"inputs"`
	Message     string         `json:"message"`
	Requester   string         `json:"requester"`
	CallbackURL string         `json:"callback_url"`
}

func (s *Server) handleCreateGate(w http.ResponseWriter, r *http.Request, tok *apitoken.Token) error {
	var req createGateRequest
	if err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	g, created, err := s.openGate(r.Context(), r, tok, openRequest{
		field: "pipeline", pipeline: req.Pipeline, inputs: req.Inputs, message: req.Message,
		requester: req.Requester, callbackURL: req.CallbackURL,
	})
	if err != nil {
		return err
	}
	view := s.gateView(g, tok)
	w.Header().Set("Location", view.Links.Self)
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, status, view)
	return nil
}

// visibleGate loads a gate the token may see; others are not found.
func (s *Server) visibleGate(ctx context.Context, r *http.Request, tok *apitoken.Token) (*approvals.Gate, error) {
	id := mux.Vars(r)["id"]
	notFound := invalid(http.StatusNotFound, "not-found", fmt.Sprintf("there is no gate %q", id))
	if len(id) > 100 {
		return nil, notFound
	}
	g, err := s.opt.Store.Get(ctx, id)
	switch {
	case errors.Is(err, approvals.ErrNotFound):
		return nil, notFound
	case err != nil:
		return nil, err
	case !tok.MayAccess(g.Pipeline):
		loggerFrom(ctx).Info("gate hidden from token without access", "gate_id", id, "pipeline", g.Pipeline)
		return nil, notFound
	}
	return g, nil
}

func (s *Server) handleGetGate(w http.ResponseWriter, r *http.Request, tok *apitoken.Token) error {
	g, err := s.visibleGate(r.Context(), r, tok)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.gateView(g, tok))
	return nil
}

// handleCancelGate cancels a pending gate; the card names the token.
func (s *Server) handleCancelGate(w http.ResponseWriter, r *http.Request, tok *apitoken.Token) error {
	ctx := r.Context()
	if err := onlyParams(r.URL.Query(), "reason"); err != nil {
		return err
	}
	reason := r.URL.Query().Get("reason")
	if err := approvals.CheckText("reason", reason, approvals.MaxReason, true); err != nil {
		return invalid(http.StatusUnprocessableEntity, "invalid-request", "the reason is invalid", invalidField(err))
	}
	g, err := s.visibleGate(ctx, r, tok)
	if err != nil {
		return err
	}
	// The API cancels pending gates only, even when the gate was approved
	// a moment after it was read.
	ng, err := s.opt.Store.CancelPending(ctx, g.ID, apiRequester(tok), reason)
	if errors.Is(err, approvals.ErrNotPending) && ng != nil {
		return invalid(http.StatusConflict, "not-pending", fmt.Sprintf("gate %s is %s; only a pending gate can be cancelled", g.ID, ng.State))
	}
	if err != nil {
		return err
	}
	loggerFrom(ctx).Info("gate cancelled over the api", "gate_id", ng.ID)
	writeJSON(w, http.StatusOK, s.gateView(ng, tok))
	return nil
}

// APIGate is a gate as the API shows it (the Gate schema of openapi.yaml)
// and as callbacks carry it. CallbackURL is shown to the creating token and
// in callbacks only.
type APIGate struct {
	ID                string         `json:"id"`
	Pipeline          string         `json:"pipeline"`
	State             string         `json:"state"`
	Inputs            map[string]any `json:"inputs"`
	Message           string         `json:"message,omitempty"`
	Requester         APIPerson      `json:"requester"`
	Origin            string         `json:"origin,omitempty"`
	RequiredApprovals int            `json:"required_approvals"`
	Votes             []APIVote      `json:"votes"`
	DecidedBy         *APIPerson     `json:"decided_by,omitempty"`
	Reason            string         `json:"reason,omitempty"`
	Run               *APIRun        `json:"run,omitempty"`
	Error             string         `json:"error,omitempty"`
	CallbackURL       string         `json:"callback_url,omitempty"`
	CreatedAt         time.Time      `json:"created_at"`
	UpdatedAt         time.Time      `json:"updated_at"`
	Deadline          *time.Time     `json:"deadline,omitempty"`
	Version           int64          `json:"version"`
	Links             APILinks       `json:"links"`
}

// APIPerson is someone on a gate: display name and, when known, UPN.
type APIPerson struct {
	Name string `json:"name"`
	UPN  string `json:"upn,omitempty"`
}

// APIVote is one approval or rejection.
type APIVote struct {
	By      APIPerson `json:"by"`
	Approve bool      `json:"approve"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
}

// APIRun is the pipeline run a gate started.
type APIRun struct {
	ID     string `json:"id,omitempty"`
	URL    string `json:"url,omitempty"`
	Status string `json:"status,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// APILinks are a gate's URLs.
type APILinks struct {
	Self string `json:"self"`
}

// apiRequester is who acts through tok: the token itself and, when the
// token names an owner, that person, so that approval rules such as "no
// self-approval" recognise the owner when they click in Teams.
func apiRequester(tok *apitoken.Token) approvals.Person {
	return approvals.Person{ID: "api:" + tok.Name + "#" + tok.ID, UPN: tok.OwnerUPN(), AADObjectID: tok.OwnerAADObjectID(), Name: tok.Name}
}

func person(p approvals.Person) APIPerson { return APIPerson{Name: p.Display(), UPN: p.UPN} }

func (s *Server) baseURL() string { return strings.TrimRight(s.opt.API.BaseURL, "/") }

func (s *Server) gateLinks(id string) APILinks {
	return APILinks{Self: s.baseURL() + apiPrefix + "/gates/" + url.PathEscape(id)}
}

// gateView renders g for tok. The callback URL is shown only to the token
// that created the gate: it may carry the receiver's secret in its query,
// and other tokens reading the pipeline have no use for it.
func (s *Server) gateView(g *approvals.Gate, tok *apitoken.Token) APIGate {
	v := renderGate(g, s.baseURL())
	if tok == nil || g.TokenID == "" || g.TokenID != tok.ID {
		v.CallbackURL = ""
	}
	return v
}

// APIGateView renders gates as the API shows them, with links under base
// (the public URL, "" for relative links): the data of a callback.
func APIGateView(base string) func(g *approvals.Gate) any {
	base = strings.TrimRight(base, "/")
	return func(g *approvals.Gate) any { return renderGate(g, base) }
}

func renderGate(g *approvals.Gate, base string) APIGate {
	v := APIGate{
		ID: g.ID, Pipeline: g.Pipeline, State: string(g.State), Inputs: g.Inputs, Message: g.Message,
		Requester: person(g.Requester), Origin: g.Origin, RequiredApprovals: max(g.Policy.Required, 1),
		Votes: make([]APIVote, 0, len(g.Votes)), Reason: g.Reason, Error: g.Error, CallbackURL: g.CallbackURL,
		CreatedAt: g.CreatedAt, UpdatedAt: g.UpdatedAt, Version: g.Version,
		Links: APILinks{Self: base + apiPrefix + "/gates/" + url.PathEscape(g.ID)},
	}
	if v.Inputs == nil {
		v.Inputs = map[string]any{}
	}
	for _, vt := range g.Votes {
		v.Votes = append(v.Votes, APIVote{By: person(vt.By), Approve: vt.Approve, Reason: vt.Reason, At: vt.At})
	}
	if g.DecidedBy != nil {
		p := person(*g.DecidedBy)
		v.DecidedBy = &p
	}
	if g.Run != nil {
		v.Run = &APIRun{ID: g.Run.ID, URL: g.Run.URL, Status: string(g.Run.Status), Detail: g.Run.Detail}
	}
	if !g.Deadline.IsZero() {
		d := g.Deadline
		v.Deadline = &d
	}
	return v
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
