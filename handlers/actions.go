package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/bot"
	"github.com/gatebot/gatebot/cards"
	"github.com/gatebot/gatebot/engine"
	"github.com/gatebot/gatebot/pipelines"
)

// holdFor bounds how long a click's own answer keeps the shared card
// update back (see approvals.Store.HoldCard): past the invoke budget and
// the time to write the answer.
const holdFor = invokeBudget + 4*time.Second

// relayTimeout bounds one call telling a provider of a rejection.
const relayTimeout = 30 * time.Second

// handleInvoke answers invokes synchronously. Card clicks always get HTTP
// 200 with an InvokeResponse body, or Teams shows "Unable to reach app".
// The answer is the card rendered from the gate after the click's decision;
// written, when not nil, must run once the answer is written, to let the
// shared update of the same change go out after it.
func (s *Server) handleInvoke(ctx context.Context, act *bot.Activity) (bot.InvokeResponse, func(context.Context)) {
	log := loggerFrom(ctx)
	if act.Name != "adaptiveCard/action" {
		log.Info("unsupported invoke", "invoke_name", act.Name)
		return bot.NotImplementedResponse(), nil
	}
	ca, ok := act.CardAction()
	if !ok {
		return bot.ErrorResponse(400, "BadRequest", "the card action carries no data"), nil
	}
	if data, err := cards.ParseActionData(ca.Data); err == nil && (data.Verb == cards.VerbForm || data.Verb == cards.VerbRun) {
		ctx, cancel := context.WithTimeout(ctx, invokeBudget)
		defer cancel()
		return s.formAnswer(ctx, act, data), nil
	}
	ctx, cancel := context.WithTimeout(ctx, invokeBudget)
	defer cancel()
	res := s.cardActionResult(ctx, act, ca, true)
	var written func(context.Context)
	if res.held != "" {
		id := res.held
		written = func(ctx context.Context) {
			if err := s.opt.Store.ReleaseCard(context.WithoutCancel(ctx), id); err != nil {
				loggerFrom(ctx).Warn("could not release the held card update; it goes out when the hold ends", "gate_id", id, "err", err)
			}
		}
	}
	switch {
	case res.unavailable:
		// 500: the protocol's error answers carry 400 or 500.
		return bot.ErrorResponse(500, "ServiceUnavailable", "gatebot cannot record decisions right now; please try again in a moment"), written
	case res.card != nil:
		return bot.CardResponse(res.card), written
	case res.gate == nil:
		return bot.MessageResponse(res.message), written
	}
	return bot.CardResponse(s.gateCardTone(res.gate, res.notice, res.tone)), written
}

// cardAction handles an Action.Submit click arriving as a message. It
// returns a message for the clicker, since a Submit cannot be answered
// with a card; the shared card follows from the store's outbox.
func (s *Server) cardAction(ctx context.Context, act *bot.Activity, ca bot.CardAction) string {
	res := s.cardActionResult(ctx, act, ca, false)
	switch {
	case res.unavailable:
		return storeDownMessage
	case res.gate == nil:
		return res.message
	}
	return res.notice
}

type actionResult struct {
	card        *cards.Card     // answered instead of the gate's card, when set
	gate        *approvals.Gate // nil when there is no gate to show
	changed     bool            // the gate changed
	held        string          // the gate whose shared card update is held
	notice      string          // shown to the clicker only
	tone        cards.Tone      // of the notice
	message     string          // when gate is nil
	unavailable bool
}

func (s *Server) cardActionResult(ctx context.Context, act *bot.Activity, ca bot.CardAction, answered bool) actionResult {
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
	s.adoptCard(ctx, g, act)
	p := s.opt.Pipelines[g.Pipeline]
	// A requester known only by UPN (an API token's owner) is recognised
	// in Teams only through the clicker's UPN: self-approval, and the
	// requester's own cancel, retry and reject, depend on it.
	requesterByUPN := g.Requester.UPN != "" && g.Requester.AADObjectID == ""
	who, err := s.person(ctx, act, g.Policy.NeedsUPN() || requesterByUPN)
	if err != nil {
		return actionResult{gate: g, tone: cards.ToneRefusal, notice: identityUnconfirmed}
	}
	reason := truncate(strings.TrimSpace(data.Reason), approvals.MaxReason)
	if verb == cards.VerbApprove || verb == cards.VerbReject {
		// A duplicate click (Teams users double-tap; the second arrives
		// while the first is recorded) or a click on a decided gate is
		// refused from the gate just read, without a transaction: such a
		// refusal is final (approvals.Gate.CanVote).
		if err := g.CanVote(who, verb == cards.VerbApprove, s.opt.Now()); err != nil {
			log.Info("vote refused", "reason", err.Error())
			return actionResult{gate: g, tone: cards.ToneRefusal, notice: voteNotice(err, g)}
		}
	}
	// The click's answer will show the gate after this decision; the
	// shared update of the same change must not land before it. A vote
	// holds the card in its own script (DecideHeld), and only if it
	// changes the gate; the rarer verbs hold it first.
	hold := answered && verb != cards.VerbRefresh && verb != cards.VerbConfirmApprove
	held := ""
	if hold && verb != cards.VerbApprove && verb != cards.VerbReject {
		if err := s.opt.Store.HoldCard(ctx, g.ID, holdFor); err != nil {
			log.Warn("could not hold the shared card update", "err", err)
		} else {
			held = g.ID
		}
	}
	res := s.decide(ctx, g, p, verb, who, reason, act.Conversation.ID, hold)
	if held != "" {
		res.held = held
	}
	return res
}

