package cards

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/gatebot/gatebot/approvals"
)

// budgetGateList bounds the rows of a gate list, in JSON bytes.
const budgetGateList = 15000

// GateLine is one gate in a GateList.
type GateLine struct {
	ID       string
	Pipeline string
	// Headline is the input that tells requests apart ("1.4.2"); may be "".
	Headline  string
	State     approvals.State
	RunStatus string // the provider's run status, so a queued run reads "queued"
	Requester string
	Age       time.Duration
	// CanApprove marks gates the viewer may approve.
	CanApprove bool
}

// GateLineOf describes g for a GateList at time now.
func GateLineOf(g *approvals.Gate, now time.Time, canApprove bool) GateLine {
	l := GateLine{ID: g.ID, Pipeline: g.Pipeline, Headline: headline(g, nil), State: g.State,
		Requester: g.Requester.Display(), Age: now.Sub(g.CreatedAt), CanApprove: canApprove}
	if g.Run != nil {
		l.RunStatus = string(g.Run.Status)
	}
	return l
}

// GateList lists gates (the `pending` command: open gates in this
// conversation and gates the viewer can approve), each with its badge,
// short id, pipeline, state, requester and age.
func GateList(title string, lines []GateLine) *Card {
	c := &Card{MSTeams: &MSTeams{Width: "Full"}}
	c.Body = append(c.Body, Container{Style: "emphasis", Bleed: true, Items: []Element{
		TextBlock{Text: inline(title, budgetLine), Wrap: true, Size: "large", Weight: "bolder"},
		TextBlock{Text: "Type `status <gate>` for one gate's card.", Wrap: true, Spacing: "none"},
	}})
	if len(lines) == 0 {
		c.Body = append(c.Body, TextBlock{Text: "Nothing is waiting.", Wrap: true})
		c.FallbackText = truncate(plain(title), maxSummaryRunes) + ": none"
		return c
	}
	used := 0
	for i, l := range lines {
		r := gateRow(l, i > 0)
		raw, err := json.Marshal(r)
		if used += len(raw); err != nil || used > budgetGateList {
			c.Body = append(c.Body, TextBlock{Text: fmt.Sprintf("… and %d more", len(lines)-i), Wrap: true, IsSubtle: true})
			break
		}
		c.Body = append(c.Body, r)
	}
	c.FallbackText = fmt.Sprintf("%s: %d", truncate(plain(title), maxSummaryRunes), len(lines))
	return c
}

func gateRow(l GateLine, separator bool) ColumnSet {
	state := string(l.State)
	if l.State == approvals.StateRunning && l.RunStatus == "queued" {
		state = "queued"
	}
	lk := lookOf(state)
	head := "**" + inline(l.Pipeline, budgetName) + "**"
	if l.Headline != "" {
		head += " " + inline(l.Headline, budgetName)
	}
	sub := "**" + lk.label + "** · " + inline(l.Requester, budgetName) + " · " + age(l.Age)
	if l.CanApprove {
		sub += " · you can approve"
	}
	return ColumnSet{Separator: separator, Spacing: "small", Columns: []Column{
		{Width: "auto", VerticalContentAlignment: "center", Items: []Element{badgeImage(state, "20px")}},
		{Width: "stretch", Items: []Element{
			TextBlock{Text: head, Wrap: true},
			TextBlock{Text: sub, Wrap: true, Size: "small", Spacing: "none"},
		}},
		{Width: "auto", VerticalContentAlignment: "center", Items: []Element{
			TextBlock{Text: inline(ShortID(l.ID), budgetName), Size: "small", IsSubtle: true},
		}},
	}}
}

// age renders how long ago a gate was opened.
func age(d time.Duration) string {
	if d < time.Minute {
		return "just now"
	}
	return relative(d) + " ago"
}
