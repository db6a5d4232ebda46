package cards

import (
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatebot/gatebot/approvals"
)

// Role says which rendering of a gate card a viewer gets.
type Role int

const (
	// RoleShared is the message everyone in the conversation sees: the
	// decision buttons show (the bot checks eligibility on click) and the
	// card says whose approval is awaited.
	RoleShared Role = iota
	// RoleApprover is the view refreshed for one eligible approver.
	RoleApprover
	// RoleObserver is the read-only view: no decision buttons.
	RoleObserver
)

// Tone colours a notice: neutral, a confirmation, or a refusal/failure.
type Tone int

// Notice tones: neutral grey, green, and red only for refusals.
const (
	ToneInfo Tone = iota
	ToneSuccess
	ToneRefusal
)

func (t Tone) style() string {
	switch t {
	case ToneSuccess:
		return "good"
	case ToneRefusal:
		return "attention"
	}
	return "emphasis"
}

// GateView is what a gate card shows besides the gate itself: details from
// the pipeline's definition, the clock, and who is looking.
type GateView struct {
	// Description is the pipeline's description from config.
	Description string
	// InputOrder lists input names in display order; inputs not in it
	// follow in name order.
	InputOrder []string
	// InputDescriptions are the declared inputs' descriptions, by name,
	// shown under each value.
	InputDescriptions map[string]string
	// Now is the time the card is built at (elapsed and relative times);
	// zero means time.Now().
	Now time.Time
	// Location is the time zone of the card's fallback text; the card
	// itself shows times in each viewer's own zone. Nil means UTC.
	Location *time.Location
	// CanCancel shows a Cancel button on a running (or failed-to-start) gate.
	CanCancel bool
	// CanRetry shows a Retry button on a gate whose trigger failed.
	CanRetry bool
	// Notice is a short line shown above the header, meant for the card
	// answered to one clicker ("Your approval is recorded (1 of 2)").
	Notice string
	// NoticeTone colours the notice; refusals and failures are ToneRefusal.
	NoticeTone Tone
	// RunStarted is when the current run was started; zero means the time
	// of the last approval.
	RunStarted time.Time
	// Names are resolved display names keyed by UPN, Entra object id (with
	// or without "aad:") or Teams user id; a person not in it shows under
	// the name the channel gave.
	Names map[string]string
	// Eligible are the resolved people the policy lets approve: they are
	// @mentioned (when they have a Teams or Entra id) and, up to 60 who
	// have not voted, listed in refresh.userIds.
	Eligible []approvals.Person
	// Role picks the rendering: shared, one approver's, or read-only.
	Role Role
	// Confirm (the pipeline's approval.confirm) makes Approve ask first:
	// its button sends VerbConfirmApprove, answered with ConfirmApprove.
	Confirm bool
	// Target names where the run goes ("prod"), for the confirm question.
	Target string
}

// Gate builds the card for g in its current state. Pending gates get
// Approve and Reject buttons (not in RoleObserver); running gates a Cancel
// button (if v.CanCancel); gates whose trigger failed Retry and Cancel (if
// allowed). Every gate with a run URL gets a View run link. Final gates
// get no button that reaches the bot. A nil gate gives a "not found" notice.
func Gate(g *approvals.Gate, v GateView) *Card {
	if g == nil {
		return Notice("This approval no longer exists")
	}
	if v.Now.IsZero() {
		v.Now = time.Now()
	}
	b := &gateCard{g: g, v: v, pp: &people{names: v.Names, eligible: v.Eligible}}
	return b.build()
}

// Status is the card the `status <gate>` command answers with: the gate
// card as everyone sees it.
func Status(g *approvals.Gate, v GateView) *Card { return Gate(g, v) }

type gateCard struct {
	g  *approvals.Gate
	v  GateView
	pp *people
}

