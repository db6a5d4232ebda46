package bot

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"strings"

	"github.com/infracloudio/msbotbuilder-go/schema"
)

// ChannelAccount identifies a user or bot on a channel. In Teams, ID is the
// per-bot "29:…" id (bots: "28:<appId>") and AadObjectID the Entra object id.
type ChannelAccount = schema.ChannelAccount

// ConversationAccount identifies a conversation; in Teams ConversationType is
// "personal", "groupChat" or "channel" and TenantID is set.
type ConversationAccount = schema.ConversationAccount

// Activity types gatebot dispatches on. Others arrive too and are answered
// with 200 and ignored.
const (
	TypeMessage            = "message"
	TypeInvoke             = "invoke"
	TypeConversationUpdate = "conversationUpdate"
	TypeInstallationUpdate = "installationUpdate"
	TypeEvent              = "event"
	TypeTyping             = "typing"
	TypeMessageReaction    = "messageReaction"
	TypeMessageUpdate      = "messageUpdate"
	TypeMessageDelete      = "messageDelete"
	TypeEndOfConversation  = "endOfConversation"
)

// InvokeAdaptiveCardAction is the invoke name of an Adaptive Card
// Action.Execute (Universal Actions).
const InvokeAdaptiveCardAction = "adaptiveCard/action"

// Values of Activity.Action on installationUpdate.
const (
	InstallationAdd           = "add"
	InstallationRemove        = "remove"
	InstallationAddUpgrade    = "add-upgrade"
	InstallationRemoveUpgrade = "remove-upgrade"
)

// Values of ConversationAccount.ConversationType in Teams.
const (
	ConversationPersonal  = "personal"
	ConversationGroupChat = "groupChat"
	ConversationChannel   = "channel"
)

// Text formats for Activity.TextFormat.
const (
	TextFormatPlain    = "plain"
	TextFormatMarkdown = "markdown"
	TextFormatXML      = "xml"
)

// ContentTypeAdaptiveCard is the attachment content type of an Adaptive Card.
const ContentTypeAdaptiveCard = "application/vnd.microsoft.card.adaptive"

// Attachment is a file or card attached to an activity.
type Attachment struct {
	ContentType string `json:"contentType"`
	ContentURL  string `json:"contentUrl,omitempty"`
	Content     any    `json:"content,omitempty"`
	Name        string `json:"name,omitempty"`
}

// AdaptiveCardAttachment wraps an Adaptive Card (any value that marshals to
// the card JSON) as an attachment.
func AdaptiveCardAttachment(card any) Attachment {
	return Attachment{ContentType: ContentTypeAdaptiveCard, Content: card}
}

// Activity is a Bot Framework activity. Value, ChannelData and the entities
// are kept raw because their shape depends on the channel and the activity;
// read them through the typed accessors (Mentions, TeamsChannelData,
// CardAction). It marshals without empty fields, so it can be sent to the
// connector as is.
type Activity struct {
	Type             string              `json:"type"`
	ID               string              `json:"id,omitempty"`
	Timestamp        string              `json:"timestamp,omitempty"`
	LocalTimestamp   string              `json:"localTimestamp,omitempty"`
	ServiceURL       string              `json:"serviceUrl,omitempty"`
	ChannelID        string              `json:"channelId,omitempty"`
	From             ChannelAccount      `json:"from"`
	Conversation     ConversationAccount `json:"conversation"`
	Recipient        ChannelAccount      `json:"recipient"`
	TextFormat       string              `json:"textFormat,omitempty"`
	Text             string              `json:"text,omitempty"`
	Summary          string              `json:"summary,omitempty"`
	Locale           string              `json:"locale,omitempty"`
	InputHint        string              `json:"inputHint,omitempty"`
	AttachmentLayout string              `json:"attachmentLayout,omitempty"`
	ReplyToID        string              `json:"replyToId,omitempty"`
	Name             string              `json:"name,omitempty"`
	Action           string              `json:"action,omitempty"`
	Attachments      []Attachment        `json:"attachments,omitempty"`
	Entities         []json.RawMessage   `json:"entities,omitempty"`
	ChannelData      json.RawMessage     `json:"channelData,omitempty"`
	Value            json.RawMessage     `json:"value,omitempty"`
	MembersAdded     []ChannelAccount    `json:"membersAdded,omitempty"`
	MembersRemoved   []ChannelAccount    `json:"membersRemoved,omitempty"`
}

