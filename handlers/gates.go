package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/bot"
	"github.com/gatebot/gatebot/cards"
	"github.com/gatebot/gatebot/pipelines"
)

// messageKeys are command keys that set the gate's message rather than an
// input, unless the pipeline declares an input of that name.
var messageKeys = []string{"message", "msg"}

// runCommand handles a chat command. Work that must not be lost is done
// here; the returned function posts the answer and runs after the 200.
// The error is non-nil only when the turn should be retried by Teams.
func (s *Server) runCommand(ctx context.Context, act *bot.Activity) (func(context.Context), error) {
	text := act.TextWithoutRecipientMention()
	say := func(msg string) func(context.Context) {
		return func(ctx context.Context) { s.reply(ctx, act, nil, msg) }
	}
	show := func(c *cards.Card) func(context.Context) {
		return func(ctx context.Context) { s.reply(ctx, act, c, "") }
	}
	cmd, err := parseCommand(text)
	if err != nil {
		return say("I could not read that command: " + strings.TrimPrefix(err.Error(), errSyntax.Error()+": ") +
			". Example: /run deploy-api version=1.4.2 msg=\"hotfix\""), nil
	}
	switch cmd.Name {
	case "run":
		return s.openFromChat(ctx, act, cmd)
	case "channel":
		return s.channelCommand(ctx, act, cmd)
	case "pipelines", "list":
		return show(cards.PipelineList(s.pipelineInfos())), nil
	case "help", "":
		return s.help(act), nil
	case "pending":
		return s.pendingCommand(ctx, act)
	case "status":
		return s.statusCommand(ctx, act, cmd)
	case "cancel":
		return s.cancelCommand(ctx, act, cmd, text)
	default:
		return say(unknownCommand(cmd.Name)), nil
	}
}

func (s *Server) openFromChat(ctx context.Context, act *bot.Activity, cmd command) (func(context.Context), error) {
	log := loggerFrom(ctx)
	say := func(msg string) func(context.Context) {
		return func(ctx context.Context) { s.reply(ctx, act, nil, msg) }
	}
	if len(cmd.Args) == 0 {
		return s.help(act), nil
	}
	name := cmd.Args[0]
	p, ok := s.opt.Pipelines[name]
	if !ok {
		return say(s.unknownPipeline(name)), nil
	}
	if len(cmd.Args) > 1 {
		return say(fmt.Sprintf("Unexpected %q: inputs are written key=value, e.g. /run %s %s", cmd.Args[1], name, exampleInputs(p.Def))), nil
	}
	requester, err := s.person(ctx, act, needsUPN(p.Runners) || p.Policy.NeedsUPN())
	if err != nil {
		return say(identityUnconfirmed), nil
	}
	raw := make(map[string]any, len(cmd.KV))
	message := ""
	for _, k := range cmd.Keys {
		if _, declared := p.Def.Inputs[k]; !declared && slices.Contains(messageKeys, k) {
			message = cmd.KV[k]
			continue
		}
		raw[k] = cmd.KV[k]
	}
	g, err := s.openInConversation(ctx, act, name, p, requester, raw, message)
	var (
		ie  pipelines.InputErrors
		inv *approvals.InvalidError
	)
	switch {
	case errors.Is(err, approvals.ErrNotRunner):
		log.Info("run refused: not a runner", "pipeline", name, "user_id", requester.ID)
		return say(fmt.Sprintf("You are not allowed to run %s.", name)), nil
	case errors.As(err, &ie):
		lines := make([]string, len(ie))
		for i, e := range ie {
			lines[i] = "• " + e.Error()
		}
		return func(ctx context.Context) {
			s.reply(ctx, act, cards.Notice("Cannot run "+name, append(lines, "Example: /run "+name+" "+exampleInputs(p.Def))...), "")
		}, nil
	case errors.As(err, &inv):
		return say(fmt.Sprintf("Cannot run %s: the %s %s.", name, inv.Field, inv.Reason)), nil
	case errors.Is(err, approvals.ErrUnavailable):
		return nil, err
	case err != nil:
		log.Error("could not open gate", "err", err)
		return say("Sorry, I could not open the approval gate. Please try again."), nil
	}
	log.Info("gate opened", "gate_id", g.ID, "pipeline", name)
	return func(ctx context.Context) {
		if s.claimPost(ctx, g) {
			s.endPost(ctx, g, s.postGate(ctx, act, g))
		}
	}, nil
}

// openInConversation opens a gate asked for in act's conversation, bound
// to it and its tenant; its card is to be posted there.
func (s *Server) openInConversation(ctx context.Context, act *bot.Activity, name string, p *Pipeline, requester approvals.Person, raw map[string]any, message string) (*approvals.Gate, error) {
	ref, _ := json.Marshal(act.Reference())
	g, _, err := s.opt.Store.Open(ctx, approvals.Opening{
		Pipeline: name, Schema: p.Def, Runners: p.Runners, Policy: p.Policy,
		RawInputs: raw, Message: message, Requester: requester, Origin: "teams",
		Tenant: tenantOf(act), Conversations: []string{bot.ConversationKey(act.Conversation.ID)},
		Post: approvals.Post{Conversation: ref},
	})
	return g, err
}

