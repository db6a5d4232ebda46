package handlers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cenkalti/backoff/v5"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/bot"
	"github.com/gatebot/gatebot/cards"
	"github.com/gatebot/gatebot/pipelines"
)

// handleInvoke answers invokes synchronously. Card clicks always get HTTP
// 200 with an InvokeResponse body, or Teams shows "Unable to reach app".
func (s *Server) handleInvoke(ctx context.Context, act *bot.Activity) bot.InvokeResponse {
	log := loggerFrom(ctx)
	if act.Name != "adaptiveCard/action" {
		log.Info("unsupported invoke", "invoke_name", act.Name)
		return bot.NotImplementedResponse()
	}
	ca, ok := act.CardAction()
	if !ok {
		return bot.ErrorResponse(400, "BadRequest", "the card action carries no data")
	}
	ctx, cancel := context.WithTimeout(ctx, invokeBudget)
	defer cancel()
	res := s.cardActionResult(ctx, act, ca)
	switch {
	case res.unavailable:
		// 500: the protocol's error answers carry 400 or 500.
		return bot.ErrorResponse(500, "ServiceUnavailable", "gatebot cannot record decisions right now; please try again in a moment")
	case res.gate == nil:
		return bot.MessageResponse(res.message)
	}
	if res.changed {
		g := res.gate
		s.goAsync(ctx, asyncBudget, func(ctx context.Context) { s.changed(ctx, g) })
	}
	return bot.CardResponse(s.gateCard(res.gate, res.notice))
}

// cardAction handles an Action.Submit click arriving as a message. It
// returns the gate whose card should be refreshed and a message for the
// clicker, since a Submit cannot be answered with a card.
func (s *Server) cardAction(ctx context.Context, act *bot.Activity, ca bot.CardAction) (*approvals.Gate, string) {
	res := s.cardActionResult(ctx, act, ca)
	switch {
	case res.unavailable:
		return nil, storeDownMessage
	case res.gate == nil:
		return nil, res.message
	}
	return res.gate, res.notice
}

type actionResult struct {
	gate        *approvals.Gate // nil when there is no gate to show
	changed     bool            // the gate changed: refresh the shared card
	notice      string          // shown to the clicker only
	message     string          // when gate is nil
	unavailable bool
}

func (s *Server) cardActionResult(ctx context.Context, act *bot.Activity, ca bot.CardAction) actionResult {
	log := loggerFrom(ctx)
	data, err := cards.ParseActionData(ca.Data)
	if err != nil {
		log.Info("card action with unreadable data", "err", err)
		return actionResult{message: "That button is not one of gatebot's."}
	}
	verb := ca.Verb
	if verb == "" {
		verb = data.Verb
	}
	log = log.With("gate_id", data.GateID, "verb", verb)
	ctx = withLogger(ctx, log)
	g, err := s.opt.Store.Get(ctx, data.GateID)
	switch {
	case errors.Is(err, approvals.ErrNotFound):
		return actionResult{message: "This approval gate no longer exists."}
	case err != nil:
		log.Error("could not load gate", "err", err)
		return actionResult{unavailable: true}
	}
	if !postedIn(g, act) {
		// Gate ids travel in API answers, callbacks and CI logs: knowing
		// one must not let a click from another chat act on the gate.
		s.foreignGate(ctx, g, act)
		return actionResult{message: notInConversation}
	}
	p := s.opt.Pipelines[g.Pipeline]
	// A requester known only by UPN (an API token's owner) is recognised
	// in Teams only through the clicker's UPN: self-approval, and the
	// requester's own cancel, retry and reject, depend on it.
	requesterByUPN := g.Requester.UPN != "" && g.Requester.AADObjectID == ""
	who, err := s.person(ctx, act, g.Policy.NeedsUPN() || requesterByUPN)
	if err != nil {
		return actionResult{gate: g, notice: identityUnconfirmed}
	}
	reason := truncate(strings.TrimSpace(data.Reason), approvals.MaxReason)
	switch verb {
	case cards.VerbApprove, cards.VerbReject:
		return s.vote(ctx, g.ID, who, verb == cards.VerbApprove, reason, act.Conversation.ID)
	case cards.VerbCancel:
		return s.cancel(ctx, g, p, who, reason)
	case cards.VerbRetry:
		return s.retry(ctx, g, who)
	case cards.VerbRefresh:
		return actionResult{gate: g}
	default:
		return actionResult{gate: g, notice: fmt.Sprintf("Unknown action %q.", verb)}
	}
}

