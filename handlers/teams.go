package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/bot"
	"github.com/gatebot/gatebot/cards"
	"github.com/gatebot/gatebot/engine"
)

// The engine's way into Teams: *Server implements engine.Teams.
var _ engine.Teams = (*Server)(nil)

// cardDigest identifies a rendered card, so an identical one is not sent
// twice.
func cardDigest(raw []byte) string {
	sum := sha256.Sum256(raw)
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// renderShared renders the card everyone sees for g, as sent.
func (s *Server) renderShared(g *approvals.Gate) (json.RawMessage, string, error) {
	raw, err := json.Marshal(s.gateCard(g, ""))
	if err != nil {
		return nil, "", fmt.Errorf("render card: %w", err)
	}
	return raw, cardDigest(raw), nil
}

// SyncCard updates g's shared card in place unless the card shown already
// is the one g renders to. It never waits for pacing: a conversation that
// may not be called now gives a *bot.PacedError, which the engine turns
// into a later attempt.
func (s *Server) SyncCard(ctx context.Context, g *approvals.Gate, lastDigest string) (string, error) {
	if g.Post.ActivityID == "" || len(g.Post.Conversation) == 0 {
		return lastDigest, nil
	}
	s.resolveApprovers(ctx, g)
	raw, digest, err := s.renderShared(g)
	if err != nil {
		return "", err
	}
	if digest != lastDigest && s.sentDigest(g.ID, g.Post.ActivityID) != digest {
		if err := s.updateShared(ctx, g, raw); err != nil {
			return "", err
		}
		s.markSent(g.ID, g.Post.ActivityID, digest)
	}
	if err := s.sendCopies(ctx, g, raw); err != nil {
		return "", err
	}
	if err := s.syncCopies(ctx, g, raw, digest); err != nil {
		return "", err
	}
	return digest, nil
}

// updateShared replaces the gate's shared card with raw.
func (s *Server) updateShared(ctx context.Context, g *approvals.Gate, raw json.RawMessage) error {
	var ref bot.ConversationReference
	if err := json.Unmarshal(g.Post.Conversation, &ref); err != nil {
		return fmt.Errorf("%w: stored conversation reference is unreadable: %w", engine.ErrCardGone, err)
	}
	act := &bot.Activity{
		Type: bot.TypeMessage, ID: g.Post.ActivityID, From: ref.Bot, Conversation: ref.Conversation,
		Summary: cards.Summary(g), Attachments: []bot.Attachment{{ContentType: cards.ContentType, Content: raw}},
	}
	err := s.opt.Connector.TryUpdateActivity(ctx, ref.ServiceURL, ref.Conversation.ID, g.Post.ActivityID, act)
	var ae *bot.APIError
	if errors.As(err, &ae) && (ae.StatusCode == http.StatusNotFound || ae.StatusCode == http.StatusForbidden) {
		// The message was deleted or the bot removed from the chat.
		return fmt.Errorf("%w: %w", engine.ErrCardGone, err)
	}
	return err
}

// PostCard posts the card of a pending gate that has none a minute after
// it was created: gatebot stopped between storing it and posting it. Chat
// gates go to the conversation they were asked in, API gates to their
// pipeline's channel.
func (s *Server) PostCard(ctx context.Context, g *approvals.Gate) error {
	log := loggerFrom(ctx).With("gate_id", g.ID)
	ctx = withLogger(ctx, log)
	if !s.claimPost(ctx, g) {
		return nil
	}
	err := s.postCard(ctx, g)
	s.endPost(ctx, g, err)
	return err
}

// postCard posts an unposted gate's card, under a claim.
func (s *Server) postCard(ctx context.Context, g *approvals.Gate) error {
	if len(g.Post.Conversation) == 0 {
		p := s.opt.Pipelines[g.Pipeline]
		if p == nil {
			return fmt.Errorf("pipeline %q is not configured on this replica", g.Pipeline)
		}
		ch, ok, err := s.channel(ctx, p.Channel)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("pipeline %q has no configured channel %q", g.Pipeline, p.Channel)
		}
		_, err = s.postToChannel(ctx, g, ch)
		return err
	}
	var ref bot.ConversationReference
	if err := json.Unmarshal(g.Post.Conversation, &ref); err != nil {
		return fmt.Errorf("stored conversation reference is unreadable: %w", err)
	}
	// Reply to the message that asked for the gate, as the normal path does.
	act := &bot.Activity{ID: ref.ActivityID, Recipient: ref.Bot, Conversation: ref.Conversation,
		ServiceURL: ref.ServiceURL, ChannelID: ref.ChannelID}
	if ref.User != nil {
		act.From = *ref.User
	}
	return s.postGate(ctx, act, g)
}

// RemindApprovers posts a reminder under the gate's card: what is waiting,
// how long is left, and how many approvals it still needs.
func (s *Server) RemindApprovers(ctx context.Context, g *approvals.Gate) error {
	if len(g.Post.Conversation) == 0 || g.Post.ActivityID == "" {
		return nil // no card to remind about; nothing anyone could click
	}
	left := g.Deadline.Sub(s.opt.Now()).Round(time.Minute)
	need := max(g.Policy.Required, 1) - len(g.Approvals())
	text := fmt.Sprintf("Reminder: %s (%s) expires in %s and still needs %d approval%s.",
		cards.Summary(g), cards.ShortID(g.ID), left, need, map[bool]string{true: "", false: "s"}[need == 1])
	return s.sendUnderCard(ctx, g, text)
}

// NotifyExpired tells the requester, in the gate's conversation, that
// their request expired.
func (s *Server) NotifyExpired(ctx context.Context, g *approvals.Gate) {
	s.notifyRequester(ctx, g, fmt.Sprintf("Your request to run %s expired: it got no decision in time.", g.Pipeline))
}
