package cards

import (
	"time"

	"github.com/gatebot/gatebot/approvals"
)

// ConfirmApprove is the card answered to VerbConfirmApprove when the
// pipeline asks approvers to confirm (approval.confirm): the question
// "Approve deploy-api 1.4.2 to prod?", the inputs being approved, and
// Confirm (VerbApprove) and Back (VerbRefresh, the gate card again).
// It falls back to the gate card when g is no longer pending.
func ConfirmApprove(g *approvals.Gate, v GateView) *Card {
	if g == nil || g.State != approvals.StatePending {
		return Gate(g, v)
	}
	if v.Now.IsZero() {
		v.Now = time.Now()
	}
	b := &gateCard{g: g, v: v, pp: &people{names: v.Names, eligible: v.Eligible}}
	q := "Approve " + inline(g.Pipeline, budgetName)
	if h := headline(g, v.InputOrder); h != "" {
		q += " " + inline(h, budgetName)
	}
	if v.Target != "" {
		q += " to " + inline(v.Target, budgetName)
	}
	q += "?"
	c := &Card{MSTeams: &MSTeams{Width: "Full"}}
	c.Body = append(c.Body, Container{Style: "accent", Bleed: true, Items: []Element{
		ColumnSet{Columns: []Column{
			{Width: "auto", VerticalContentAlignment: "center", Items: []Element{badgeImage("pending", "28px")}},
			{Width: "stretch", VerticalContentAlignment: "center", Items: []Element{
				TextBlock{Text: q, Wrap: true, Size: "large", Weight: "bolder"},
				TextBlock{Text: "Check what you are approving; the run starts once the quorum is reached.", Wrap: true, Spacing: "none"},
			}},
		}},
	}})
	c.Body = append(c.Body, b.inputs()...)
	c.Body = append(c.Body, TextBlock{Text: b.requestedBy(), Wrap: true, Spacing: "medium"})
	c.Body = append(c.Body, footer(g.ID))
	confirm := execute("Confirm approval", VerbApprove, g.ID)
	confirm.Style = "positive"
	confirm.Fallback = ActionSubmit{Title: confirm.Title, Style: "positive", Data: confirm.Data}
	c.Actions = []Action{confirm, execute("Back", VerbRefresh, g.ID)}
	if len(b.pp.mentions) > 0 {
		c.MSTeams.Entities = b.pp.mentions
	}
	c.FallbackText = Summary(g)
	return c
}
