package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/bot"
	"github.com/gatebot/gatebot/cards"
)

const (
	// dedupeTTL covers Teams' redeliveries of a slow turn: Teams retries an
	// activity the bot took more than 15 s to answer, within seconds to
	// minutes. An hour is ample; each marker is ~190 B of Redis, so a day
	// cost ~7.7 GiB at a steady 500 turns/s (the soak's finding).
	dedupeTTL = time.Hour
	// invokeBudget keeps card clicks well inside Teams' few-second window.
	invokeBudget = 4 * time.Second
	// asyncBudget bounds background work started by one turn.
	asyncBudget = 2 * time.Minute
)

// handleMessages is the Bot Framework messaging endpoint. Authentication
// happens before the body is parsed; the body is size-capped.
func (s *Server) handleMessages(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	log := loggerFrom(ctx)
	var id *bot.Identity
	if s.opt.Auth != nil {
		var err error
		authz := r.Header.Get("Authorization")
		id, err = s.opt.Auth.Authenticate(ctx, authz)
		if err != nil {
			reason := authToken
			if authz == "" {
				reason = authNoToken
			}
			s.metrics.AuthFailure(reason)
			log.Warn("inbound auth failed", "reason", err.Error())
			w.WriteHeader(http.StatusUnauthorized)
			return nil
		}
	}
	body, err := readBody(w, r, s.opt.MaxBody)
	if err != nil {
		return err
	}
	act, err := bot.DecodeActivity(body)
	if err != nil {
		return &HTTPError{Status: http.StatusBadRequest, Type: "bad-activity", Msg: "the body is not a valid activity", Err: err}
	}
	if id != nil {
		if err := id.Check(act.ServiceURL, act.ChannelID); err != nil {
			s.metrics.AuthFailure(authBinding)
			log.Warn("inbound auth failed", "reason", err.Error(), "channel_id", act.ChannelID)
			w.WriteHeader(http.StatusUnauthorized)
			return nil
		}
	}
	if err := s.opt.Trust.Check(act.ServiceURL); err != nil {
		s.metrics.Refused("service_url")
		log.Warn("refusing activity from an untrusted serviceUrl", "service_url", act.ServiceURL, "err", err)
		return &HTTPError{Status: http.StatusForbidden, Type: "untrusted-service-url", Msg: "serviceUrl is not trusted"}
	}
	log = log.With("activity_type", act.Type, "activity_id", act.ID, "conversation_id", act.Conversation.ID)
	ctx = withLogger(ctx, log)
	return s.handleTurn(ctx, w, act, id)
}

// handleTurn acts on an authenticated activity from a trusted serviceUrl
// and counts it by type and outcome.
func (s *Server) handleTurn(ctx context.Context, w http.ResponseWriter, act *bot.Activity, id *bot.Identity) (err error) {
	log := loggerFrom(ctx)
	ctx, turn := withTurn(ctx)
	var inv *bot.InvokeResponse
	defer func() { s.metrics.Activity(activityType(act.Type), activityOutcome(turn, err, inv)) }()
	if !s.checkTenant(ctx, w, act, id) {
		return nil
	}

	switch act.Type {
	case bot.TypeInvoke:
		start := time.Now()
		res, written := s.handleInvoke(ctx, act)
		inv = &res
		if err := res.Write(w); err != nil {
			log.Error("could not write the invoke response", "err", err)
		}
		s.metrics.Invoke(time.Since(start))
		// The answer is on its way before the shared update may follow.
		_ = http.NewResponseController(w).Flush()
		if written != nil {
			written(ctx)
		}
		return nil
	case bot.TypeMessage:
		return s.handleMessage(ctx, w, act)
	case bot.TypeConversationUpdate, bot.TypeInstallationUpdate:
		s.handleInstall(ctx, act)
		w.WriteHeader(http.StatusOK)
		return nil
	default:
		log.Debug("ignoring activity")
		w.WriteHeader(http.StatusOK)
		return nil
	}
}

// activityType is the activity's type as a metric label: the types Teams
// sends, anything else as "other" so a caller cannot mint label values.
func activityType(t string) string {
	switch t {
	case bot.TypeMessage, bot.TypeInvoke, bot.TypeConversationUpdate, bot.TypeInstallationUpdate,
		"messageReaction", "typing", "event", "endOfConversation", "messageUpdate", "messageDelete":
		return t
	}
	return "other"
}

// handleMessage acknowledges a message turn quickly. Work that must not be
// lost (opening a gate, recording a click) is done before the 200 so a
// failure makes Teams retry; posting cards continues asynchronously.
func (s *Server) handleMessage(ctx context.Context, w http.ResponseWriter, act *bot.Activity) error {
	log := loggerFrom(ctx)
	if act.ID != "" {
		first, err := s.opt.Store.Once(ctx, "act:"+act.Conversation.ID+"|"+act.ID, dedupeTTL)
		if err != nil {
			return s.storeDown(ctx, w, act, err)
		}
		if !first {
			log.Info("duplicate delivery acknowledged")
			w.WriteHeader(http.StatusOK)
			return nil
		}
	}
	if ca, ok := act.CardAction(); ok {
		// Action.Submit fallback from clients without Universal Actions.
		// The shared card follows from the store's outbox.
		msg := s.cardAction(ctx, act, ca)
		w.WriteHeader(http.StatusOK)
		if msg != "" {
			s.goAsync(ctx, asyncBudget, func(ctx context.Context) { s.reply(ctx, act, nil, msg) })
		}
		return nil
	}
	reply, err := s.runCommand(ctx, act)
	if err != nil {
		return s.storeDown(ctx, w, act, err)
	}
	w.WriteHeader(http.StatusOK)
	s.goAsync(ctx, asyncBudget, func(ctx context.Context) { reply(ctx) })
	return nil
}

