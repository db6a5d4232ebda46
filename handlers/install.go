package handlers

import (
	"context"
	"time"

	"github.com/gatebot/gatebot/bot"
	"github.com/gatebot/gatebot/cards"
)

// helloWindow is how long one installation is greeted once: Teams sends
// both an installationUpdate and a conversationUpdate for one install,
// seconds apart, and may redeliver either.
const helloWindow = 10 * time.Minute

// hello posts the help card into a conversation the bot was just added
// to, once per installation, so people see what it does and how to ask.
func (s *Server) hello(ctx context.Context, act *bot.Activity) {
	log := loggerFrom(ctx)
	conv := bot.ConversationKey(act.Conversation.ID)
	first, err := s.opt.Store.Once(ctx, "hello:"+conv, helloWindow)
	if err != nil {
		log.Warn("could not check whether this installation was greeted; not greeting", "err", err)
		return
	}
	if !first {
		return
	}
	// A new message, not a reply: the install event is no message to
	// thread under.
	out := &bot.Activity{Type: bot.TypeMessage, From: act.Recipient, Conversation: act.Conversation,
		Attachments: []bot.Attachment{{ContentType: cards.ContentType, Content: cards.HelpFor(s.opt.BotName, s.pipelineInfos())}}}
	if _, err := s.opt.Connector.SendToConversation(ctx, act.ServiceURL, act.Conversation.ID, out); err != nil {
		log.Error("could not say hello", "err", err)
		return
	}
	log.Info("said hello", "conversation_type", act.Conversation.ConversationType)
}
