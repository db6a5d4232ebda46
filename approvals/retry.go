package approvals

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// RetryUnavailable runs write, and again while it fails with
// ErrUnavailable (Redis restarting or failing over), backing off from
// 100 ms to 2 s, as long as the next try would start before until (zero:
// until ctx ends). It is for writes that record work already done — a
// card posted, a run started, a status read — which are worth waiting a
// few seconds for rather than redoing or leaving to a lease. onRetry,
// when set, is told of each retry (to log it). Other errors come back at
// once.
func RetryUnavailable(ctx context.Context, until time.Time, write func() error, onRetry func(err error, wait time.Duration)) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = 100*time.Millisecond, 2*time.Second
	if dl, ok := ctx.Deadline(); ok && (until.IsZero() || dl.Before(until)) {
		until = dl
	}
	for {
		err := write()
		wait := b.NextBackOff()
		if !errors.Is(err, ErrUnavailable) || (!until.IsZero() && !time.Now().Add(wait).Before(until)) {
			return err
		}
		if onRetry != nil {
			onRetry(err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}
