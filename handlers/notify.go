package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/bot"
	"github.com/gatebot/gatebot/cards"
)

// approval.notify: dm sends the gate's card to each listed approver's
// personal chat as well, so nobody has to watch the channel. The copies
// are sent and kept current by the card sync (SyncCard), never by a turn:
// a 1:1 chat is one more paced conversation, and a turn must not wait for
// it. Each copy is recorded in the gate (approvals.Store.RecordCopy),
// which binds its chat to the gate: a click there acts on the gate as one
// on the shared card does, under the same policy.

// sendCopies sends the card raw to every eligible approver of a pending
// gate who has no copy yet. A person the card can never reach (not in the
// gate's conversation, or the app is not installed for them) is recorded
// as failed, so they are not tried again. Pacing ends it with the
// *bot.PacedError, the engine trying again later.
func (s *Server) sendCopies(ctx context.Context, g *approvals.Gate, raw json.RawMessage) error {
	p := s.opt.Pipelines[g.Pipeline]
	if p == nil || !p.NotifyDM || g.State != approvals.StatePending || g.Post.ActivityID == "" {
		return nil
	}
	var ref bot.ConversationReference
	if err := json.Unmarshal(g.Post.Conversation, &ref); err != nil || ref.ServiceURL == "" {
		return nil // no conversation to find the approvers in
	}
	for _, entry := range g.Policy.Approvers {
		entry = strings.TrimSpace(entry)
		if _, done := g.CopyFor(entry); done || votedOrRequested(g, entry) {
			continue
		}
		m, known := s.approvers.get(approverKey(g.Tenant, entry))
		if !known {
			continue // not looked up yet (out of budget): a later sync does
		}
		c, bind, err := s.sendCopy(ctx, g, ref, entry, m, raw)
		var paced *bot.PacedError
		if errors.As(err, &paced) {
			return err
		}
		if err != nil {
			return fmt.Errorf("send the card to %s personally: %w", entry, err)
		}
		ng, err := s.opt.Store.RecordCopy(ctx, g.ID, c, bind)
		if err != nil {
			// The copy is up but not on record: its buttons answer "not
			// from this conversation" until a later sync sends a new one.
			return fmt.Errorf("record the card sent to %s: %w", entry, err)
		}
		*g = *ng
	}
	return nil
}

