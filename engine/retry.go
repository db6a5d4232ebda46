package engine

import (
	"context"
	"time"

	"github.com/gatebot/gatebot/approvals"
)

// whileUnavailable is approvals.RetryUnavailable with the engine's log
// line: a write recording work already done (a run started, a status
// read, a card shown) is retried through a Redis restart until until,
// which callers set inside the work's lease so the write lands while the
// work is still this replica's.
func (e *Engine) whileUnavailable(ctx context.Context, until time.Time, what, gateID string, write func() error) error {
	return approvals.RetryUnavailable(ctx, until, write, func(_ error, wait time.Duration) {
		e.log.WarnContext(ctx, "store unavailable; retrying", "what", what, "gate_id", gateID, "retry_in", wait.String())
	})
}