// activityWire is Activity as it travels: accounts are pointers so unset
// ones are omitted, and entities stay raw so a channel sending something
// other than an array cannot make the whole activity undecodable.
type activityWire struct {
	Type             string               `json:"type"`
	ID               string               `json:"id,omitempty"`
	Timestamp        string               `json:"timestamp,omitempty"`
	LocalTimestamp   string               `json:"localTimestamp,omitempty"`
	ServiceURL       string               `json:"serviceUrl,omitempty"`
	ChannelID        string               `json:"channelId,omitempty"`
	From             *ChannelAccount      `json:"from,omitempty"`
	Conversation     *ConversationAccount `json:"conversation,omitempty"`
	Recipient        *ChannelAccount      `json:"recipient,omitempty"`
	TextFormat       string               `json:"textFormat,omitempty"`
	Text             string               `json:"text,omitempty"`
	Summary          string               `json:"summary,omitempty"`
	Locale           string               `json:"locale,omitempty"`
	InputHint        string               `json:"inputHint,omitempty"`
	AttachmentLayout string               `json:"attachmentLayout,omitempty"`
	ReplyToID        string               `json:"replyToId,omitempty"`
	Name             string               `json:"name,omitempty"`
	Action           string               `json:"action,omitempty"`
	Attachments      []Attachment         `json:"attachments,omitempty"`
	Entities         json.RawMessage      `json:"entities,omitempty"`
	ChannelData      json.RawMessage      `json:"channelData,omitempty"`
	Value            json.RawMessage      `json:"value,omitempty"`
	MembersAdded     []ChannelAccount     `json:"membersAdded,omitempty"`
	MembersRemoved   []ChannelAccount     `json:"membersRemoved,omitempty"`
}

// MarshalJSON writes the activity without zero-valued fields or empty
// account objects.
func (a Activity) MarshalJSON() ([]byte, error) {
	w := activityWire{
		Type: a.Type, ID: a.ID, Timestamp: a.Timestamp, LocalTimestamp: a.LocalTimestamp,
		ServiceURL: a.ServiceURL, ChannelID: a.ChannelID,
		TextFormat: a.TextFormat, Text: a.Text, Summary: a.Summary, Locale: a.Locale,
		InputHint: a.InputHint, AttachmentLayout: a.AttachmentLayout, ReplyToID: a.ReplyToID,
		Name: a.Name, Action: a.Action, Attachments: a.Attachments,
		ChannelData: rawOrNil(a.ChannelData), Value: rawOrNil(a.Value),
		MembersAdded: a.MembersAdded, MembersRemoved: a.MembersRemoved,
	}
	if a.From != (ChannelAccount{}) {
		w.From = &a.From
	}
	if a.Conversation != (ConversationAccount{}) {
		w.Conversation = &a.Conversation
	}
	if a.Recipient != (ChannelAccount{}) {
		w.Recipient = &a.Recipient
	}
	if len(a.Entities) > 0 {
		ents := make([]json.RawMessage, 0, len(a.Entities))
		for _, e := range a.Entities {
			if e = rawOrNil(e); e != nil {
				ents = append(ents, e)
			}
		}
		if len(ents) > 0 {
			b, err := json.Marshal(ents)
			if err != nil {
				return nil, fmt.Errorf("bot: marshal entities: %w", err)
			}
			w.Entities = b
		}
	}
	return json.Marshal(w)
}

// UnmarshalJSON decodes an activity. value, channelData and entities may be
// any JSON; entities that are not an array are dropped rather than failing
// the whole activity. JSON null in a raw field is treated as absent.
func (a *Activity) UnmarshalJSON(b []byte) error {
	var w activityWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	a.fromWire(&w)
	return nil
}

func (a *Activity) fromWire(w *activityWire) {
	*a = Activity{
		Type: w.Type, ID: w.ID, Timestamp: w.Timestamp, LocalTimestamp: w.LocalTimestamp,
		ServiceURL: w.ServiceURL, ChannelID: w.ChannelID,
		TextFormat: w.TextFormat, Text: w.Text, Summary: w.Summary, Locale: w.Locale,
		InputHint: w.InputHint, AttachmentLayout: w.AttachmentLayout, ReplyToID: w.ReplyToID,
		Name: w.Name, Action: w.Action, Attachments: w.Attachments,
		ChannelData: rawOrNil(w.ChannelData), Value: rawOrNil(w.Value),
		MembersAdded: w.MembersAdded, MembersRemoved: w.MembersRemoved,
	}
	if w.From != nil {
		a.From = *w.From
	}
	if w.Conversation != nil {
		a.Conversation = *w.Conversation
	}
	if w.Recipient != nil {
		a.Recipient = *w.Recipient
	}
	if ents := rawOrNil(w.Entities); ents != nil && ents[0] == '[' {
		var list []json.RawMessage
		if err := json.Unmarshal(ents, &list); err == nil {
			a.Entities = list
		}
	}
}

