package handlers

import (
	"fmt"
	"time"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/cards"
)

// gateListCard is the answer to `pending`: one line per gate with its
// short id, pipeline, state, requester and age, newest first as given.
// It is built from cards.Notice, which escapes every line as user text
// (pipeline and requester names are not gatebot's); a dedicated
// cards.GateList can replace this one function later.
func gateListCard(gates []*approvals.Gate, now time.Time) *cards.Card {
	if len(gates) == 0 {
		return cards.Notice("No open gates",
			"Nothing is waiting or running here, and no gate is waiting for your approval.")
	}
	lines := make([]cards.GateLine, 0, len(gates))
	for _, g := range gates {
		lines = append(lines, cards.GateLineOf(g, now, false))
	}
	return cards.GateList(fmt.Sprintf("Open gates (%d)", len(gates)), lines)
}

// shortID is how a gate is named in chat: "g_" and the first
// approvals.MinIDPrefix characters of its id, which status and cancel
// accept.
func shortID(id string) string { return cards.ShortID(id) }

// age is a compact duration for a list: 45s, 12m, 3h, 2d.
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", max(int(d/time.Second), 0))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}
