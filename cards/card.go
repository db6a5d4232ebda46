package cards

import "encoding/json"

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
	// Refresh lets a viewer ask for the current state (Teams' "Refresh
	// card" menu item when UserIDs is empty).
	Refresh *Refresh `json:"refresh,omitempty"`
	MSTeams *MSTeams `json:"msteams,omitempty"`
}

// MarshalJSON adds the fixed type, schema and version fields.
func (c Card) MarshalJSON() ([]byte, error) {
	type fields Card
	if c.Body == nil {
		c.Body = []Element{} // Adaptive Cards require "body" to be an array.
	}
	return json.Marshal(struct {
		Type    string `json:"type"`
		Schema  string `json:"$schema"`
		Version string `json:"version"`
		fields
	}{"AdaptiveCard", Schema, Version, fields(c)})
}

// MSTeams holds Teams-only card options.
type MSTeams struct {
	// Width "Full" uses the whole message width instead of a narrow bubble.
	Width string `json:"width,omitempty"`
}

// Refresh is the card's refresh section (Universal Actions).
type Refresh struct {
	Action ActionExecute `json:"action"`
	// UserIDs are the MRIs refreshed automatically; empty (not omitted)
	// means refresh on demand only, so viewers never cause invoke storms.
	UserIDs []string `json:"userIds"`
}

// MarshalJSON writes an empty userIds array rather than null.
func (r Refresh) MarshalJSON() ([]byte, error) {
	type fields Refresh
	if r.UserIDs == nil {
		r.UserIDs = []string{}
	}
	return json.Marshal(fields(r))
}

// Element is a card body element: TextBlock, FactSet, Container or
// InputText.
type Element interface{ isElement() }

// Action is a card action: ActionExecute, ActionSubmit, ActionShowCard or
// ActionOpenURL.
type Action interface{ isAction() }

// TextBlock shows text. Its Text is Adaptive Card markdown: builders in this
// package only put escaped user text into it.
type TextBlock struct {
	Text      string `json:"text"`
	Wrap      bool   `json:"wrap,omitempty"`
	Size      string `json:"size,omitempty"`   // small, default, medium, large, extraLarge
	Weight    string `json:"weight,omitempty"` // lighter, default, bolder
	Color     string `json:"color,omitempty"`  // default, dark, light, accent, good, warning, attention
	IsSubtle  bool   `json:"isSubtle,omitempty"`
	Spacing   string `json:"spacing,omitempty"`
	Separator bool   `json:"separator,omitempty"`
}

// MarshalJSON adds "type":"TextBlock".
func (t TextBlock) MarshalJSON() ([]byte, error) {
	type fields TextBlock
	return json.Marshal(struct {
		Type string `json:"type"`
		fields
	}{"TextBlock", fields(t)})
}

// FactSet shows title/value pairs as a two-column table.
type FactSet struct {
	Facts     []Fact `json:"facts"`
	Spacing   string `json:"spacing,omitempty"`
	Separator bool   `json:"separator,omitempty"`
}

// Fact is one row of a FactSet. Teams renders markdown in both fields.
type Fact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

// MarshalJSON adds "type":"FactSet".
func (f FactSet) MarshalJSON() ([]byte, error) {
	type fields FactSet
	if f.Facts == nil {
		f.Facts = []Fact{}
	}
	return json.Marshal(struct {
		Type string `json:"type"`
		fields
	}{"FactSet", fields(f)})
}

// Container groups elements, optionally with a style (emphasis, good,
// attention, warning, accent).
type Container struct {
	Items     []Element `json:"items"`
	Style     string    `json:"style,omitempty"`
	Spacing   string    `json:"spacing,omitempty"`
	Separator bool      `json:"separator,omitempty"`
}

// MarshalJSON adds "type":"Container".
func (c Container) MarshalJSON() ([]byte, error) {
	type fields Container
	if c.Items == nil {
		c.Items = []Element{}
	}
	return json.Marshal(struct {
		Type string `json:"type"`
		fields
	}{"Container", fields(c)})
}

// InputText is a text field; its value is merged into the data of the action
// that submits it, under its ID.
type InputText struct {
	ID          string `json:"id"`
	Label       string `json:"label,omitempty"`
	Placeholder string `json:"placeholder,omitempty"`
	MaxLength   int    `json:"maxLength,omitempty"`
	IsMultiline bool   `json:"isMultiline,omitempty"`
}

// MarshalJSON adds "type":"Input.Text".
func (i InputText) MarshalJSON() ([]byte, error) {
	type fields InputText
	return json.Marshal(struct {
		Type string `json:"type"`
		fields
	}{"Input.Text", fields(i)})
}

// ActionExecute is a Universal Action: Teams sends an `adaptiveCard/action`
// invoke with Verb and Data, and shows the card the bot answers with.
type ActionExecute struct {
	Title string     `json:"title,omitempty"`
	Verb  string     `json:"verb"`
	Data  ActionData `json:"data"`
	// Fallback is used by clients without Universal Actions.
	Fallback Action `json:"fallback,omitempty"`
}

// MarshalJSON adds "type":"Action.Execute".
func (a ActionExecute) MarshalJSON() ([]byte, error) {
	type fields ActionExecute
	return json.Marshal(struct {
		Type string `json:"type"`
		fields
	}{"Action.Execute", fields(a)})
}

// ActionSubmit sends Data merged with the card's input values as a message
// activity's value.
type ActionSubmit struct {
	Title string     `json:"title,omitempty"`
	Data  ActionData `json:"data"`
}

// MarshalJSON adds "type":"Action.Submit".
func (a ActionSubmit) MarshalJSON() ([]byte, error) {
	type fields ActionSubmit
	return json.Marshal(struct {
		Type string `json:"type"`
		fields
	}{"Action.Submit", fields(a)})
}

// ActionShowCard reveals a nested card (used for the reject reason).
type ActionShowCard struct {
	Title string `json:"title"`
	Card  *Card  `json:"card"`
}

// MarshalJSON adds "type":"Action.ShowCard".
func (a ActionShowCard) MarshalJSON() ([]byte, error) {
	type fields ActionShowCard
	return json.Marshal(struct {
		Type string `json:"type"`
		fields
	}{"Action.ShowCard", fields(a)})
}

// ActionOpenURL opens a link in the browser; it never reaches the bot.
type ActionOpenURL struct {
	Title string `json:"title"`
	URL   string `json:"url"`
}

// MarshalJSON adds "type":"Action.OpenUrl".
func (a ActionOpenURL) MarshalJSON() ([]byte, error) {
	type fields ActionOpenURL
	return json.Marshal(struct {
		Type string `json:"type"`
		fields
	}{"Action.OpenUrl", fields(a)})
}

func (TextBlock) isElement() {}
func (FactSet) isElement()   {}
func (Container) isElement() {}
func (InputText) isElement() {}

func (ActionExecute) isAction()  {}
func (ActionSubmit) isAction()   {}
func (ActionShowCard) isAction() {}
func (ActionOpenURL) isAction()  {}