func (b *gateCard) build() *Card {
	g, v := b.g, b.v
	c := &Card{MSTeams: &MSTeams{Width: "Full"}}
	if v.Notice != "" {
		n := noticeBox(v.Notice, v.NoticeTone)
		n.Bleed = true // flush with the header band below it
		c.Body = append(c.Body, n)
	}
	c.Body = append(c.Body, b.header())
	if v.Description != "" {
		c.Body = append(c.Body, TextBlock{Text: inline(v.Description, budgetDesc), Wrap: true, IsSubtle: true})
	}
	c.Body = append(c.Body, b.inputs()...)
	c.Body = append(c.Body, TextBlock{Text: b.requestedBy(), Wrap: true, Spacing: "medium"})
	if strings.TrimSpace(g.Message) != "" {
		c.Body = append(c.Body, Container{Style: "emphasis", Spacing: "small", Items: []Element{
			TextBlock{Text: block(g.Message, budgetMessage), Wrap: true},
		}})
	}
	c.Body = append(c.Body, Container{Separator: true, Spacing: "medium", Items: b.status()})
	c.Body = append(c.Body, footer(g.ID))
	c.Actions = b.actions()
	if !g.State.Final() {
		c.Refresh = &Refresh{Action: ActionExecute{Title: "Refresh", Verb: VerbRefresh,
			Data: ActionData{Verb: VerbRefresh, GateID: g.ID}}, UserIDs: refreshUsers(g, v.Eligible)}
	}
	if len(b.pp.mentions) > 0 {
		c.MSTeams.Entities = b.pp.mentions
	}
	c.FallbackText = Summary(g)
	if g.State == approvals.StatePending && !g.Deadline.IsZero() {
		c.FallbackText += " (expires " + formatTime(g.Deadline, v.Location) + ")"
	}
	return c
}

// noticeBox is a one-line notice in a container coloured by its tone, its
// text in the default colour so it stays readable.
func noticeBox(text string, tone Tone) Container {
	return Container{Style: tone.style(), Items: []Element{
		TextBlock{Text: inline(text, budgetLine), Wrap: true, Weight: "bolder"},
	}}
}

// header is the coloured band with the state badge, the title (pipeline
// and its headline input) and the state word with the one live detail.
func (b *gateCard) header() Container {
	g := b.g
	state := displayState(g)
	l := lookOf(state)
	title := inline(g.Pipeline, budgetName)
	if h := headline(g, b.v.InputOrder); h != "" {
		title += " " + inline(h, budgetName)
	}
	sub := "**" + l.label + "**"
	if d := b.headerDetail(state); d != "" {
		sub += " · " + d
	}
	// Spacing none: a notice band above it joins it without a white gap.
	return Container{Style: l.style, Bleed: true, Spacing: "none", Items: []Element{
		ColumnSet{Columns: []Column{
			{Width: "auto", VerticalContentAlignment: "center", Items: []Element{badgeImage(state, "28px")}},
			{Width: "stretch", VerticalContentAlignment: "center", Items: []Element{
				TextBlock{Text: title, Wrap: true, Size: "large", Weight: "bolder"},
				TextBlock{Text: sub, Wrap: true, Spacing: "none"},
			}},
		}},
	}}
}

// headerDetail is the one fact worth reading next to the state word.
func (b *gateCard) headerDetail(state string) string {
	g, v := b.g, b.v
	switch state {
	case "pending":
		need := max(g.Policy.Required, 1)
		s := itoa(len(g.Approvals())) + " of " + itoa(need) + " approved"
		if !g.Deadline.IsZero() {
			if d := g.Deadline.Sub(v.Now); d > 0 {
				s += " · expires in " + relative(d)
			} else {
				s += " · expiring now"
			}
		}
		return s
	case "triggering":
		if g.Attempts > 1 {
			return "attempt " + itoa(g.Attempts)
		}
	case "running", "queued", "succeeded", "failed":
		// The run line below carries the card's one duration.
		if g.Run != nil && g.Run.ID != "" {
			return "run " + inline(g.Run.ID, budgetName)
		}
	}
	return ""
}