// storeDownMessage is what a person sees when gatebot cannot record
// anything; it promises nothing that was not done.
const storeDownMessage = "gatebot cannot reach its store right now, so nothing was recorded. Please try again in a minute."

// storeDown answers a message turn that could not be recorded. The turn is
// acknowledged (a redelivery minutes later would open a gate nobody expects
// any more) and the sender is told, right away, that nothing happened.
func (s *Server) storeDown(ctx context.Context, w http.ResponseWriter, act *bot.Activity, err error) error {
	markTurn(ctx, outcomeUnavailable)
	loggerFrom(ctx).Error("message turn not recorded", "err", err, "store_unavailable", errors.Is(err, approvals.ErrUnavailable))
	w.WriteHeader(http.StatusOK)
	s.goAsync(ctx, asyncBudget, func(ctx context.Context) { s.reply(ctx, act, nil, storeDownMessage) })
	return nil
}

// replyRaw posts an already rendered card into the activity's
// conversation.
func (s *Server) replyRaw(ctx context.Context, act *bot.Activity, card json.RawMessage, summary string) (string, error) {
	out := &bot.Activity{Type: bot.TypeMessage, From: act.Recipient, Conversation: act.Conversation, Recipient: act.From, ReplyToID: act.ID,
		Summary: summary, Attachments: []bot.Attachment{{ContentType: cards.ContentType, Content: card}}}
	id, err := s.opt.Connector.SendToConversation(ctx, act.ServiceURL, act.Conversation.ID, out)
	if err != nil {
		loggerFrom(ctx).Error("could not send reply", "err", err)
	}
	return id, err
}

// reply posts a card or a text message into the activity's conversation.
func (s *Server) reply(ctx context.Context, act *bot.Activity, card *cards.Card, text string) (string, error) {
	out := &bot.Activity{Type: bot.TypeMessage, From: act.Recipient, Conversation: act.Conversation, Recipient: act.From, ReplyToID: act.ID}
	if card != nil {
		out.Attachments = []bot.Attachment{{ContentType: cards.ContentType, Content: card}}
	} else {
		out.Text = text
		out.TextFormat = "plain"
	}
	id, err := s.opt.Connector.SendToConversation(ctx, act.ServiceURL, act.Conversation.ID, out)
	if err != nil {
		loggerFrom(ctx).Error("could not send reply", "err", err)
	}
	return id, err
}

// handleInstall keeps the conversation reference of every conversation the
// bot is installed in, so gates can be posted there proactively.
func (s *Server) handleInstall(ctx context.Context, act *bot.Activity) {
	log := loggerFrom(ctx)
	added, removed := false, false
	switch act.Type {
	case bot.TypeInstallationUpdate:
		added = strings.HasPrefix(act.Action, "add")
		removed = strings.HasPrefix(act.Action, "remove")
	case bot.TypeConversationUpdate:
		for _, m := range act.MembersAdded {
			added = added || m.ID == act.Recipient.ID
		}
		for _, m := range act.MembersRemoved {
			removed = removed || m.ID == act.Recipient.ID
		}
	}
	key := act.Conversation.ID
	switch {
	case added:
		ref, _ := json.Marshal(act.Reference())
		if err := s.opt.Store.PutConversation(ctx, key, ref); err != nil {
			log.Error("could not save conversation reference", "err", err)
			return
		}
		log.Info("bot installed in conversation", "conversation_type", act.Conversation.ConversationType)
		if act.Type == bot.TypeConversationUpdate || act.Action == "add" { // not on add-upgrade
			s.goAsync(ctx, asyncBudget, func(ctx context.Context) { s.hello(ctx, act) })
		}
	case removed:
		if err := s.opt.Store.DeleteConversation(ctx, key); err != nil {
			log.Error("could not delete conversation reference", "err", err)
			return
		}
		log.Info("bot removed from conversation")
	}
}

// identityUnconfirmed is the answer when a UPN is needed and Teams could
// not be asked for it: the person may well be allowed, so do not say no.
const identityUnconfirmed = "I couldn't confirm your identity with Teams just now; please try again in a moment."

// errNoUPN reports a failed member lookup.
var errNoUPN = errors.New("member lookup failed")

// person is who sent the activity, as the authenticated channel says:
// never from card data. With needUPN the user principal name is looked up
// through the connector; a failed lookup is an error, not an empty UPN that
// an allow-list would quietly refuse.
func (s *Server) person(ctx context.Context, act *bot.Activity, needUPN bool) (approvals.Person, error) {
	p := approvals.Person{ID: act.From.ID, AADObjectID: act.From.AadObjectID, Name: act.From.Name}
	if !needUPN {
		return p, nil
	}
	conv := memberConversation(act)
	key := conv + "|" + act.From.ID
	if upn, ok := s.members.get(key); ok {
		p.UPN = upn
		return p, nil
	}
	m, err := s.opt.Connector.GetMember(ctx, act.ServiceURL, conv, act.From.ID)
	if err != nil {
		loggerFrom(ctx).Warn("member lookup failed", "err", err)
		return p, fmt.Errorf("%w: %w", errNoUPN, err)
	}
	s.members.put(key, m.UserPrincipalName)
	p.UPN = m.UserPrincipalName
	return p, nil
}

// memberConversation is where a member of act's conversation is looked up:
// the team of a channel (as Teams' own SDK does), else the conversation,
// a channel thread by its channel.
func memberConversation(act *bot.Activity) string {
	if act.Conversation.ConversationType == "channel" {
		if team := act.TeamsChannelData().Team.ID; team != "" {
			return team
		}
	}
	return bot.ConversationKey(act.Conversation.ID)
}
