package cards

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gatebot/gatebot/approvals"
)

// inputs lists the gate's inputs in InputOrder, then the rest by name: the
// values as a fact table, each declared description under its value.
// Rows are added while they fit the inputs budget, so many small inputs
// all show and a few huge ones cannot crowd out the card.
func (b *gateCard) inputs() []Element {
	g, v := b.g, b.v
	if len(g.Inputs) == 0 {
		return nil
	}
	order := orderedInputs(g.Inputs, v.InputOrder)
	var out []Element
	used := 0
	for i, n := range order {
		value := TextBlock{Text: inline(formatValue(g.Inputs[n]), budgetValue), Wrap: true}
		if value.Text == "" {
			value.Text, value.IsSubtle = "(empty)", true
		}
		items := []Element{value}
		if d := v.InputDescriptions[n]; d != "" {
			items = append(items, TextBlock{Text: inline(d, budgetHelpDesc), Wrap: true, IsSubtle: true, Size: "small", Spacing: "none"})
		}
		r := ColumnSet{Spacing: "small", Columns: []Column{
			{Width: "1", Items: []Element{TextBlock{Text: inline(n, budgetName), Wrap: true, Weight: "bolder"}}},
			{Width: "3", Items: items},
		}}
		raw, err := json.Marshal(r)
		if used += len(raw); err != nil || used > budgetInputs-moreOverhead {
			out = append(out, TextBlock{Text: fmt.Sprintf("%s %d more %s not shown", Ellipsis, len(order)-i, plural(len(order)-i, "input", "inputs")),
				Wrap: true, IsSubtle: true, Spacing: "small"})
			break
		}
		out = append(out, r)
	}
	if len(out) > 0 {
		if cs, ok := out[0].(ColumnSet); ok {
			cs.Spacing = "medium"
			out[0] = cs
		}
	}
	return out
}

// moreOverhead leaves room for the "N more inputs" line.
const moreOverhead = 96

func (b *gateCard) status() []Element {
	g := b.g
	var items []Element
	add := func(text string, subtle bool) {
		items = append(items, TextBlock{Text: text, Wrap: true, IsSubtle: subtle, Spacing: "small"})
	}
	switch g.State {
	case approvals.StatePending:
		items = append(items, b.pending()...)
	case approvals.StateApproved, approvals.StateTriggering:
		items = append(items, b.approvals()...)
		if g.State == approvals.StateApproved {
			add("Starting the pipeline…", true)
		} else {
			add("Starting the pipeline — waiting for the provider to answer", true)
		}
	case approvals.StateRunning, approvals.StateSucceeded, approvals.StateFailed:
		items = append(items, b.approvals()...)
		items = append(items, b.run()...)
	case approvals.StateCancelled:
		items = append(items, b.approvals()...)
		if g.Run != nil {
			items = append(items, b.run()...)
		}
		items = append(items, b.decided("Cancelled")...)
	case approvals.StateTriggerFailed:
		items = append(items, b.approvals()...)
		msg := "Could not start the pipeline"
		if g.Error != "" {
			msg += ": " + inline(g.Error, budgetLine)
		}
		add(msg, false)
		if g.Attempts > 0 {
			add(fmt.Sprintf("%d %s so far", g.Attempts, plural(g.Attempts, "attempt", "attempts")), true)
		}
	case approvals.StateRejected:
		items = append(items, b.decided("Rejected")...)
		if a := g.Approvals(); len(a) > 0 {
			add("Approved before the rejection by "+list(b.voters(a), func(s string) string { return inline(s, budgetName) }, "and"), true)
		}
	case approvals.StateExpired:
		need := max(g.Policy.Required, 1)
		add(fmt.Sprintf("Expired %s with %d of %d %s", when(g.Deadline), len(g.Approvals()), need, plural(need, "approval", "approvals")), false)
		items = append(items, b.approvals()...)
	}
	return items
}

// voters renders each approving vote's person by name.
func (b *gateCard) voters(vs []approvals.Vote) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = b.pp.nameOf(v.By)
	}
	return out
}

// pending is the quorum, who approved so far, who may still approve (or
// whose approval this card waits for), and the deadline.
func (b *gateCard) pending() []Element {
	g, v, pp := b.g, b.v, b.pp
	need := max(g.Policy.Required, 1)
	have := len(g.Approvals())
	var items []Element
	add := func(text string, subtle bool) {
		items = append(items, TextBlock{Text: text, Wrap: true, IsSubtle: subtle, Spacing: "small"})
	}
	// The quorum itself is in the header; here are the people.
	items = append(items, b.approvals()...)
	left := need - have
	pol := g.Policy
	var open []string
	for _, e := range pol.Approvers {
		if !votedEntry(g, e) {
			open = append(open, e)
		}
	}
	var who string
	switch {
	case len(pol.Approvers) == 0:
		who = "anyone in this conversation"
		if !pol.AllowSelfApproval {
			who += " except the requester"
		}
	default:
		who = list(open, pp.entry, "or")
		if !pol.AllowSelfApproval && slices0(pol.Approvers, g.Requester) {
			who += " (not the requester)"
		}
	}
	switch v.Role {
	case RoleApprover:
		add(fmt.Sprintf("**Your approval is requested** · %d more %s needed", left, plural(left, "approval", "approvals")), false)
		if who != "" {
			add("Can approve: "+who, true)
		}
	default:
		if who != "" {
			add(fmt.Sprintf("Waiting for %d more %s from %s", left, plural(left, "approval", "approvals"), who), false)
		}
	}
	if !g.Deadline.IsZero() {
		s := "Expires " + when(g.Deadline)
		if d := g.Deadline.Sub(v.Now); d > 0 {
			s += " (in " + relative(d) + ")"
		}
		add(s, true)
	}
	return items
}