// rawOrNil returns nil for an empty or JSON-null raw message.
func rawOrNil(r json.RawMessage) json.RawMessage {
	r = bytes.TrimSpace(r)
	if len(r) == 0 || string(r) == "null" {
		return nil
	}
	return r
}

// DecodeActivity parses a request body into an activity. Errors wrap
// ErrMalformedActivity: the body is not a JSON object that decodes into an
// activity, or it has no type.
func DecodeActivity(body []byte) (*Activity, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return nil, fmt.Errorf("%w: body is not a JSON object", ErrMalformedActivity)
	}
	// Decode straight into the wire form: going through
	// Activity.UnmarshalJSON would validate the whole body twice.
	var w activityWire
	if err := json.Unmarshal(body, &w); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, fmt.Errorf("%w: invalid JSON at offset %d", ErrMalformedActivity, se.Offset)
		case errors.As(err, &te):
			return nil, fmt.Errorf("%w: field %q has the wrong type", ErrMalformedActivity, te.Field)
		default:
			return nil, fmt.Errorf("%w: %v", ErrMalformedActivity, err)
		}
	}
	if strings.TrimSpace(w.Type) == "" {
		return nil, fmt.Errorf("%w: missing type", ErrMalformedActivity)
	}
	a := new(Activity)
	a.fromWire(&w)
	return a, nil
}

// Mention is one "mention" entity: who was mentioned and the exact text of
// the mention in Activity.Text (in Teams "<at>Name</at>").
type Mention struct {
	Mentioned ChannelAccount `json:"mentioned"`
	Text      string         `json:"text,omitempty"`
}

type mentionEntity struct {
	Type      string         `json:"type"`
	Mentioned ChannelAccount `json:"mentioned"`
	Text      string         `json:"text,omitempty"`
}

// Mentions returns the mention entities of the activity, skipping entities
// that are not well-formed mentions.
func (a *Activity) Mentions() []Mention {
	var out []Mention
	for _, raw := range a.Entities {
		var m mentionEntity
		if json.Unmarshal(raw, &m) != nil || !strings.EqualFold(m.Type, "mention") {
			continue
		}
		out = append(out, Mention{Mentioned: m.Mentioned, Text: m.Text})
	}
	return out
}

// MentionEntity returns the entity to add to an outgoing activity's Entities
// so that m.Text (which must also appear in the activity text) renders as a
// mention of m.Mentioned.
func MentionEntity(m Mention) json.RawMessage {
	// A struct of strings always marshals.
	b, _ := json.Marshal(mentionEntity{Type: "mention", Mentioned: m.Mentioned, Text: m.Text})
	return b
}

// TextWithoutRecipientMention returns the message text with every mention of
// the recipient (the bot) removed, HTML entities such as &nbsp; decoded and
// whitespace collapsed. Mentions are found through the entities whose
// mentioned.id is the recipient id, never by matching names in the text.
func (a *Activity) TextWithoutRecipientMention() string {
	var mine []string
	if a.Recipient.ID != "" {
		for _, m := range a.Mentions() {
			if m.Mentioned.ID == a.Recipient.ID && m.Text != "" {
				mine = append(mine, m.Text)
			}
		}
	}
	text := a.Text
	for _, m := range mine {
		text = strings.ReplaceAll(text, m, " ")
	}
	text = html.UnescapeString(text)
	// Teams sometimes escapes the entity text differently from the message
	// text; strip the decoded form too.
	for _, m := range mine {
		if u := html.UnescapeString(m); u != m {
			text = strings.ReplaceAll(text, u, " ")
		}
	}
	return strings.Join(strings.Fields(text), " ")
}

// TeamsChannelData is the part of Teams' channelData gatebot uses. Tenant is
// always present in Teams; Team and Channel only in channel conversations;
// EventType only on conversationUpdate events ("teamMemberAdded", …).
type TeamsChannelData struct {
	Tenant struct {
		ID string `json:"id"`
	} `json:"tenant"`
	Team struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"team"`
	Channel struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"channel"`
	EventType string `json:"eventType"`
}

// teamsChannelDataWire adds the legacy flat ids older Teams clients sent.
type teamsChannelDataWire struct {
	TeamsChannelData
	TeamsChannelID string `json:"teamsChannelId"`
	TeamsTeamID    string `json:"teamsTeamId"`
}

