package cards

import (
	"strings"

	"github.com/gatebot/gatebot/approvals"
)

// maxSummaryRunes keeps chat previews to one line.
const maxSummaryRunes = 120

// Summary is the plain-text line for the activity's summary (chat previews
// and notifications) of g's card: its state and what it is about, such as
// "Approval needed: deploy-api 1.4.2". It carries no markdown.
func Summary(g *approvals.Gate) string {
	if g == nil {
		return "Approval no longer exists"
	}
	s := lookOf(displayState(g)).summary + ": " + plain(g.Pipeline)
	if h := plain(headline(g, nil)); h != "" {
		s += " " + h
	}
	return truncate(s, maxSummaryRunes)
}

// plain is untrusted text as one line without control characters.
func plain(s string) string {
	return strings.Join(strings.FieldsFunc(s, isSpaceOrControl), " ")
}