// slices0 reports whether the requester is on the allow-list.
func slices0(entries []string, p approvals.Person) bool {
	for _, e := range entries {
		if p.Matches(e) {
			return true
		}
	}
	return false
}

// approvals is one line per approving vote, with its time.
func (b *gateCard) approvals() []Element {
	var items []Element
	a := b.g.Approvals()
	for i, vote := range a {
		if i == maxNames {
			items = append(items, TextBlock{Text: fmt.Sprintf("and %d more approvals", len(a)-maxNames), Wrap: true, IsSubtle: true, Spacing: "none"})
			break
		}
		items = append(items, TextBlock{Text: "Approved by " + inline(b.pp.nameOf(vote.By), budgetName) + " · " + when(vote.At),
			Wrap: true, Spacing: "none"})
	}
	return items
}

// decided renders "Rejected by **X** · time" and the reason quoted below.
func (b *gateCard) decided(verb string) []Element {
	g := b.g
	s := verb
	at := g.UpdatedAt
	if g.DecidedBy != nil {
		s += " by **" + inline(b.pp.nameOf(*g.DecidedBy), budgetName) + "**"
		for _, v := range g.Votes {
			if !v.Approve && v.By.Same(*g.DecidedBy) {
				at = v.At
			}
		}
	}
	if !at.IsZero() {
		s += " · " + when(at)
	}
	items := []Element{TextBlock{Text: s, Wrap: true, Spacing: "small"}}
	if r := strings.TrimSpace(g.Reason); r != "" {
		items = append(items, Container{Style: "emphasis", Spacing: "small", Items: []Element{
			TextBlock{Text: "“" + inline(r, budgetLine) + "”", Wrap: true},
		}})
	}
	return items
}

// run renders the run line (with the one duration the card shows), the
// provider's detail, and for failed runs the error.
func (b *gateCard) run() []Element {
	g := b.g
	state := displayState(g)
	id := ""
	var detail string
	if g.Run != nil {
		if g.Run.ID != "" {
			id = " **" + inline(g.Run.ID, budgetName) + "**"
		}
		detail = g.Run.Detail
	}
	elapsed, ok := b.elapsed()
	var line string
	switch state {
	case "queued":
		line = "Run" + id + " is queued at the provider"
	case "running":
		line = "Run" + id + " is running"
	case "succeeded":
		line = "Run" + id + " succeeded"
	case "failed":
		line = "Run" + id + " failed"
	case "cancelled":
		line = "Run" + id + " was cancelled"
	}
	if ok && state != "cancelled" {
		switch state {
		case "queued", "running":
			line += " · " + elapsed + " so far"
		case "succeeded":
			line += " in " + elapsed
		case "failed":
			line += " after " + elapsed
		}
	}
	items := []Element{TextBlock{Text: line, Wrap: true, Weight: "bolder", Spacing: "small"}}
	if detail != "" && !restatesState(detail, state) {
		items = append(items, TextBlock{Text: inline(detail, budgetLine), Wrap: true, IsSubtle: true, Spacing: "none"})
	}
	if g.State == approvals.StateFailed && g.Error != "" {
		items = append(items, TextBlock{Text: inline(g.Error, budgetLine), Wrap: true})
	}
	return items
}

// elapsed is the run's duration so far (running) or in total (final).
func (b *gateCard) elapsed() (string, bool) {
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

// when renders t for the card in each viewer's own time zone and locale:
// Teams replaces the DATE and TIME functions when it shows the card.
func when(t time.Time) string {
	s := t.UTC().Format("2006-01-02T15:04:05Z")
	return "{{DATE(" + s + ", SHORT)}} {{TIME(" + s + ")}}"
}

// relative renders a time distance coarsely: "less than a minute",
// "59 min", "2 h 5 min", "3 days".
func relative(d time.Duration) string {
	switch m := int(d.Minutes()); {
	case m < 1:
		return "less than a minute"
	case m < 60:
		return fmt.Sprintf("%d min", m)
	case m < 48*60:
		if m%60 == 0 {
			return fmt.Sprintf("%d h", m/60)
		}
		return fmt.Sprintf("%d h %d min", m/60, m%60)
	default:
		return fmt.Sprintf("%d days", m/(24*60))
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// stateWords are the provider status words that say no more than a run
// state: a detail made only of one (and a duration) is not shown.
var stateWords = map[string][]string{
	"queued":    {"queued", "pending", "waiting", "scheduled", "not_started", "notstarted"},
	"running":   {"running", "in_progress", "inprogress", "started", "executing", "building"},
	"succeeded": {"succeeded", "success", "successful", "completed", "passed", "ok", "done"},
	"failed":    {"failed", "failure", "error", "errored"},
	"cancelled": {"cancelled", "canceled", "aborted", "stopped"},
}

// restatesState reports whether a provider's detail ("jenkins: SUCCESS",
// "simulated: succeeded (7s)") only repeats the state the card shows.
func restatesState(detail, state string) bool {
	d := strings.ToLower(strings.TrimSpace(detail))
	if _, rest, ok := strings.Cut(d, ": "); ok {
		d = rest
	}
	if i := strings.IndexByte(d, '('); i >= 0 && strings.HasSuffix(d, ")") {
		d = strings.TrimSpace(d[:i])
	}
	for _, w := range stateWords[state] {
		if d == w {
			return true
		}
	}
	return false
}