// votedOrRequested reports whether entry has nothing left to decide on g:
// they voted, or they asked for it and may not approve their own request.
func votedOrRequested(g *approvals.Gate, entry string) bool {
	if !g.Policy.AllowSelfApproval && g.Requester.Matches(entry) {
		return true
	}
	for _, v := range g.Votes {
		if v.By.Matches(entry) {
			return true
		}
	}
	return false
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// sendCopy opens (or finds: Teams returns the existing one) the 1:1 chat
// with member m and posts the card there. A refusal that no retry can
// change comes back as a failed Copy, not an error.
func (s *Server) sendCopy(ctx context.Context, g *approvals.Gate, ref bot.ConversationReference, entry string, m bot.Member, raw json.RawMessage) (approvals.Copy, string, error) {
	log := loggerFrom(ctx).With("gate_id", g.ID, "approver", entry)
	if m.ID == "" {
		log.Info("approver is not a member of the gate's conversation; no personal copy")
		return approvals.Copy{For: entry, Failed: "not a member of the gate's conversation"}, "", nil
	}
	tenant := g.Tenant
	if tenant == "" {
		tenant = ref.Conversation.TenantID
	}
	params := bot.ConversationParameters{
		Members: []bot.ChannelAccount{{ID: m.ID}}, TenantID: tenant,
		ChannelData: map[string]any{"tenant": map[string]string{"id": tenant}},
	}
	if s.opt.BotID != "" {
		params.Bot = bot.ChannelAccount{ID: s.opt.BotID, Name: s.opt.BotName}
	} else {
		params.Bot = ref.Bot
	}
	conv, err := s.opt.Connector.CreateConversation(ctx, ref.ServiceURL, params)
	if refused(err) {
		// 403 BotNotInConversationRoster: the app is not installed for them.
		log.Info("cannot open a personal chat with the approver; no personal copy", "err", err)
		return approvals.Copy{For: entry, Failed: "gatebot is not installed for them"}, "", nil
	}
	if err != nil {
		return approvals.Copy{}, "", err
	}
	dm := bot.ConversationReference{
		Bot:          params.Bot,
		User:         &bot.ChannelAccount{ID: m.ID, Name: m.Name, AadObjectID: m.AADObjectID},
		Conversation: bot.ConversationAccount{ID: conv.ID, ConversationType: "personal", TenantID: tenant},
		ChannelID:    "msteams", ServiceURL: cmpOr(conv.ServiceURL, ref.ServiceURL),
	}
	act := &bot.Activity{Type: bot.TypeMessage, From: dm.Bot, Conversation: dm.Conversation,
		Summary: cards.Summary(g), Attachments: []bot.Attachment{{ContentType: cards.ContentType, Content: raw}}}
	id, err := s.opt.Connector.TrySendToConversation(ctx, dm.ServiceURL, conv.ID, act)
	if refused(err) {
		log.Info("cannot post in the approver's personal chat; no personal copy", "err", err)
		return approvals.Copy{For: entry, Failed: "gatebot cannot post in their chat"}, "", nil
	}
	if err != nil {
		return approvals.Copy{}, "", err
	}
	encoded, _ := json.Marshal(dm)
	log.Info("card sent to the approver personally", "activity_id", id)
	s.markSent(g.ID, id, cardDigest(raw))
	return approvals.Copy{For: entry, Conversation: encoded, ActivityID: id}, bot.ConversationKey(conv.ID), nil
}

// refused reports a connector answer no retry can change: the chat is
// gone or the bot may not post in it.
func refused(err error) bool {
	var ae *bot.APIError
	return errors.As(err, &ae) && (ae.StatusCode == http.StatusForbidden || ae.StatusCode == http.StatusNotFound)
}

// syncCopies brings every personal copy of g's card to raw. A copy whose
// chat refuses (the app was removed) is left alone; pacing in one chat
// does not stop the others, and is returned last so the engine tries
// again for the copies it held back.
func (s *Server) syncCopies(ctx context.Context, g *approvals.Gate, raw json.RawMessage, digest string) error {
	var later error
	for _, c := range g.Copies {
		if c.ActivityID == "" || s.sentDigest(g.ID, c.ActivityID) == digest {
			continue
		}
		var ref bot.ConversationReference
		if err := json.Unmarshal(c.Conversation, &ref); err != nil {
			continue
		}
		act := &bot.Activity{Type: bot.TypeMessage, ID: c.ActivityID, From: ref.Bot, Conversation: ref.Conversation,
			Summary: cards.Summary(g), Attachments: []bot.Attachment{{ContentType: cards.ContentType, Content: raw}}}
		err := s.opt.Connector.TryUpdateActivity(ctx, ref.ServiceURL, ref.Conversation.ID, c.ActivityID, act)
		switch {
		case err == nil:
			s.markSent(g.ID, c.ActivityID, digest)
		case refused(err):
			loggerFrom(ctx).Info("a personal copy of the card can no longer be updated", "gate_id", g.ID, "approver", c.For, "err", err)
			s.markSent(g.ID, c.ActivityID, digest) // not tried again for this state
		default:
			later = err
		}
	}
	return later
}

// markSent and sentDigest remember which card each message shows, so a
// sync that one paced chat interrupted does not send the same card to the
// others again. Only a cache: a replica that lacks it sends once more.
func (s *Server) markSent(gateID, activityID, digest string) {
	if activityID != "" {
		s.sent.put(gateID+"|"+activityID, digest)
	}
}

func (s *Server) sentDigest(gateID, activityID string) string {
	d, _ := s.sent.get(gateID + "|" + activityID)
	return d
}