// postGate posts the gate's card as a reply and records where it is. A
// card that cannot be posted cancels the gate, so nothing waits on it
// silently.
func (s *Server) postGate(ctx context.Context, act *bot.Activity, g *approvals.Gate) error {
	log := loggerFrom(ctx).With("gate_id", g.ID)
	s.resolveApprovers(ctx, g)
	raw, digest, err := s.renderShared(g)
	if err != nil {
		return err
	}
	id, err := s.replyRaw(ctx, act, raw, cards.Summary(g))
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return err // shutdown cut it short: another replica posts it (endPost)
	case postLater(err):
		// The Connector failed for now (5xx, throttled, unreachable): the
		// gate stays pending and the unposted sweep tries again (endPost),
		// rather than cancel a gate its requester is waiting for.
		log.Warn("could not post the approval card yet; the sweep tries again", "err", err, "retry_in", s.opt.PostRetry.String())
		return fmt.Errorf("%w: %w", errPostLater, err)
	default:
		s.abandon(ctx, g, "could not post the approval card")
		return err
	}
	if id == "" {
		log.Warn("connector returned no activity id; the card cannot be updated in place")
	}
	// The card is up: recording where must not be cut short, or another
	// replica would post it again.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordPostBudget)
	defer cancel()
	if err := s.recordPost(rctx, g.ID, approvals.Post{Conversation: g.Post.Conversation, ActivityID: id}, digest); err != nil {
		log.Error("could not record the card's activity id", "err", err)
		return err
	}
	return nil
}

// defaultPostRetry is when the sweep tries again a card post the
// Connector failed for now (Options.PostRetry).
const defaultPostRetry = 30 * time.Second

// errPostLater marks a card post that failed for now (postLater).
var errPostLater = errors.New("card post deferred")

// postLater reports whether a failed post is worth trying again: the
// Connector answered 5xx, 408 or 429 (after the client's own retries), or
// could not be reached. A refusal (403 bot not in the conversation, 404
// conversation gone, 400) or an untrusted serviceUrl never gets better.
func postLater(err error) bool {
	if errors.Is(err, bot.ErrUntrustedServiceURL) || errors.Is(err, bot.ErrUnauthorized) {
		return false
	}
	var ae *bot.APIError
	if errors.As(err, &ae) {
		return ae.StatusCode >= 500 || ae.StatusCode == 408 || ae.StatusCode == 429
	}
	return true
}

// recordPostBudget bounds recording a posted card's activity id, retries
// while the store is unavailable included: a Redis restart or failover
// takes seconds.
const recordPostBudget = 30 * time.Second

// recordPost records a card that is up (SetPost), retrying while the store
// is unavailable until ctx ends. The card is already in Teams: without its
// activity id no update reaches it, and once the post lease ends the
// unposted sweep would post the gate a second card.
func (s *Server) recordPost(ctx context.Context, id string, post approvals.Post, digest string) error {
	return approvals.RetryUnavailable(ctx, time.Time{}, func() error {
		_, err := s.opt.Store.SetPost(ctx, id, post, digest)
		return err
	}, func(err error, wait time.Duration) {
		loggerFrom(ctx).Warn("could not record the card's activity id yet; retrying", "err", err, "retry_in", wait)
	})
}

// abandon cancels a gate nobody can see, so nothing waits on it silently.
func (s *Server) abandon(ctx context.Context, g *approvals.Gate, why string) {
	log := loggerFrom(ctx).With("gate_id", g.ID)
	if _, err := s.opt.Store.Cancel(ctx, g.ID, approvals.Person{ID: "gatebot", Name: "gatebot"}, why); err != nil {
		log.Error("could not cancel an unposted gate", "err", err)
		return
	}
	log.Warn("gate cancelled", "reason", why)
}

func (s *Server) unknownPipeline(name string) string {
	names := make([]string, 0, len(s.opt.Pipelines))
	for n := range s.opt.Pipelines {
		names = append(names, n)
	}
	sort.Strings(names)
	msg := fmt.Sprintf("There is no pipeline %q.", name)
	if c := closest(name, names); c != "" {
		msg += fmt.Sprintf(" Did you mean %s?", c)
	}
	if len(names) > 0 {
		msg += " Known pipelines: " + strings.Join(names, ", ") + "."
	}
	return msg
}

func exampleInputs(d *pipelines.Definition) string {
	var parts []string
	for _, n := range d.InputNames() {
		in := d.Inputs[n]
		if !in.Required {
			continue
		}
		v := "…"
		switch {
		case len(in.Enum) > 0:
			v = in.Enum[0]
		case in.Type == pipelines.TypeBoolean:
			v = "true"
		case in.Type == pipelines.TypeNumber:
			v = "1"
		}
		parts = append(parts, n+"="+v)
	}
	return strings.Join(parts, " ")
}