// footer is the small line with the short gate id people type in
// commands (`status g_abcd1234`).
func footer(id string) TextBlock {
	return TextBlock{Text: "Gate " + inline(ShortID(id), budgetName), Size: "small", IsSubtle: true, Spacing: "medium"}
}

// ShortID is the id shown on cards and accepted by commands: "g_" and the
// first 8 characters after it, or the first 10 characters of other ids.
func ShortID(id string) string {
	if rest, ok := strings.CutPrefix(id, "g_"); ok {
		return "g_" + firstRunes(rest, 8)
	}
	// Not one of gatebot's ids: shown whole, so that it can be typed back.
	return firstRunes(id, 64)
}

func firstRunes(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		r = r[:n]
	}
	return string(r)
}

func (b *gateCard) requestedBy() string {
	g := b.g
	s := "Requested by " + b.pp.mention(g.Requester)
	if tok, ok := strings.CutPrefix(g.Origin, "api:"); ok {
		s += " via the API"
		if tok != "" {
			s += " (" + inline(tok, budgetName) + ")"
		}
	}
	return s + " · " + when(g.CreatedAt)
}

// orderedInputs lists the gate's input names in InputOrder, then the rest by
// name.
func orderedInputs(in map[string]any, order []string) []string {
	out := make([]string, 0, len(in))
	seen := make(map[string]bool, len(in))
	for _, n := range order {
		if _, ok := in[n]; ok && !seen[n] {
			out = append(out, n)
			seen[n] = true
		}
	}
	var rest []string
	for n := range in {
		if !seen[n] {
			rest = append(rest, n)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// headline is the input that identifies a request at a glance: "version"
// when there is one, else the first input with a short text value.
func headline(g *approvals.Gate, order []string) string {
	if v, ok := g.Inputs["version"]; ok {
		return formatValue(v)
	}
	for _, n := range orderedInputs(g.Inputs, order) {
		if s, ok := g.Inputs[n].(string); ok && s != "" && len(s) <= 40 {
			return s
		}
	}
	return ""
}

func (b *gateCard) actions() []Action {
	g, v := b.g, b.v
	var out []Action
	switch g.State {
	case approvals.StatePending:
		if v.Role != RoleObserver {
			verb := VerbApprove
			if v.Confirm {
				verb = VerbConfirmApprove
			}
			approve := execute("Approve", verb, g.ID)
			approve.Style, approve.Fallback = "positive", ActionSubmit{Title: "Approve", Style: "positive", Data: approve.Data}
			out = append(out, approve, rejectAction(g.ID))
		}
	case approvals.StateTriggerFailed:
		if v.CanRetry {
			out = append(out, execute("Retry", VerbRetry, g.ID))
		}
		if v.CanCancel {
			out = append(out, execute("Cancel", VerbCancel, g.ID))
		}
	case approvals.StateRunning:
		if v.CanCancel {
			out = append(out, execute("Cancel run", VerbCancel, g.ID))
		}
	}
	if g.Run != nil && safeURL(g.Run.URL) {
		out = append(out, ActionOpenURL{Title: "View run", URL: g.Run.URL})
	}
	return out
}

// rejectAction reveals a reason field and the confirming reject button.
func rejectAction(gateID string) ActionShowCard {
	reject := execute("Reject", VerbReject, gateID)
	reject.Style = "destructive"
	reject.Fallback = ActionSubmit{Title: "Reject", Style: "destructive", Data: reject.Data}
	return ActionShowCard{Title: "Reject", Style: "destructive", Card: &Card{
		Body: []Element{InputText{
			ID:          ReasonInputID,
			Label:       "Reason (optional)",
			Placeholder: "Why not? Everyone in the conversation sees it",
			MaxLength:   MaxReasonRunes,
			IsMultiline: true,
		}},
		Actions: []Action{reject},
	}}
}

// safeURL accepts only absolute http(s) links, so a provider value cannot
// smuggle another scheme into a button.
func safeURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && len(s) <= 2048
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
