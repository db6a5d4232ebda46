package bot

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// TryUpdateActivity is UpdateActivity for callers that must not wait: when
// Teams' per-conversation pacing (or a 429 it answered for this
// conversation) does not allow a call now, or the connector answers 429,
// it returns a *PacedError saying how long to wait, having sent nothing;
// any other failure is returned after one attempt. Updates are paced with
// sends because Teams counts both against the conversation.
func (c *Connector) TryUpdateActivity(ctx context.Context, serviceURL, conversationID, activityID string, act *Activity) error {
	out := prepareActivity(act, conversationID)
	if out.ID == "" {
		out.ID = activityID
	}
	return c.do(ctx, call{op: "update", method: http.MethodPut, serviceURL: serviceURL,
		path: []string{conversationID, "activities", activityID}, in: out, out: &resourceResponse{}, lenient: true,
		pace: "conv|" + conversationID, noWait: true})
}

// TrySendToConversation is SendToConversation for callers that must not
// wait, as TryUpdateActivity is for updates.
func (c *Connector) TrySendToConversation(ctx context.Context, serviceURL, conversationID string, act *Activity) (string, error) {
	out := prepareActivity(act, conversationID)
	var rr resourceResponse
	err := c.do(ctx, call{op: "send", method: http.MethodPost, serviceURL: serviceURL,
		path: []string{conversationID, "activities"}, in: out, out: &rr, lenient: true,
		pace: "conv|" + conversationID, noWait: true})
	return rr.ID, err
}

// PacedError says a call was not made (or was refused with 429) because
// the conversation's rate limit does not allow it before Wait has passed.
type PacedError struct {
	Wait time.Duration
	Err  error // the connector's 429, nil when gatebot's own pacing held the call
}

func (e *PacedError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("bot: conversation throttled for %s: %v", e.Wait, e.Err)
	}
	return fmt.Sprintf("bot: conversation paced for %s", e.Wait)
}

func (e *PacedError) Unwrap() error { return e.Err }

// RetryAfter is how long to wait before calling again.
func (e *PacedError) RetryAfter() time.Duration { return e.Wait }
