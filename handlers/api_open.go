package handlers

// Opening a gate over the API: validation, the one Open operation, and
// posting the card to the pipeline's channel.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/gatebot/gatebot/apitoken"
	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/bot"
	"github.com/gatebot/gatebot/cards"
	"github.com/gatebot/gatebot/pipelines"
)

// openRequest is one request to open a gate over the API, after decoding.
type openRequest struct {
	field       string // the body field naming the pipeline, for problems
	pipeline    string // as given (name or alias)
	inputs      map[string]any
	message     string
	requester   string
	callbackURL string
}

// openGate validates and opens a gate for tok and posts its card to the
// pipeline's channel. created is false for an idempotent replay.
func (s *Server) openGate(ctx context.Context, r *http.Request, tok *apitoken.Token, req openRequest) (*approvals.Gate, bool, error) {
	log := loggerFrom(ctx)
	idem := r.Header.Get("Idempotency-Key")
	if r.Header.Values("Idempotency-Key") != nil && !validIdempotencyKey(idem) {
		return nil, false, invalid(http.StatusBadRequest, "invalid-request", "invalid Idempotency-Key",
			ProblemField{Field: "Idempotency-Key", Detail: fmt.Sprintf("1 to %d printable ASCII characters", maxIdempotencyKey)})
	}
	var fields []ProblemField
	if err := approvals.CheckText(messageField(req.field), req.message, approvals.MaxMessage, true); err != nil {
		fields = append(fields, invalidField(err))
	}
	if err := approvals.CheckText("requester", req.requester, approvals.MaxRequesterName, false); err != nil {
		fields = append(fields, invalidField(err))
	}
	if req.pipeline == "" {
		fields = append(fields, ProblemField{Field: req.field, Detail: "required"})
	}
	if len(fields) > 0 {
		return nil, false, invalid(http.StatusUnprocessableEntity, "invalid-request", "the request is invalid", fields...)
	}
	name, p, ok := s.apiPipeline(req.pipeline)
	if !ok {
		return nil, false, invalid(http.StatusNotFound, "unknown-pipeline", fmt.Sprintf("there is no pipeline %q", req.pipeline),
			ProblemField{Field: req.field, Detail: "no such pipeline"})
	}
	if !tok.MayAccess(name) {
		log.Info("api token has no access to the pipeline", "pipeline", name)
		return nil, false, invalid(http.StatusForbidden, "forbidden", fmt.Sprintf("this token may not use pipeline %q", req.pipeline),
			ProblemField{Field: req.field, Detail: "not among the token's pipelines"})
	}
	if req.callbackURL != "" {
		if s.opt.API.Callbacks == nil {
			return nil, false, invalid(http.StatusUnprocessableEntity, "invalid-request", "callbacks are not configured on this gatebot",
				ProblemField{Field: "callback_url", Detail: "callbacks need api.callback_secret in gatebot's config"})
		}
		if err := s.opt.API.Callbacks.CheckURL(req.callbackURL); err != nil {
			return nil, false, invalid(http.StatusUnprocessableEntity, "invalid-request", "callback_url is not allowed",
				ProblemField{Field: "callback_url", Detail: err.Error()})
		}
	}
	ch, ok, err := s.channel(ctx, p.Channel)
	if err != nil {
		return nil, false, err
	}
	if !ok {
		return nil, false, invalid(http.StatusUnprocessableEntity, "no-channel",
			fmt.Sprintf("pipeline %q has no Teams channel configured or registered for gates opened over the API", name),
			ProblemField{Field: req.field, Detail: "the pipeline's config needs a channel with a conversation_id, or one registered in Teams (@gatebot channel register NAME)"})
	}
	requester := apiRequester(tok)
	if req.requester != "" {
		requester.Name = req.requester
	}
	key := ""
	if idem != "" {
		// Keys are per token: one caller's key never finds another's gate.
		key = "api:" + tok.ID + ":" + idem
	}
	g, created, err := s.opt.Store.Open(ctx, approvals.Opening{
		Pipeline: name, Schema: p.Def, Runners: p.Runners, Policy: p.Policy,
		RawInputs: req.inputs, Message: req.message, Requester: requester,
		Origin: "api:" + tok.Name, TokenID: tok.ID, CallbackURL: req.callbackURL,
		Tenant: ch.TenantID, Conversations: []string{bot.ConversationKey(ch.ConversationID)},
		IdempotencyKey: key,
	})
	if err != nil {
		return nil, false, s.openProblem(ctx, name, req, err)
	}
	if !created {
		// The store's fingerprint knows the requester by identity (the
		// token), not by the display name an API caller gives, nor the
		// callback URL: both are part of this request.
		if g.CallbackURL != req.callbackURL || g.Requester.Name != requester.Name {
			return nil, false, idemMismatch()
		}
		log.Info("idempotent replay", "gate_id", g.ID)
		if g.State == approvals.StatePending && g.Post.PostedAt.IsZero() && s.claimPost(ctx, g) {
			// The first request stored the gate but gatebot stopped before
			// its card was up: post it now, or nobody would ever see it.
			log.Warn("posting the card of a replayed gate that was never posted", "gate_id", g.ID)
			return s.postAPIGate(ctx, g, p, ch, false)
		}
		return g, false, nil
	}
	log = log.With("gate_id", g.ID, "pipeline", name)
	ctx = withLogger(ctx, log)
	log.Info("gate opened over the api")
	if !s.claimPost(ctx, g) {
		return g, true, nil // the sweep posts it
	}
	return s.postAPIGate(ctx, g, p, ch, true)
}