func needsUPN(list []string) bool {
	return approvals.Policy{Approvers: list}.NeedsUPN()
}

func (s *Server) pipelineInfos() []cards.PipelineInfo {
	names := make([]string, 0, len(s.opt.Pipelines))
	for n := range s.opt.Pipelines {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]cards.PipelineInfo, 0, len(names))
	for _, n := range names {
		p := s.opt.Pipelines[n]
		info := cards.PipelineInfo{Name: n, Description: p.Def.Description}
		for _, in := range p.Def.InputNames() {
			d := p.Def.Inputs[in]
			ii := cards.InputInfo{Name: in, Type: string(d.Type), Description: d.Description, Required: d.Required,
				Enum: d.Enum, Pattern: d.Pattern}
			if d.Default != nil {
				ii.Default = fmt.Sprint(d.Default)
			}
			info.Inputs = append(info.Inputs, ii)
		}
		out = append(out, info)
	}
	return out
}

// help answers with the usage card, rendered once: the pipelines do not
// change while gatebot runs, and a help turn is the commonest turn there is.
func (s *Server) help(act *bot.Activity) func(context.Context) {
	s.helpOnce.Do(func() {
		raw, err := json.Marshal(cards.HelpFor(s.opt.BotName, s.pipelineInfos()))
		if err != nil {
			panic(fmt.Sprintf("help card does not encode: %v", err)) // built from config alone: a bug
		}
		s.helpRaw = raw
	})
	return func(ctx context.Context) { s.replyRaw(ctx, act, s.helpRaw, "How to use gatebot") }
}

// gateCard renders g as everyone should see it, or, with a notice, as the
// clicker should (a neutral notice; see gateCardTone).
func (s *Server) gateCard(g *approvals.Gate, notice string) *cards.Card {
	return s.gateCardTone(g, notice, cards.ToneInfo)
}

// gateCardTone is gateCard with the notice's tone: refusals and failures
// are cards.ToneRefusal, confirmations cards.ToneSuccess.
func (s *Server) gateCardTone(g *approvals.Gate, notice string, tone cards.Tone) *cards.Card {
	c := cards.Gate(g, s.cardView(g, notice, tone))
	return c
}

// cardView is what a gate card shows besides the gate: the pipeline's
// declared details and who the policy lets approve.
func (s *Server) cardView(g *approvals.Gate, notice string, tone cards.Tone) cards.GateView {
	v := cards.GateView{Now: s.opt.Now(), Notice: notice, NoticeTone: tone, CanRetry: true}
	v.Eligible, v.Names = s.approverAccounts(g)
	if p, ok := s.opt.Pipelines[g.Pipeline]; ok {
		v.Description = p.Def.Description
		v.InputOrder = p.Def.InputNames()
		v.InputDescriptions = map[string]string{}
		for n, in := range p.Def.Inputs {
			if in.Description != "" {
				v.InputDescriptions[n] = in.Description
			}
		}
		_, v.CanCancel = p.Provider.(pipelines.Canceler)
		v.Confirm, v.Target = p.Confirm, p.Target
	}
	return v
}

// eligible are the people an allow-list names, as far as the entries say
// who they are (a UPN or an Entra object id).
func eligible(pol approvals.Policy) []approvals.Person {
	out := make([]approvals.Person, 0, len(pol.Approvers))
	for _, a := range pol.Approvers {
		if id, ok := strings.CutPrefix(a, "aad:"); ok {
			out = append(out, approvals.Person{AADObjectID: id})
		} else {
			out = append(out, approvals.Person{UPN: a})
		}
	}
	return out
}

// notifyRequester tells the requester, in the gate's conversation, what
// happened to their request.
func (s *Server) notifyRequester(ctx context.Context, g *approvals.Gate, text string) {
	if err := s.sendUnderCard(ctx, g, text); err != nil {
		loggerFrom(ctx).Error("could not notify the requester", "gate_id", g.ID, "err", err)
	}
}

// sendUnderCard posts a plain message in the gate's conversation, as a
// reply to its card when it has one.
func (s *Server) sendUnderCard(ctx context.Context, g *approvals.Gate, text string) error {
	if len(g.Post.Conversation) == 0 {
		return nil
	}
	var ref bot.ConversationReference
	if err := json.Unmarshal(g.Post.Conversation, &ref); err != nil {
		return fmt.Errorf("stored conversation reference is unreadable: %w", err)
	}
	act := &bot.Activity{Type: bot.TypeMessage, From: ref.Bot, Conversation: ref.Conversation, Text: text, TextFormat: "plain"}
	if g.Post.ActivityID != "" {
		act.ReplyToID = g.Post.ActivityID
	}
	_, err := s.opt.Connector.SendToConversation(ctx, ref.ServiceURL, ref.Conversation.ID, act)
	return err
}
