package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"
)

// Copy is the gate's card as sent to one person's personal chat, next to
// its shared card, so the people who may approve are told where they
// will look. It is opaque to this package like Post. Failed is set,
// instead of an activity id, when the copy can never be sent (the app is
// not installed for the person, or they are not in the gate's
// conversation), so it is not tried again.
type Copy struct {
	For          string          `json:"for"` // the approver entry (UPN or aad:<id>) it was sent for
	Conversation json.RawMessage `json:"conv,omitempty"`
	ActivityID   string          `json:"act,omitempty"`
	Failed       string          `json:"fail,omitempty"`
}

// ErrNoCopyFor marks a Copy without the approver entry it is for.
var ErrNoCopyFor = errors.New("a card copy must name the approver it is for")

// CopyFor returns g's copy for approver entry, if one was recorded.
func (g *Gate) CopyFor(entry string) (Copy, bool) {
	for _, c := range g.Copies {
		if strings.EqualFold(c.For, entry) {
			return c, true
		}
	}
	return Copy{}, false
}

// RecordCopy records a copy of g's card sent to a person (or that it
// cannot be sent), replacing an earlier one for the same approver, and
// binds the copy's conversation (as the channel layer normalises it) to
// the gate, so a click on the copy may act on the gate as one on its card
// does (PostedIn). The gate's card is queued for a sync in the same
// transaction, which brings a copy sent from an older version up to date.
func (s *Store) RecordCopy(ctx context.Context, id string, c Copy, conversation string) (*Gate, error) {
	if strings.TrimSpace(c.For) == "" {
		return nil, ErrNoCopyFor
	}
	return s.update(ctx, "record card copy", id, func(g *Gate, _ time.Time) ([]auditNote, error) {
		i := slices.IndexFunc(g.Copies, func(o Copy) bool { return strings.EqualFold(o.For, c.For) })
		if i >= 0 {
			g.Copies[i] = c
		} else {
			g.Copies = append(g.Copies, c)
		}
		if conversation != "" && !slices.Contains(g.Conversations, conversation) {
			g.Conversations = append(g.Conversations, conversation)
		}
		return nil, nil
	})
}