// postAPIGate posts an API gate's card to its channel inside the request;
// a card that cannot be posted cancels the gate and the caller is told.
func (s *Server) postAPIGate(ctx context.Context, g *approvals.Gate, p *Pipeline, ch Channel, created bool) (*approvals.Gate, bool, error) {
	log := loggerFrom(ctx)
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), apiPostBudget)
	defer cancel()
	posted, err := s.postToChannel(pctx, g, ch)
	if err != nil {
		log.Error("could not post the api gate's card", "channel", p.Channel, "err", err)
		s.abandon(pctx, g, "could not post the approval card to the channel")
		return nil, false, &HTTPError{Status: http.StatusBadGateway, Type: "card-not-posted",
			Msg: "gatebot could not post the approval card to the pipeline's Teams channel, so the gate was cancelled; retry later with a new Idempotency-Key", Err: err}
	}
	return posted, created, nil
}

// openProblem maps Open's typed errors to the API's problems.
func (s *Server) openProblem(ctx context.Context, name string, req openRequest, err error) error {
	var (
		ie  pipelines.InputErrors
		inv *approvals.InvalidError
	)
	switch {
	case errors.Is(err, approvals.ErrIdempotencyKey):
		return idemMismatch()
	case errors.Is(err, approvals.ErrNotRunner):
		loggerFrom(ctx).Info("run refused: the token's owner is not a runner", "pipeline", name)
		return invalid(http.StatusForbidden, "not-a-runner",
			fmt.Sprintf("pipeline %q has runners, and this token's owner is not one of them (a token without an owner may open gates only on pipelines without runners)", name),
			ProblemField{Field: req.field, Detail: "the token's owner may not run this pipeline"})
	case errors.As(err, &ie):
		fields := make([]ProblemField, 0, len(ie))
		for _, e := range ie {
			f := "inputs"
			if e.Name != "" {
				f += "." + e.Name
			}
			fields = append(fields, ProblemField{Field: f, Detail: e.Reason})
		}
		return invalid(http.StatusUnprocessableEntity, "invalid-inputs", "the inputs are invalid for "+name, fields...)
	case errors.As(err, &inv):
		f := invalidField(err)
		if inv.Field == "message" {
			f.Field = messageField(req.field)
		}
		return invalid(http.StatusUnprocessableEntity, "invalid-request", "the request is invalid", f)
	}
	return err
}

// invalidField is the problem field of an *approvals.InvalidError.
func invalidField(err error) ProblemField {
	var inv *approvals.InvalidError
	if errors.As(err, &inv) {
		return ProblemField{Field: inv.Field, Detail: inv.Reason}
	}
	return ProblemField{Field: "request", Detail: err.Error()}
}

func messageField(pipelineField string) string {
	if pipelineField == "pipelineId" {
		return "notificationMessage"
	}
	return "message"
}

func idemMismatch() error {
	return invalid(http.StatusUnprocessableEntity, "idempotency-key-reused",
		"this Idempotency-Key was used with a different request",
		ProblemField{Field: "Idempotency-Key", Detail: "already used for a different body; use a new key"})
}

func validIdempotencyKey(k string) bool {
	if k == "" || len(k) > maxIdempotencyKey {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// postToChannel posts g's card as a new thread in the channel (proactive
// CreateConversation) and records where it went, returning the gate as
// stored. The error is the connector's.
func (s *Server) postToChannel(ctx context.Context, g *approvals.Gate, ch Channel) (*approvals.Gate, error) {
	log := loggerFrom(ctx)
	card, digest, err := s.renderShared(g)
	if err != nil {
		return nil, err
	}
	act := &bot.Activity{Type: bot.TypeMessage, Summary: cards.Summary(g),
		Attachments: []bot.Attachment{{ContentType: cards.ContentType, Content: card}}}
	chData := map[string]any{
		"channel": map[string]string{"id": ch.ConversationID},
		"tenant":  map[string]string{"id": ch.TenantID},
	}
	params := bot.ConversationParameters{IsGroup: true, TenantID: ch.TenantID, Activity: act, ChannelData: chData}
	if s.opt.BotID != "" {
		params.Bot = bot.ChannelAccount{ID: s.opt.BotID, Name: s.opt.BotName}
	}
	res, err := s.opt.Connector.CreateConversation(ctx, ch.ServiceURL, params)
	if err != nil {
		return nil, err
	}
	convID := res.ID
	if convID == "" && res.ActivityID != "" {
		convID = ch.ConversationID + ";messageid=" + res.ActivityID
	}
	if convID == "" {
		convID = ch.ConversationID
	}
	serviceURL := ch.ServiceURL
	ref := bot.ConversationReference{
		Bot:          bot.ChannelAccount{ID: s.opt.BotID, Name: s.opt.BotName},
		Conversation: bot.ConversationAccount{ID: convID, ConversationType: "channel", TenantID: ch.TenantID, IsGroup: true},
		ChannelID:    "msteams",
		ServiceURL:   serviceURL,
	}
	raw, _ := json.Marshal(ref)
	if res.ActivityID == "" {
		log.Warn("connector returned no activity id; the card cannot be updated in place")
	}
	ng, err := s.opt.Store.SetPost(ctx, g.ID, approvals.Post{Conversation: raw, ActivityID: res.ActivityID}, digest)
	if err != nil {
		// The card is up and its buttons work; only in-place updates are lost.
		log.Error("could not record where the card was posted", "err", err)
		g.Post = approvals.Post{Conversation: raw, ActivityID: res.ActivityID}
		return g, nil
	}
	return ng, nil
}