// TeamsChannelData decodes channelData; the zero value when it is absent or
// does not have the Teams shape.
func (a *Activity) TeamsChannelData() TeamsChannelData {
	raw := rawOrNil(a.ChannelData)
	if raw == nil || raw[0] != '{' {
		return TeamsChannelData{}
	}
	var w teamsChannelDataWire
	if json.Unmarshal(raw, &w) != nil {
		return TeamsChannelData{}
	}
	if w.Channel.ID == "" {
		w.Channel.ID = w.TeamsChannelID
	}
	if w.Team.ID == "" {
		w.Team.ID = w.TeamsTeamID
	}
	return w.TeamsChannelData
}

// TenantID returns conversation.tenantId, falling back to
// channelData.tenant.id.
func (a *Activity) TenantID() string {
	if a.Conversation.TenantID != "" {
		return a.Conversation.TenantID
	}
	return a.TeamsChannelData().Tenant.ID
}

// MembersAddedIncludesRecipient reports whether the bot itself is among
// membersAdded (the bot was installed in the conversation).
func (a *Activity) MembersAddedIncludesRecipient() bool {
	return containsAccount(a.MembersAdded, a.Recipient.ID)
}

// MembersRemovedIncludesRecipient reports whether the bot itself is among
// membersRemoved (the bot was uninstalled from the conversation).
func (a *Activity) MembersRemovedIncludesRecipient() bool {
	return containsAccount(a.MembersRemoved, a.Recipient.ID)
}

func containsAccount(list []ChannelAccount, id string) bool {
	if id == "" {
		return false
	}
	for _, m := range list {
		if m.ID == id {
			return true
		}
	}
	return false
}

// ConversationReference is what a bot stores to message a conversation
// later (proactively): where to send (ServiceURL, Conversation.ID), as whom
// (Bot) and, for replies, the activity.
type ConversationReference struct {
	ActivityID   string              `json:"activityId,omitempty"`
	User         *ChannelAccount     `json:"user,omitempty"`
	Bot          ChannelAccount      `json:"bot"`
	Conversation ConversationAccount `json:"conversation"`
	ChannelID    string              `json:"channelId"`
	ServiceURL   string              `json:"serviceUrl"`
	Locale       string              `json:"locale,omitempty"`
}

// Reference returns the conversation reference of an incoming activity.
// The tenant id is copied into the conversation from channelData when the
// conversation lacks it, because proactive 1:1 sends need it.
func (a *Activity) Reference() ConversationReference {
	ref := ConversationReference{
		ActivityID:   a.ID,
		Bot:          a.Recipient,
		Conversation: a.Conversation,
		ChannelID:    a.ChannelID,
		ServiceURL:   a.ServiceURL,
		Locale:       a.Locale,
	}
	if ref.Conversation.TenantID == "" {
		ref.Conversation.TenantID = a.TenantID()
	}
	if a.From != (ChannelAccount{}) {
		u := a.From
		ref.User = &u
	}
	return ref
}

// CardAction is a click on an Adaptive Card button.
type CardAction struct {
	// Verb is the Action.Execute verb, or the "verb" field of an
	// Action.Submit's data.
	Verb string
	// Data is the action data merged with the card's input values (for
	// Action.Submit, the whole value).
	Data json.RawMessage
	// Execute is true for an Action.Execute invoke (answered synchronously
	// with an InvokeResponse), false for an Action.Submit message.
	Execute bool
}

type executeValue struct {
	Action *struct {
		Type string          `json:"type"`
		Verb string          `json:"verb"`
		Data json.RawMessage `json:"data"`
	} `json:"action"`
}

// CardAction returns the card click the activity carries: an invoke named
// adaptiveCard/action (Action.Execute), or a message whose value is a
// non-empty JSON object (Action.Submit). ok is false for anything else,
// including an adaptiveCard/action invoke without value.action.
func (a *Activity) CardAction() (CardAction, bool) {
	val := rawOrNil(a.Value)
	switch a.Type {
	case TypeInvoke:
		if a.Name != InvokeAdaptiveCardAction || val == nil || val[0] != '{' {
			return CardAction{}, false
		}
		var v executeValue
		if json.Unmarshal(val, &v) != nil || v.Action == nil {
			return CardAction{}, false
		}
		return CardAction{Verb: v.Action.Verb, Data: rawOrNil(v.Action.Data), Execute: true}, true
	case TypeMessage:
		if val == nil || val[0] != '{' {
			return CardAction{}, false
		}
		var fields map[string]json.RawMessage
		if json.Unmarshal(val, &fields) != nil || len(fields) == 0 {
			return CardAction{}, false
		}
		var verb string
		if rv, ok := fields["verb"]; ok {
			_ = json.Unmarshal(rv, &verb) // a non-string verb is no verb
		}
		return CardAction{Verb: verb, Data: val}, true
	}
	return CardAction{}, false
}
