package handlers

// The channel command binds a configured channel name to the Teams
// channel it is typed in, for config channels that carry no
// conversation_id (a channel id is hard to find outside Teams, and the
// bot must be installed in the team anyway):
//
//	@gatebot channel register ops    bind "ops" to this channel
//	@gatebot channel unregister ops  release it (only from the bound channel)
//	@gatebot channel list            every configured channel and where it posts
//
// Who may register: anyone whose activity passed the tenant check, in a
// channel of the tenant the config gives for that name (channels.NAME.
// tenant_id). gatebot has no admin list; the config decides which names
// exist and in which tenant, and a name already bound elsewhere can only
// be released from the channel it is bound to, so nobody can quietly move
// another team's gates into their own channel.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/bot"
	"github.com/gatebot/gatebot/cards"
	"github.com/gatebot/gatebot/channels"
)

// ChannelBindings stores the channel bindings made from Teams.
// *channels.Store implements it.
type ChannelBindings interface {
	Register(ctx context.Context, b channels.Binding) (channels.Binding, error)
	Unregister(ctx context.Context, name, conversationID string) error
	Get(ctx context.Context, name string) (channels.Binding, error)
	List(ctx context.Context) ([]channels.Binding, error)
}

const channelUsage = "Usage: @gatebot channel register <name>, channel unregister <name> or channel list."

// channelCommand runs `channel …`. Like runCommand, the error is non-nil
// only when the turn should be retried (the store is down).
func (s *Server) channelCommand(ctx context.Context, act *bot.Activity, cmd command) (func(context.Context), error) {
	say := func(msg string) func(context.Context) {
		return func(ctx context.Context) { s.reply(ctx, act, nil, msg) }
	}
	if s.opt.Bindings == nil {
		return say("Registering channels from Teams is not set up on this gatebot; channels come from its config."), nil
	}
	sub := ""
	if len(cmd.Args) > 0 {
		sub = strings.ToLower(cmd.Args[0])
	}
	switch {
	case sub == "list" && len(cmd.Args) == 1:
		return s.listChannels(ctx, act)
	case (sub == "register" || sub == "unregister") && len(cmd.Args) == 2:
		if act.Conversation.ConversationType != "channel" {
			return say(fmt.Sprintf("channel %s works in a team channel: type @gatebot channel %s %s in the channel gates should go to.",
				sub, sub, cmd.Args[1])), nil
		}
		name := cmd.Args[1]
		ch, ok := s.opt.Channels[name]
		if !ok {
			return say(s.unknownChannel(name)), nil
		}
		if sub == "unregister" {
			return s.unregisterChannel(ctx, act, name)
		}
		return s.registerChannel(ctx, act, name, ch)
	}
	return say(channelUsage), nil
}

func (s *Server) registerChannel(ctx context.Context, act *bot.Activity, name string, ch Channel) (func(context.Context), error) {
	log := loggerFrom(ctx).With("channel", name)
	say := func(msg string) func(context.Context) {
		return func(ctx context.Context) { s.reply(ctx, act, nil, msg) }
	}
	if ch.ConversationID != "" {
		return say(fmt.Sprintf("%s is set in gatebot's config (channels.%s.conversation_id), which wins; remove it there to register the channel from Teams.", name, name)), nil
	}
	tenant := tenantOf(act)
	if ch.TenantID != "" && !strings.EqualFold(ch.TenantID, tenant) {
		log.Warn("refusing to register a channel from another tenant", "tenant_id", tenant, "channel_tenant", ch.TenantID)
		return say(fmt.Sprintf("%s belongs to another tenant in gatebot's config, so it cannot be registered here.", name)), nil
	}
	data := act.TeamsChannelData()
	b := channels.Binding{
		Name: name, TenantID: tenant, TeamID: data.Team.ID, TeamName: data.Team.Name,
		ConversationID: bot.ConversationKey(act.Conversation.ID), ChannelName: data.Channel.Name,
		ServiceURL:   act.ServiceURL,
		RegisteredBy: channels.Person{ID: act.From.ID, AADObjectID: act.From.AadObjectID, Name: act.From.Name},
	}
	_, err := s.opt.Bindings.Register(ctx, b)
	var taken *channels.TakenError
	switch {
	case errors.As(err, &taken):
		log.Info("channel already registered elsewhere", "bound_to", taken.Current.ConversationID)
		return say(fmt.Sprintf("%s is already registered to %s by %s on %s. Run @gatebot channel unregister %s there first.",
			name, where(taken.Current), who(taken.Current), taken.Current.RegisteredAt.Format("2006-01-02 15:04 MST"), name)), nil
	case err != nil:
		return nil, err
	}
	log.Info("channel registered", "conversation_id", b.ConversationID, "user_id", act.From.ID)
	msg := fmt.Sprintf("%s is now this channel.", name)
	if ps := s.pipelinesIn(name); len(ps) > 0 {
		msg += " Gates opened over the API for " + strings.Join(ps, ", ") + " will be posted here."
	}
	return say(msg), nil
}

