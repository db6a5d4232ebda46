package cards

import (
	"encoding/json"
	"slices"
)

// ContentType is the attachment content type of an Adaptive Card, and the
// InvokeResponse value type for "replace the clicked card with this one".
const ContentType = "application/vnd.microsoft.card.adaptive"

// Version and Schema are written into every card. Teams renders Adaptive
// Card features up to 1.5 in bot-sent cards, and Universal Actions need 1.4+.
const (
	Version = "1.5"
	Schema  = "http://adaptivecards.io/schemas/adaptive-card.json"
)

// Card is the root of an Adaptive Card. Its JSON always carries
// "type":"AdaptiveCard", "$schema" and "version", so a zero Card is valid too.
type Card struct {
	Body    []Element `json:"body"`
	Actions []Action  `json:"actions,omitempty"`
	// FallbackText is what clients that cannot render the card show.
	FallbackText string `json:"fallbackText,omitempty"`
	// Refresh lets a viewer ask for the current state (Teams' "Refresh
	// card" menu item when UserIDs is empty).
	Refresh *Refresh `json:"refresh,omitempty"`
	MSTeams *MSTeams `json:"msteams,omitempty"`
}

// MarshalJSON adds the fixed type, schema and version fields, and writes
// nil Body, Container.Items and FactSet.Facts anywhere in the card as []
// (Adaptive Cards require arrays there).
//
// Elements and actions have no MarshalJSON: they carry their "type" in a
// constant field and are encoded in the same pass as the card, because
// encoding/json re-validates and re-compacts whatever a MarshalJSON
// returns, once per nesting level. The card is written as a wireCard
// (nested show cards and the refresh too), so this is the only MarshalJSON
// that encodes anything. Going through it also keeps text HTML-escaped
// (\u003c) whatever the caller's encoder is set to, as the size budgets
// assume.
func (c Card) MarshalJSON() ([]byte, error) {
	return json.Marshal(c.wire())
}

// wireCard is a Card as written: it has no MarshalJSON, so a card nested
// in an ActionShowCard is encoded in the same pass as the card around it.
type wireCard struct {
	Type    string    `json:"type"`
	Schema  string    `json:"$schema"`
	Version string    `json:"version"`
	Body    []Element `json:"body"`
	Actions []Action  `json:"actions,omitempty"`
	// FallbackText is Card.FallbackText.
	FallbackText string       `json:"fallbackText,omitempty"`
	Refresh      *wireRefresh `json:"refresh,omitempty"`
	MSTeams      *MSTeams     `json:"msteams,omitempty"`
}

// wireRefresh is a Refresh as written, without its MarshalJSON.
type wireRefresh struct {
	Action  ActionExecute `json:"action"`
	UserIDs []string      `json:"userIds"`
}

// wireShowCard is an ActionShowCard whose card is a wireCard.
type wireShowCard struct {
	Type  actionShowCardType `json:"type"`
	Title string             `json:"title"`
	Style string             `json:"style,omitempty"`
	Card  *wireCard          `json:"card"`
}

func (wireShowCard) isAction() {}

func (c Card) wire() *wireCard {
	w := &wireCard{Type: "AdaptiveCard", Schema: Schema, Version: Version,
		Body: withArrays(c.Body), Actions: wireActions(c.Actions), FallbackText: c.FallbackText, MSTeams: c.MSTeams}
	if w.Body == nil {
		w.Body = []Element{}
	}
	if c.Refresh != nil {
		w.Refresh = &wireRefresh{Action: c.Refresh.Action, UserIDs: c.Refresh.UserIDs}
		if w.Refresh.UserIDs == nil {
			w.Refresh.UserIDs = []string{}
		}
	}
	return w
}

// wireActions returns list, or a copy of it in which each ActionShowCard
// with a card is a wireShowCard. Show cards elsewhere (in a fallback) keep
// going through Card.MarshalJSON: the same bytes, one more pass.
func wireActions(list []Action) []Action {
	var out []Action
	for i, a := range list {
		s, ok := a.(ActionShowCard)
		if !ok || s.Card == nil {
			continue
		}
		if out == nil {
			out = slices.Clone(list)
		}
		out[i] = wireShowCard{Title: s.Title, Style: s.Style, Card: s.Card.wire()}
	}
	if out == nil {
		return list
	}
	return out
}

// withArrays returns list, or when a Container or FactSet in it (at any
// depth) has nil Items or Facts, a copy of list in which they are empty.
// The builders in this package never leave them nil, so the copy is rare.
func withArrays(list []Element) []Element {
	if !nilArrays(list) {
		return list
	}
	out := make([]Element, len(list))
	for i, e := range list {
		switch e := e.(type) {
		case Container:
			out[i] = e.withArrays()
		case *Container:
			if e != nil {
				c := e.withArrays()
				out[i] = &c
			} else {
				out[i] = e
			}
		case FactSet:
			out[i] = e.withArrays()
		case *FactSet:
			if e != nil {
				f := e.withArrays()
				out[i] = &f
			} else {
				out[i] = e
			}
		default:
			out[i] = e
		}
	}
	return out
}