// adoptCard records the clicked message as g's card when g has none on
// record: a replica died after Teams took the card and before SetPost
// recorded its id, and without it no update could ever reach the card.
// A click comes from the card itself, so its replyToId names it.
func (s *Server) adoptCard(ctx context.Context, g *approvals.Gate, act *bot.Activity) {
	if g.Post.ActivityID != "" || act.ReplyToID == "" {
		return
	}
	post := g.Post
	if len(post.Conversation) == 0 {
		post.Conversation, _ = json.Marshal(act.Reference())
	}
	post.ActivityID = act.ReplyToID
	ng, err := s.opt.Store.SetPost(ctx, g.ID, post, "")
	if err != nil {
		loggerFrom(ctx).Warn("could not record the clicked card as the gate's card", "err", err)
		return
	}
	loggerFrom(ctx).Warn("the gate had no card on record; the clicked one is its card from now on", "activity_id", act.ReplyToID)
	*g = *ng
}

// decide carries out a clicked verb on g; hold: a vote holds the shared
// card update for the click's answer.
func (s *Server) decide(ctx context.Context, g *approvals.Gate, p *Pipeline, verb string, who approvals.Person, reason, where string, hold bool) actionResult {
	switch verb {
	case cards.VerbApprove, cards.VerbReject:
		return s.vote(ctx, g.ID, who, verb == cards.VerbApprove, reason, where, hold)
	case cards.VerbCancel:
		return s.cancel(ctx, g, p, who, reason)
	case cards.VerbRetry:
		return s.retry(ctx, g, who)
	case cards.VerbRefresh:
		return actionResult{gate: g}
	case cards.VerbConfirmApprove:
		// approval.confirm: ask before recording; Confirm sends VerbApprove.
		return actionResult{gate: g, card: cards.ConfirmApprove(g, s.cardView(g, "", cards.ToneInfo))}
	default:
		return actionResult{gate: g, tone: cards.ToneRefusal, notice: fmt.Sprintf("Unknown action %q.", verb)}
	}
}

func (s *Server) vote(ctx context.Context, id string, who approvals.Person, approve bool, reason, where string, hold bool) actionResult {
	log := loggerFrom(ctx)
	var (
		g       *approvals.Gate
		outcome approvals.Outcome
		err     error
	)
	if hold {
		g, outcome, err = s.opt.Store.DecideHeld(ctx, id, who, approve, reason, where, holdFor)
	} else {
		g, outcome, err = s.opt.Store.Decide(ctx, id, who, approve, reason, where)
	}
	if err != nil {
		if errors.Is(err, approvals.ErrUnavailable) || g == nil {
			log.Error("could not record vote", "err", err)
			return actionResult{unavailable: true}
		}
		log.Info("vote refused", "reason", err.Error())
		return actionResult{gate: g, tone: cards.ToneRefusal, notice: voteNotice(err, g)}
	}
	log.Info("vote recorded", "outcome", outcome, "approve", approve)
	if outcome == approvals.OutcomeRejected {
		s.relayRejection(ctx, g, reason)
	}
	notice := ""
	if outcome == approvals.OutcomeRecorded {
		notice = fmt.Sprintf("Your approval is recorded (%d of %d).", len(g.Approvals()), max(g.Policy.Required, 1))
	}
	res := actionResult{gate: g, changed: true, tone: cards.ToneSuccess, notice: notice}
	if hold {
		res.held = id
	}
	return res
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
		return actionResult{gate: g, tone: cards.ToneRefusal, notice: "Only the requester or an approver may cancel this."}
	}
	switch g.State {
	case approvals.StateTriggering:
		return actionResult{gate: g, tone: cards.ToneRefusal, notice: "The run is starting; cancel it once the card shows it running."}
	case approvals.StateRunning:
		c, ok := providerCanceler(p)
		if !ok || g.Run == nil {
			return actionResult{gate: g, tone: cards.ToneRefusal, notice: "This run cannot be cancelled from Teams."}
		}
		if err := c.Cancel(ctx, *g.Run); err != nil {
			log.Error("provider refused to cancel", "err", err)
			return actionResult{gate: g, tone: cards.ToneRefusal, notice: "The provider did not cancel the run: " + engine.SafeProviderMessage(err)}
		}
		// The provider may still finish the run (some cancel at the next
		// step that supports it): the gate stays running until polling
		// sees the run end, and then names who cancelled it.
		ng, err := s.opt.Store.RunCancelRequested(ctx, g.ID, who, reason)
		if err != nil {
			return s.refused(ctx, ng, err, "Cancellation requested at the provider; the card will follow.")
		}
		log.Info("run cancellation requested")
		return actionResult{gate: ng, changed: true, tone: cards.ToneSuccess, notice: "Cancellation requested."}
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
		return actionResult{gate: g, tone: cards.ToneRefusal, notice: "Only the requester or an approver may retry this."}
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
	return actionResult{gate: g, tone: cards.ToneRefusal, notice: notice}
}

// relayRejection tells providers that wait for the decision (a
// ServiceStage release task waiting at an approval task) that the gate
// ended without approval.
func (s *Server) relayRejection(ctx context.Context, g *approvals.Gate, reason string) {
	p := s.opt.Pipelines[g.Pipeline]
	if p == nil {
		return
	}
	ep := &engine.Pipeline{Def: p.Def, Provider: p.Provider}
	s.goAsync(ctx, asyncBudget, func(ctx context.Context) {
		if err := engine.RelayRejection(ctx, ep, g, reason, relayTimeout); err != nil {
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

// truncate shortens s to at most n runes.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