func (s *Server) unregisterChannel(ctx context.Context, act *bot.Activity, name string) (func(context.Context), error) {
	say := func(msg string) func(context.Context) {
		return func(ctx context.Context) { s.reply(ctx, act, nil, msg) }
	}
	err := s.opt.Bindings.Unregister(ctx, name, bot.ConversationKey(act.Conversation.ID))
	var taken *channels.TakenError
	switch {
	case errors.Is(err, channels.ErrNotFound):
		return say(fmt.Sprintf("%s is not registered.", name)), nil
	case errors.As(err, &taken):
		return say(fmt.Sprintf("%s is registered to %s, not this channel; it can be released only from there.", name, where(taken.Current))), nil
	case err != nil:
		return nil, err
	}
	loggerFrom(ctx).Info("channel unregistered", "channel", name, "user_id", act.From.ID)
	return say(fmt.Sprintf("%s is no longer this channel.", name)), nil
}

// listChannels shows every configured channel name and where its gates go.
func (s *Server) listChannels(ctx context.Context, act *bot.Activity) (func(context.Context), error) {
	bound, err := s.opt.Bindings.List(ctx)
	if err != nil && len(bound) == 0 {
		return nil, err
	}
	byName := map[string]channels.Binding{}
	for _, b := range bound {
		byName[b.Name] = b
	}
	names := make([]string, 0, len(s.opt.Channels))
	for n := range s.opt.Channels {
		names = append(names, n)
	}
	sort.Strings(names)
	lines := make([]string, 0, len(names))
	for _, n := range names {
		b, ok := byName[n]
		switch {
		case s.opt.Channels[n].ConversationID != "":
			lines = append(lines, n+" → set in gatebot's config")
		case ok:
			lines = append(lines, fmt.Sprintf("%s → %s, registered by %s on %s", n, where(b), who(b), b.RegisteredAt.Format("2006-01-02 15:04 MST")))
		default:
			lines = append(lines, fmt.Sprintf("%s → not registered: @gatebot channel register %s in its channel", n, n))
		}
	}
	if len(lines) == 0 {
		lines = append(lines, "gatebot's config has no channels.")
	}
	card := cards.Notice("Channels", lines...)
	return func(ctx context.Context) { s.reply(ctx, act, card, "") }, nil
}

// channel resolves a configured channel name to where its gates are
// posted: the config's conversation id, else the binding registered from
// Teams. ok is false when the name is not configured or not bound.
func (s *Server) channel(ctx context.Context, name string) (Channel, bool, error) {
	ch, ok := s.opt.Channels[name]
	if !ok || ch.ConversationID != "" || s.opt.Bindings == nil {
		return ch, ok && ch.ConversationID != "", nil
	}
	b, err := s.opt.Bindings.Get(ctx, name)
	if errors.Is(err, channels.ErrNotFound) {
		return Channel{}, false, nil
	}
	if errors.Is(err, channels.ErrUnavailable) {
		// The same Redis as the gate store: answered as the store being down.
		return Channel{}, false, fmt.Errorf("channel %s: %w: %w", name, approvals.ErrUnavailable, err)
	}
	if err != nil {
		return Channel{}, false, fmt.Errorf("channel %s: %w", name, err)
	}
	return Channel{ServiceURL: b.ServiceURL, ConversationID: b.ConversationID, TenantID: b.TenantID}, true, nil
}

func (s *Server) unknownChannel(name string) string {
	names := make([]string, 0, len(s.opt.Channels))
	for n := range s.opt.Channels {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return fmt.Sprintf("There is no configured channel %q: gatebot's config has no channels.", name)
	}
	msg := fmt.Sprintf("There is no configured channel %q.", name)
	if c := closest(name, names); c != "" {
		msg += fmt.Sprintf(" Did you mean %s?", c)
	}
	return msg + " Configured channels: " + strings.Join(names, ", ") + "."
}

// pipelinesIn lists the pipelines that post to channel name.
func (s *Server) pipelinesIn(name string) []string {
	var out []string
	for n, p := range s.opt.Pipelines {
		if p.Channel == name {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func where(b channels.Binding) string {
	team, ch := b.TeamName, b.ChannelName
	if team == "" {
		team = b.TeamID
	}
	if ch == "" {
		ch = b.ConversationID
	}
	return team + " / " + ch
}

func who(b channels.Binding) string {
	if b.RegisteredBy.Name != "" {
		return b.RegisteredBy.Name
	}
	return b.RegisteredBy.ID
}