// nilArrays reports whether withArrays has anything to fix in list.
func nilArrays(list []Element) bool {
	for _, e := range list {
		switch e := e.(type) {
		case Container:
			if e.Items == nil || nilArrays(e.Items) {
				return true
			}
		case *Container:
			if e != nil && (e.Items == nil || nilArrays(e.Items)) {
				return true
			}
		case FactSet:
			if e.Facts == nil {
				return true
			}
		case *FactSet:
			if e != nil && e.Facts == nil {
				return true
			}
		}
	}
	return false
}

func (c Container) withArrays() Container {
	c.Items = withArrays(c.Items)
	if c.Items == nil {
		c.Items = []Element{}
	}
	return c
}

func (f FactSet) withArrays() FactSet {
	if f.Facts == nil {
		f.Facts = []Fact{}
	}
	return f
}

// MSTeams holds Teams-only card options.
type MSTeams struct {
	// Width "Full" uses the whole message width instead of a narrow bubble.
	Width string `json:"width,omitempty"`
	// Entities are the @mentions whose `<at>…</at>` text appears in the
	// card's text blocks.
	Entities []Mention `json:"entities,omitempty"`
}

// Mention is one Teams @mention: Text ("<at>Name</at>") must appear as is
// in a TextBlock, and Mentioned names the user (Teams user id or Entra
// object id) it notifies.
type Mention struct {
	Type      string    `json:"type"` // always "mention"
	Text      string    `json:"text"`
	Mentioned Mentioned `json:"mentioned"`
}

// Mentioned is the person a Mention points at.
type Mentioned struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Refresh is the card's refresh section (Universal Actions).
type Refresh struct {
	Action ActionExecute `json:"action"`
	// UserIDs are the MRIs refreshed automatically; empty (not omitted)
	// means refresh on demand only, so viewers never cause invoke storms.
	UserIDs []string `json:"userIds"`
}

// MarshalJSON writes an empty userIds array rather than null. A card writes
// its Refresh as a wireRefresh instead, in the same pass.
func (r Refresh) MarshalJSON() ([]byte, error) {
	type fields Refresh
	if r.UserIDs == nil {
		r.UserIDs = []string{}
	}
	return json.Marshal(fields(r))
}

// Element is a card body element: TextBlock, FactSet, Container, ColumnSet,
// Image, ActionSet or one of the inputs.
type Element interface{ isElement() }

// Action is a card action: ActionExecute, ActionSubmit, ActionShowCard or
// ActionOpenURL. Style is "positive", "destructive" or empty (default).
type Action interface{ isAction() }

// TextBlock shows text. Its Text is Adaptive Card markdown: builders in this
// package only put escaped user text into it.
type TextBlock struct {
	// Type always writes "TextBlock"; there is nothing to set.
	Type      textBlockType `json:"type"`
	Text      string        `json:"text"`
	Wrap      bool          `json:"wrap,omitempty"`
	Size      string        `json:"size,omitempty"`   // small, default, medium, large, extraLarge
	Weight    string        `json:"weight,omitempty"` // lighter, default, bolder
	Color     string        `json:"color,omitempty"`  // default, dark, light, accent, good, warning, attention
	IsSubtle  bool          `json:"isSubtle,omitempty"`
	Spacing   string        `json:"spacing,omitempty"`
	Separator bool          `json:"separator,omitempty"`
	// HorizontalAlignment is left (default), center or right.
	HorizontalAlignment string `json:"horizontalAlignment,omitempty"`
	MaxLines            int    `json:"maxLines,omitempty"`
}

// FactSet shows title/value pairs as a two-column table. Inside a Card, nil
// Facts are written as [].
type FactSet struct {
	// Type always writes "FactSet"; there is nothing to set.
	Type      factSetType `json:"type"`
	Facts     []Fact      `json:"facts"`
	Spacing   string      `json:"spacing,omitempty"`
	Separator bool        `json:"separator,omitempty"`
}

// Fact is one row of a FactSet. Teams renders markdown in both fields.
type Fact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

// Container groups elements, optionally with a style (emphasis, good,
// attention, warning, accent). Inside a Card, nil Items are written as [].
type Container struct {
	// Type always writes "Container"; there is nothing to set.
	Type      containerType `json:"type"`
	Items     []Element     `json:"items"`
	Style     string        `json:"style,omitempty"`
	Spacing   string        `json:"spacing,omitempty"`
	Separator bool          `json:"separator,omitempty"`
	// Bleed lets a styled container reach the card's edges.
	Bleed bool `json:"bleed,omitempty"`
	// VerticalContentAlignment is top (default), center or bottom.
	VerticalContentAlignment string `json:"verticalContentAlignment,omitempty"`
}

