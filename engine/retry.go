package engine

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/gatebot/gatebot/approvals"
)

// whileUnavailable runs write, and again while the store answers
// ErrUnavailable (Redis restarting or failing over), backing off from
// 100 ms to 2 s, until until: a write that records work already done (a
// run started, a status read, a card shown) is worth waiting a few seconds
// for, where leaving it to its lease would delay it by minutes. It stops
// before until, so the work's lease is still this replica's when the
// write lands.
func (e *Engine) whileUnavailable(ctx context.Context, until time.Time, what, gateID string, write func() error) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = 100*time.Millisecond, 2*time.Second
	for {
		err := write()
		wait := b.NextBackOff()
		if !errors.Is(err, approvals.ErrUnavailable) || !e.opts.Now().Add(wait).Before(until) {
			return err
		}
		e.log.WarnContext(ctx, "store unavailable; retrying", "what", what, "gate_id", gateID, "retry_in", wait.String())
		if !sleep(ctx, wait) {
			return err
		}
	}
}