func (s *Server) vote(ctx context.Context, id string, who approvals.Person, approve bool, reason, where string) actionResult {
	log := loggerFrom(ctx)
	g, outcome, err := s.opt.Store.Decide(ctx, id, who, approve, reason, where)
	if err != nil {
		if errors.Is(err, approvals.ErrUnavailable) || g == nil {
			log.Error("could not record vote", "err", err)
			return actionResult{unavailable: true}
		}
		log.Info("vote refused", "reason", err.Error())
		return actionResult{gate: g, notice: voteNotice(err, g)}
	}
	log.Info("vote recorded", "outcome", outcome, "approve", approve)
	if outcome == approvals.OutcomeRejected {
		s.relayRejection(ctx, g, reason)
	}
	notice := ""
	if outcome == approvals.OutcomeRecorded {
		notice = fmt.Sprintf("Your approval is recorded (%d of %d).", len(g.Approvals()), max(g.Policy.Required, 1))
	}
	return actionResult{gate: g, changed: true, notice: notice}
}

func voteNotice(err error, g *approvals.Gate) string {
	var te *approvals.TransitionError
	switch {
	case errors.Is(err, approvals.ErrAlreadyVoted):
		return "You already voted on this gate."
	case errors.Is(err, approvals.ErrSelfApproval):
		return "You requested this run, so someone else has to approve it."
	case errors.Is(err, approvals.ErrNotEligible):
		return "You are not an approver for " + g.Pipeline + "."
	case errors.Is(err, approvals.ErrExpired):
		return "This gate has expired."
	case errors.Is(err, approvals.ErrNotPending), errors.As(err, &te):
		return "This gate was already decided."
	}
	return "Your decision could not be recorded."
}

func (s *Server) cancel(ctx context.Context, g *approvals.Gate, p *Pipeline, who approvals.Person, reason string) actionResult {
	log := loggerFrom(ctx)
	if !approvals.MayManage(g, who) {
		return actionResult{gate: g, notice: "Only the requester or an approver may cancel this."}
	}
	switch g.State {
	case approvals.StateTriggering:
		return actionResult{gate: g, notice: "The run is starting; cancel it once the card shows it running."}
	case approvals.StateRunning:
		c, ok := providerCanceler(p)
		if !ok || g.Run == nil {
			return actionResult{gate: g, notice: "This run cannot be cancelled from Teams."}
		}
		if err := c.Cancel(ctx, toRun(g.Run)); err != nil {
			log.Error("provider refused to cancel", "err", err)
			return actionResult{gate: g, notice: "The provider did not cancel the run: " + safeProviderMessage(err)}
		}
		// The provider may still finish the run (some cancel at the next
		// step that supports it): the gate stays running until polling
		// sees the run end, and then names who cancelled it.
		ng, err := s.opt.Store.RunCancelRequested(ctx, g.ID, who, reason)
		if err != nil {
			return s.refused(ctx, ng, err, "Cancellation requested at the provider; the card will follow.")
		}
		log.Info("run cancellation requested")
		return actionResult{gate: ng, changed: true, notice: "Cancellation requested."}
	}
	ng, err := s.opt.Store.Cancel(ctx, g.ID, who, reason)
	if err != nil {
		return s.refused(ctx, ng, err, "This gate can no longer be cancelled.")
	}
	log.Info("gate cancelled")
	s.relayRejection(ctx, ng, "cancelled by "+who.Display())
	return actionResult{gate: ng, changed: true}
}