// InputText is a text field; its value is merged into the data of the action
// that submits it, under its ID.
type InputText struct {
	// Type always writes "Input.Text"; there is nothing to set.
	Type        inputTextType `json:"type"`
	ID          string        `json:"id"`
	Label       string        `json:"label,omitempty"`
	Placeholder string        `json:"placeholder,omitempty"`
	MaxLength   int           `json:"maxLength,omitempty"`
	IsMultiline bool          `json:"isMultiline,omitempty"`
	Value       string        `json:"value,omitempty"`
	IsRequired  bool          `json:"isRequired,omitempty"`
	// Regex is checked by the client before the action is sent; the
	// ErrorMessage shows when it (or IsRequired) fails.
	Regex        string `json:"regex,omitempty"`
	ErrorMessage string `json:"errorMessage,omitempty"`
	Spacing      string `json:"spacing,omitempty"`
}

// ActionExecute is a Universal Action: Teams sends an `adaptiveCard/action`
// invoke with Verb and Data, and shows the card the bot answers with.
type ActionExecute struct {
	// Type always writes "Action.Execute"; there is nothing to set.
	Type  actionExecuteType `json:"type"`
	Title string            `json:"title,omitempty"`
	Verb  string            `json:"verb"`
	Style string            `json:"style,omitempty"`
	Data  ActionData        `json:"data"`
	// Fallback is used by clients without Universal Actions.
	Fallback Action `json:"fallback,omitempty"`
}

// ActionSubmit sends Data merged with the card's input values as a message
// activity's value.
type ActionSubmit struct {
	// Type always writes "Action.Submit"; there is nothing to set.
	Type  actionSubmitType `json:"type"`
	Title string           `json:"title,omitempty"`
	Style string           `json:"style,omitempty"`
	Data  ActionData       `json:"data"`
}

// ActionShowCard reveals a nested card (used for the reject reason).
type ActionShowCard struct {
	// Type always writes "Action.ShowCard"; there is nothing to set.
	Type  actionShowCardType `json:"type"`
	Title string             `json:"title"`
	Style string             `json:"style,omitempty"`
	Card  *Card              `json:"card"`
}

// ActionOpenURL opens a link in the browser; it never reaches the bot.
type ActionOpenURL struct {
	// Type always writes "Action.OpenUrl"; there is nothing to set.
	Type  actionOpenURLType `json:"type"`
	Title string            `json:"title"`
	URL   string            `json:"url"`
}

// The types of the Type fields. Each is empty and writes a constant, so a
// zero struct still says what it is, and the "type" comes first (fields
// are written in declaration order) without the struct needing a
// MarshalJSON of its own: encoding/json re-validates and copies the output
// of every MarshalJSON, so one per struct made encoding a card cost its
// size times its depth. Compacting these few bytes costs next to nothing.
// Decoding ignores the value, as it did before the field existed.
type (
	textBlockType      struct{}
	factSetType        struct{}
	containerType      struct{}
	inputTextType      struct{}
	actionExecuteType  struct{}
	actionSubmitType   struct{}
	actionShowCardType struct{}
	actionOpenURLType  struct{}
)

func (textBlockType) MarshalText() ([]byte, error)      { return []byte("TextBlock"), nil }
func (factSetType) MarshalText() ([]byte, error)        { return []byte("FactSet"), nil }
func (containerType) MarshalText() ([]byte, error)      { return []byte("Container"), nil }
func (inputTextType) MarshalText() ([]byte, error)      { return []byte("Input.Text"), nil }
func (actionExecuteType) MarshalText() ([]byte, error)  { return []byte("Action.Execute"), nil }
func (actionSubmitType) MarshalText() ([]byte, error)   { return []byte("Action.Submit"), nil }
func (actionShowCardType) MarshalText() ([]byte, error) { return []byte("Action.ShowCard"), nil }
func (actionOpenURLType) MarshalText() ([]byte, error)  { return []byte("Action.OpenUrl"), nil }

func (*textBlockType) UnmarshalText([]byte) error      { return nil }
func (*factSetType) UnmarshalText([]byte) error        { return nil }
func (*containerType) UnmarshalText([]byte) error      { return nil }
func (*inputTextType) UnmarshalText([]byte) error      { return nil }
func (*actionExecuteType) UnmarshalText([]byte) error  { return nil }
func (*actionSubmitType) UnmarshalText([]byte) error   { return nil }
func (*actionShowCardType) UnmarshalText([]byte) error { return nil }
func (*actionOpenURLType) UnmarshalText([]byte) error  { return nil }

func (TextBlock) isElement() {}
func (FactSet) isElement()   {}
func (Container) isElement() {}
func (InputText) isElement() {}

func (ActionExecute) isAction()  {}
func (ActionSubmit) isAction()   {}
func (ActionShowCard) isAction() {}
func (ActionOpenURL) isAction()  {}
