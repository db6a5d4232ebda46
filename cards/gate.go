package cards

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatebot/gatebot/approvals"
)

// GateView is what a gate card shows besides the gate itself: details from
// the pipeline's definition, the clock, and what the viewer may do.
type GateView struct {
	// Description is the pipeline's description from config.
	Description string
	// InputOrder lists input names in display order; inputs not in it
	// follow in name order.
	InputOrder []string
	// Now is the time the card is built at (elapsed times); zero means
	// time.Now().
	Now time.Time
	// Location is the time zone for times on the card; nil means UTC.
	Location *time.Location
	// CanCancel shows a Cancel button on a running (or failed-to-start) gate.
	CanCancel bool
	// CanRetry shows a Retry button on a gate whose trigger failed.
	CanRetry bool
	// Notice is a short line shown above the title, meant for the card
	// answered to one clicker ("You already approved this gate.").
	Notice string
	// RunStarted is when the current run was started; zero means the time
	// of the last approval.
	RunStarted time.Time
}

// Gate builds the card for g in its current state. Pending gates get
// Approve and Reject buttons; running gates a Cancel button (if
// v.CanCancel) and a link to the run; gates whose trigger failed a Retry
// button (if v.CanRetry). Final gates get no button that reaches the bot,
// only the "Open run" link when the provider gave one. A nil gate gives a
// "not found" notice.
func Gate(g *approvals.Gate, v GateView) *Card {
	if g == nil {
		return Notice("This approval no longer exists")
	}
	if v.Now.IsZero() {
		v.Now = time.Now()
	}
	b := gateCard{g: g, v: v}
	return b.build()
}

type gateCard struct {
	g *approvals.Gate
	v GateView
}

func (b gateCard) build() *Card {
	g, v := b.g, b.v
	c := &Card{MSTeams: &MSTeams{Width: "Full"}}
	if v.Notice != "" {
		c.Body = append(c.Body, TextBlock{Text: inline(v.Notice, budgetLine), Wrap: true,
			Size: "small", Weight: "bolder", Color: "attention"})
	}
	title, color := b.title()
	c.Body = append(c.Body, TextBlock{Text: title, Wrap: true, Size: "large", Weight: "bolder", Color: color})
	if v.Description != "" {
		c.Body = append(c.Body, TextBlock{Text: inline(v.Description, budgetDesc), Wrap: true,
			IsSubtle: true, Spacing: "none"})
	}
	c.Body = append(c.Body, TextBlock{Text: b.requestedBy(), Wrap: true})
	if strings.TrimSpace(g.Message) != "" {
		c.Body = append(c.Body, Container{Style: "emphasis", Items: []Element{
			TextBlock{Text: block(g.Message, budgetMessage), Wrap: true},
		}})
	}
	if facts := b.inputs(); len(facts) > 0 {
		c.Body = append(c.Body, FactSet{Facts: facts})
	}
	c.Body = append(c.Body, Container{Separator: true, Items: b.status()})
	c.Actions = b.actions()
	if !g.State.Final() {
		c.Refresh = &Refresh{Action: ActionExecute{Verb: VerbRefresh,
			Data: ActionData{Verb: VerbRefresh, GateID: g.ID}}}
	}
	return c
}

func (b gateCard) title() (text, color string) {
	p := inline(b.g.Pipeline, budgetName)
	switch b.g.State {
	case approvals.StatePending:
		return "Approval needed: " + p, ""
	case approvals.StateApproved, approvals.StateTriggering:
		return "Approved: " + p, "good"
	case approvals.StateRunning:
		return "Running: " + p, "accent"
	case approvals.StateSucceeded:
		return "Succeeded: " + p, "good"
	case approvals.StateFailed:
		return "Failed: " + p, "attention"
	case approvals.StateCancelled:
		return "Cancelled: " + p, "warning"
	case approvals.StateTriggerFailed:
		return "Could not start: " + p, "attention"
	case approvals.StateRejected:
		return "Rejected: " + p, "attention"
	case approvals.StateExpired:
		return "Expired: " + p, "warning"
	}
	return p, ""
}

