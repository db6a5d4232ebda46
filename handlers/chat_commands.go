package handlers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/bot"
)

// commandNames are the chat commands, for "did you mean".
var commandNames = []string{"run", "pipelines", "pending", "status", "cancel", "help", "channel"}

// openStates are the states `pending` lists: gates that wait for someone
// or are still doing something.
var openStates = []approvals.State{
	approvals.StatePending, approvals.StateApproved, approvals.StateTriggering,
	approvals.StateRunning, approvals.StateTriggerFailed,
}

// listPerState bounds what `pending` reads: the newest gates of each open
// state, one index page each.
const listPerState = 50

// unknownCommand answers a command gatebot does not have, suggesting the
// nearest one.
func unknownCommand(name string) string {
	msg := fmt.Sprintf("I don't know the command %q.", truncate(name, 40))
	if c := closest(name, commandNames); c != "" {
		return msg + " Did you mean " + c + "?"
	}
	return msg + " Try /run <pipeline> key=value … or help."
}

func sayTo(s *Server, act *bot.Activity, msg string) func(context.Context) {
	return func(ctx context.Context) { s.reply(ctx, act, nil, msg) }
}

// pendingCommand lists the open gates whose card is in this conversation
// and, in a personal chat, the pending gates of this tenant the sender can
// approve wherever their card is: a list in a channel or group chat is
// read by everyone there, so it shows only what was posted there.
func (s *Server) pendingCommand(ctx context.Context, act *bot.Activity) (func(context.Context), error) {
	now := s.opt.Now()
	personal := act.Conversation.ConversationType == bot.ConversationPersonal
	seen := map[string]bool{}
	var out []*approvals.Gate
	// The sender is looked up at most once with and once without a UPN: a
	// failing member lookup must not be repeated for every gate.
	type identity struct {
		p   approvals.Person
		err error
	}
	whoms := map[bool]*identity{}
	sender := func(needUPN bool) (approvals.Person, error) {
		if id, ok := whoms[needUPN]; ok {
			return id.p, id.err
		}
		p, err := s.person(ctx, act, needUPN)
		whoms[needUPN] = &identity{p, err}
		return p, err
	}
	for _, st := range openStates {
		gates, _, err := s.opt.Store.List(ctx, approvals.ListQuery{State: st, Limit: listPerState})
		if err != nil {
			return nil, fmt.Errorf("list %s gates: %w", st, err)
		}
		for _, g := range gates {
			if seen[g.ID] {
				continue // it changed state between two pages
			}
			ok := postedIn(g, act)
			if !ok && personal && g.State == approvals.StatePending && strings.EqualFold(g.Tenant, tenantOf(act)) {
				who, err := sender(g.Policy.NeedsUPN())
				ok = err == nil && g.CanDecide(who, now) == nil
			}
			if ok {
				seen[g.ID] = true
				out = append(out, g)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	card := gateListCard(out, now)
	return func(ctx context.Context) { s.reply(ctx, act, card, "") }, nil
}

// statusCommand shows one gate's card, named by its full or short id.
func (s *Server) statusCommand(ctx context.Context, act *bot.Activity, cmd command) (func(context.Context), error) {
	if len(cmd.Args) != 1 || len(cmd.KV) > 0 {
		return sayTo(s, act, "Usage: status <gate-id>, for example status g_abcd1234."), nil
	}
	g, msg, err := s.findGate(ctx, act, cmd.Args[0], false)
	if err != nil {
		return nil, err
	}
	if g == nil {
		return sayTo(s, act, msg), nil
	}
	notice := ""
	if !postedIn(g, act) {
		notice = "This gate's card is in another conversation; decide it there."
	}
	card := s.gateCard(g, notice)
	return func(ctx context.Context) { s.reply(ctx, act, card, "") }, nil
}

// cancelCommand cancels a gate (or asks its provider to stop its run) on
// behalf of the sender, as the card's Cancel button does.
func (s *Server) cancelCommand(ctx context.Context, act *bot.Activity, cmd command, text string) (func(context.Context), error) {
	if len(cmd.Args) == 0 {
		return sayTo(s, act, "Usage: cancel <gate-id> [reason], for example cancel g_abcd1234 wrong version."), nil
	}
	reason := truncate(cancelReason(text), approvals.MaxReason)
	var inv *approvals.InvalidError
	if err := approvals.CheckText("reason", reason, approvals.MaxReason, false); errors.As(err, &inv) {
		return sayTo(s, act, "Cannot cancel: the reason "+inv.Reason+"."), nil
	}
	g, msg, err := s.findGate(ctx, act, cmd.Args[0], true)
	if err != nil {
		return nil, err
	}
	if g == nil {
		return sayTo(s, act, msg), nil
	}
	log := loggerFrom(ctx).With("gate_id", g.ID)
	ctx = withLogger(ctx, log)
	requesterByUPN := g.Requester.UPN != "" && g.Requester.AADObjectID == ""
	who, err := s.person(ctx, act, g.Policy.NeedsUPN() || requesterByUPN)
	if err != nil {
		return sayTo(s, act, identityUnconfirmed), nil
	}
	res := s.cancel(ctx, g, s.opt.Pipelines[g.Pipeline], who, reason)
	name := fmt.Sprintf("%s (%s)", shortID(g.ID), g.Pipeline)
	switch {
	case res.unavailable:
		return nil, fmt.Errorf("cancel %s: %w", g.ID, approvals.ErrUnavailable)
	case !res.changed:
		log.Info("cancel refused", "notice", res.notice)
		return sayTo(s, act, res.notice), nil
	case res.gate.State == approvals.StateRunning:
		return sayTo(s, act, "Cancellation of "+name+" requested at the provider; the card will follow."), nil
	}
	return sayTo(s, act, "Cancelled "+name+"."), nil
}

// cancelReason is what follows the gate id in `cancel <id> reason…`, as
// typed (quotes removed, key=value kept as text).
func cancelReason(text string) string {
	toks, err := tokenize(text)
	if err != nil || len(toks) < 3 {
		return ""
	}
	parts := make([]string, 0, len(toks)-2)
	for _, t := range toks[2:] {
		parts = append(parts, t.text)
	}
	return strings.TrimSpace(strings.Join(parts, " "))
}

// findGate resolves what the sender typed to a gate they may see (change:
// act on) from this conversation. Without a gate, msg is the answer; err
// is a store failure the turn should report.
func (s *Server) findGate(ctx context.Context, act *bot.Activity, typed string, change bool) (g *approvals.Gate, msg string, err error) {
	log := loggerFrom(ctx)
	g, err = s.opt.Store.Resolve(ctx, typed)
	var (
		inv *approvals.InvalidError
		amb *approvals.AmbiguousError
	)
	shown := truncate(typed, 40)
	switch {
	case errors.As(err, &inv):
		return nil, fmt.Sprintf("%q is not a gate id I can look up: the id %s. Example: status g_abcd1234", shown, inv.Reason), nil
	case errors.Is(err, approvals.ErrNotFound):
		return nil, fmt.Sprintf("No approval gate has the id %q.", shown), nil
	case errors.As(err, &amb):
		return s.pickVisible(ctx, act, amb, change)
	case errors.Is(err, approvals.ErrUnavailable):
		return nil, "", err
	case err != nil:
		log.Error("could not resolve a gate id", "err", err)
		return nil, "Sorry, I could not look up that gate. Please try again.", nil
	}
	if !s.visible(ctx, act, g, change) {
		s.foreignGate(withLogger(ctx, log.With("gate_id", g.ID)), g, act)
		return nil, notInConversation, nil
	}
	return g, "", nil
}

// pickVisible narrows an ambiguous prefix to the gates the sender may see
// here; ids of gates elsewhere are never shown.
func (s *Server) pickVisible(ctx context.Context, act *bot.Activity, amb *approvals.AmbiguousError, change bool) (*approvals.Gate, string, error) {
	var mine []*approvals.Gate
	for _, id := range amb.Candidates {
		g, err := s.opt.Store.Get(ctx, id)
		switch {
		case errors.Is(err, approvals.ErrNotFound):
			continue
		case err != nil:
			return nil, "", err
		}
		if s.visible(ctx, act, g, change) {
			mine = append(mine, g)
		}
	}
	switch len(mine) {
	case 0:
		s.refusals.Conversation.Add(1)
		loggerFrom(ctx).Warn("refusing a gate id prefix that names only gates of other conversations",
			"prefix", amb.Prefix, "tenant_id", tenantOf(act))
		return nil, notInConversation, nil
	case 1:
		return mine[0], "", nil
	}
	ids := make([]string, len(mine))
	for i, g := range mine {
		ids[i] = g.ID
	}
	return nil, fmt.Sprintf("More than one gate here starts with %s: %s. Give more of the id.",
		amb.Prefix, strings.Join(ids, ", ")), nil
}

// visible reports whether the sender may see g from this conversation
// (change: act on it): its card was posted here; or, to see it, this is a
// personal chat in g's tenant and the sender is an eligible approver.
func (s *Server) visible(ctx context.Context, act *bot.Activity, g *approvals.Gate, change bool) bool {
	if postedIn(g, act) {
		return true
	}
	if change || act.Conversation.ConversationType != bot.ConversationPersonal || !strings.EqualFold(g.Tenant, tenantOf(act)) {
		return false
	}
	who, err := s.person(ctx, act, g.Policy.NeedsUPN())
	return err == nil && g.Policy.Eligible(who, g.Requester, true) == nil
}