func (s *Server) retry(ctx context.Context, g *approvals.Gate, who approvals.Person) actionResult {
	if !approvals.MayManage(g, who) {
		return actionResult{gate: g, notice: "Only the requester or an approver may retry this."}
	}
	ng, err := s.opt.Store.Retry(ctx, g.ID, who)
	if err != nil {
		return s.refused(ctx, ng, err, "Only a failed trigger can be retried.")
	}
	loggerFrom(ctx).Info("trigger retry requested")
	return actionResult{gate: ng, changed: true, notice: "Retrying…"}
}

// refused turns a store error into what the clicker sees.
func (s *Server) refused(ctx context.Context, g *approvals.Gate, err error, notice string) actionResult {
	if g == nil || errors.Is(err, approvals.ErrUnavailable) {
		loggerFrom(ctx).Error("store update failed", "err", err)
		return actionResult{unavailable: true}
	}
	return actionResult{gate: g, notice: notice}
}

// relayRejection tells providers that wait for the decision (a
// ServiceStage release task waiting at an approval task) that the gate ended without approval.
func (s *Server) relayRejection(ctx context.Context, g *approvals.Gate, reason string) {
	p := s.opt.Pipelines[g.Pipeline]
	if p == nil {
		return
	}
	rj, ok := p.Provider.(pipelines.Rejecter)
	if !ok {
		return
	}
	by := "gatebot"
	if g.DecidedBy != nil {
		by = g.DecidedBy.Display()
	}
	req := pipelines.Request{GateID: g.ID, Pipeline: g.Pipeline, Target: p.Def.Target, Message: g.Message,
		Requester: g.Requester.Display(), Approvers: []string{by}}
	s.goAsync(ctx, asyncBudget, func(ctx context.Context) {
		_, err := backoff.Retry(ctx, func() (struct{}, error) {
			cctx, cancel := context.WithTimeout(ctx, providerTimeout)
			defer cancel()
			err := rj.Reject(cctx, req, reason)
			if err != nil && !pipelines.IsTemporary(err) {
				return struct{}{}, backoff.Permanent(err)
			}
			return struct{}{}, err
		}, backoff.WithMaxTries(5), backoff.WithMaxElapsedTime(asyncBudget/2))
		if err != nil {
			loggerFrom(ctx).Error("could not relay the rejection to the provider", "gate_id", g.ID, "err", err)
		}
	})
}

func providerCanceler(p *Pipeline) (pipelines.Canceler, bool) {
	if p == nil {
		return nil, false
	}
	c, ok := p.Provider.(pipelines.Canceler)
	return c, ok
}

func toRun(r *approvals.RunInfo) pipelines.Run {
	return pipelines.Run{ID: r.ID, URL: r.URL, Status: pipelines.Status(r.Status), Detail: r.Detail, Ref: r.Ref}
}

func fromRun(r pipelines.Run) approvals.RunInfo {
	return approvals.RunInfo{ID: r.ID, URL: r.URL, Status: string(r.Status), Detail: r.Detail, Ref: r.Ref}
}

// safeProviderMessage is what of a provider error may be shown in Teams:
// the provider's own code and message, never request details.
func safeProviderMessage(err error) string {
	var ae *pipelines.APIError
	if errors.As(err, &ae) {
		msg := ae.Message
		if msg == "" && ae.StatusCode != 0 {
			msg = fmt.Sprintf("HTTP %d", ae.StatusCode)
		}
		if ae.Code != "" {
			msg = ae.Code + ": " + msg
		}
		if msg == "" {
			msg = "the provider could not be reached"
		}
		return truncate(msg, 300)
	}
	if errors.Is(err, pipelines.ErrNoRun) {
		return "the provider accepted the request but started no run"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "the provider did not answer in time"
	}
	return "the provider call failed"
}

// truncate shortens s to at most n runes.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