func (b gateCard) requestedBy() string {
	s := "Requested by **" + inline(b.g.Requester.Display(), budgetName) + "**"
	if tok, ok := strings.CutPrefix(b.g.Origin, "api:"); ok {
		s += " via the API"
		if tok != "" {
			s += " (" + inline(tok, budgetName) + ")"
		}
	}
	return s + " at " + formatTime(b.g.CreatedAt, b.v.Location)
}

// inputs lists the gate's inputs in InputOrder, then the rest by name.
func (b gateCard) inputs() []Fact {
	in := b.g.Inputs
	if len(in) == 0 {
		return nil
	}
	order := make([]string, 0, len(in))
	seen := make(map[string]bool, len(in))
	for _, n := range b.v.InputOrder {
		if _, ok := in[n]; ok && !seen[n] {
			order = append(order, n)
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
	order = append(order, rest...)
	// Facts are added while they fit the inputs budget, so many small
	// inputs all show and a few huge ones cannot crowd out the card.
	var facts []Fact
	used := 0
	for i, n := range order {
		f := Fact{Title: inline(n, budgetName), Value: inline(formatValue(in[n]), budgetValue)}
		cost := jsonLen(f.Title) + jsonLen(f.Value) + factOverhead
		if used+cost > budgetInputs-moreOverhead {
			facts = append(facts, Fact{Title: Ellipsis, Value: fmt.Sprintf("%d more %s not shown", len(order)-i, plural(len(order)-i, "input", "inputs"))})
			break
		}
		used += cost
		facts = append(facts, f)
	}
	return facts
}

// factOverhead is the JSON around a fact's two strings; moreOverhead leaves
// room for the "N more inputs" line.
const (
	factOverhead = len(`{"title":"","value":""},`)
	moreOverhead = 64
)

func (b gateCard) status() []Element {
	g, v := b.g, b.v
	var items []Element
	add := func(text, color string, subtle bool) {
		items = append(items, TextBlock{Text: text, Wrap: true, Color: color, IsSubtle: subtle})
	}
	approvers := g.Approvers()
	approvedBy := "Approved"
	if len(approvers) > 0 {
		approvedBy += " by " + names(approvers)
	}
	switch g.State {
	case approvals.StatePending:
		need := max(g.Policy.Required, 1)
		if len(approvers) == 0 {
			add(fmt.Sprintf("**Waiting for %d %s**", need, plural(need, "approval", "approvals")), "", false)
		} else {
			add(fmt.Sprintf("**%d of %d approvals** · approved by %s", len(approvers), need, names(approvers)), "", false)
		}
		add(b.whoMayApprove(), "", true)
		if !g.Deadline.IsZero() {
			add("Expires "+formatTime(g.Deadline, v.Location), "", true)
		}
	case approvals.StateApproved, approvals.StateTriggering:
		add(approvedBy, "good", false)
		start := "Starting the pipeline…"
		if g.Attempts > 1 {
			start = fmt.Sprintf("Starting the pipeline… (attempt %d)", g.Attempts)
		}
		add(start, "", true)
	case approvals.StateRunning, approvals.StateSucceeded, approvals.StateFailed:
		if len(approvers) > 0 {
			add(approvedBy, "", true)
		}
		items = append(items, b.run()...)
	case approvals.StateCancelled:
		if len(approvers) > 0 {
			add(approvedBy, "", true)
		}
		items = append(items, b.run()...)
		add(b.decided("Cancelled"), "warning", false)
	case approvals.StateTriggerFailed:
		add(approvedBy, "", true)
		msg := "Could not start the pipeline"
		if g.Error != "" {
			msg += ": " + inline(g.Error, budgetLine)
		}
		add(msg, "attention", false)
		if g.Attempts > 0 {
			add(fmt.Sprintf("%d %s so far", g.Attempts, plural(g.Attempts, "attempt", "attempts")), "", true)
		}
	case approvals.StateRejected:
		add(b.decided("Rejected"), "attention", false)
		if len(approvers) > 0 {
			add(approvedBy+" before the rejection", "", true)
		}
	case approvals.StateExpired:
		add("Expired — no decision before "+formatTime(g.Deadline, v.Location), "warning", false)
		if len(approvers) > 0 {
			need := max(g.Policy.Required, 1)
			add(fmt.Sprintf("%d of %d approvals: %s", len(approvers), need, names(approvers)), "", true)
		}
	}
	return items
}

// decided renders "Rejected by X: reason" for the person in DecidedBy.
func (b gateCard) decided(verb string) string {
	s := verb
	if b.g.DecidedBy != nil {
		s += " by **" + inline(b.g.DecidedBy.Display(), budgetName) + "**"
	}
	if r := strings.TrimSpace(b.g.Reason); r != "" {
		s += ": " + inline(r, budgetLine)
	}
	return s
}

func (b gateCard) whoMayApprove() string {
	pol := b.g.Policy
	s := "Anyone in this conversation can approve"
	if len(pol.Approvers) > 0 {
		s = "Can approve: " + names(pol.Approvers)
	}
	if !pol.AllowSelfApproval {
		s += " (not the requester)"
	}
	return s
}

// run renders the run status line, its provider detail and, for the failed
// state, the trigger error.
func (b gateCard) run() []Element {
	g := b.g
	if g.Run == nil && g.State == approvals.StateCancelled {
		return nil // cancelled before any run started
	}
	status := string(g.State)
	id := ""
	var detail string
	if g.Run != nil {
		if g.Run.Status != "" {
			status = string(g.Run.Status)
		}
		if g.Run.ID != "" {
			id = " **" + inline(g.Run.ID, budgetName) + "**"
		}
		detail = g.Run.Detail
	}
	var line string
	elapsed, ok := b.elapsed()
	switch status {
	case "queued", "running":
		line = "Run" + id + " is " + status
		if ok {
			line += " · " + elapsed
		}
	case "succeeded", "failed", "cancelled":
		line = "Run" + id + " " + map[string]string{"succeeded": "succeeded in", "failed": "failed after", "cancelled": "was cancelled after"}[status]
		if ok {
			line += " " + elapsed
		} else {
			line = strings.TrimSuffix(strings.TrimSuffix(line, " in"), " after")
		}
	default:
		line = "Run" + id + ": " + inline(status, budgetName)
	}
	color := map[string]string{"succeeded": "good", "failed": "attention"}[status]
	items := []Element{TextBlock{Text: line, Wrap: true, Weight: "bolder", Color: color}}
	if detail != "" {
		items = append(items, TextBlock{Text: inline(detail, budgetLine), Wrap: true, IsSubtle: true, Spacing: "none"})
	}
	if g.State == approvals.StateFailed && g.Error != "" {
		items = append(items, TextBlock{Text: inline(g.Error, budgetLine), Wrap: true, Color: "attention"})
	}
	return items
}

// elapsed is the run's duration so far (running) or in total (final).
func (b gateCard) elapsed() (string, bool) {
	g, v := b.g, b.v
	start := v.RunStarted
	if start.IsZero() {
		if a := g.Approvals(); len(a) > 0 {
			start = a[len(a)-1].At
		}
	}
	if start.IsZero() {
		return "", false
	}
	end := v.Now
	if g.State.Final() && g.UpdatedAt.After(start) {
		end = g.UpdatedAt
	}
	return formatDuration(end.Sub(start)), true
}

func (b gateCard) actions() []Action {
	g, v := b.g, b.v
	var out []Action
	switch g.State {
	case approvals.StatePending:
		out = append(out, execute("Approve", VerbApprove, g.ID), rejectAction(g.ID))
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
		out = append(out, ActionOpenURL{Title: "Open run", URL: g.Run.URL})
	}
	return out
}

// rejectAction reveals a reason field and the confirming reject button.
func rejectAction(gateID string) ActionShowCard {
	return ActionShowCard{Title: "Reject", Card: &Card{
		Body: []Element{InputText{
			ID:          ReasonInputID,
			Label:       "Reason",
			Placeholder: "Reason (optional)",
			MaxLength:   MaxReasonRunes,
			IsMultiline: true,
		}},
		Actions: []Action{execute("Reject", VerbReject, gateID)},
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
