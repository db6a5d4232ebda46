package cards

import "github.com/gatebot/gatebot/approvals"

// look is how one displayed state reads at a glance: the word on its
// badge, the container style behind the card's header, the badge icon, and
// the verb that starts the message preview ("Approval needed: …").
type look struct {
	label, style, badge, summary string
}

// displayState is the state a person should read: the gate's own, except
// that a running gate whose provider says its run is still queued reads
// "queued", so that the title never says running while the body says
// queued.
func displayState(g *approvals.Gate) string {
	if g.State == approvals.StateRunning && g.Run != nil && g.Run.Status == "queued" {
		return "queued"
	}
	return string(g.State)
}

// looks maps each displayed state to its look. Styles are container
// styles, never text colours, so every title keeps the default
// high-contrast text colour; red (attention) is only for refusals and
// failures.
func lookOf(state string) look {
	switch state {
	case "pending":
		return look{"Approval needed", "accent", "pending", "Approval needed"}
	case "approved":
		return look{"Approved", "good", "approved", "Approved"}
	case "triggering":
		return look{"Starting", "accent", "starting", "Starting"}
	case "queued":
		return look{"Queued", "emphasis", "queued", "Queued"}
	case "running":
		return look{"Running", "accent", "running", "Running"}
	case "succeeded":
		return look{"Succeeded", "good", "succeeded", "Succeeded"}
	case "failed":
		return look{"Failed", "attention", "failed", "Failed"}
	case "trigger_failed":
		return look{"Could not start", "attention", "notstarted", "Could not start"}
	case "rejected":
		return look{"Rejected", "attention", "rejected", "Rejected"}
	case "expired":
		return look{"Expired", "warning", "expired", "Expired"}
	case "cancelled":
		return look{"Cancelled", "emphasis", "cancelled", "Cancelled"}
	}
	return look{"Unknown state", "emphasis", "queued", "Update"}
}

// badgeImage is the small state icon shown left of a header or list row.
func badgeImage(state string, px string) Image {
	l := lookOf(state)
	return Image{URL: badgePNG(l.badge), AltText: l.label, Width: px, Height: px}
}
