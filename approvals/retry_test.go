package approvals

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestRetryUnavailable(t *testing.T) {
	t.Parallel()
	unavailableErr := fmt.Errorf("set post: %w", ErrUnavailable)
	other := errors.New("gate not found")
	for _, tc := range []struct {
		name      string
		fails     int   // calls answering unavailable first
		then      error // the answer after them
		until     time.Duration
		wantCalls int
		wantErr   error
	}{
		{"recorded after a blip", 3, nil, 10 * time.Second, 4, nil},
		{"other errors are not retried", 0, other, 10 * time.Second, 1, other},
		{"gives up before until", 100, nil, 250 * time.Millisecond, 0, ErrUnavailable}, // 0: a few, jittered
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			calls, retries := 0, 0
			start := time.Now()
			err := RetryUnavailable(context.Background(), start.Add(tc.until), func() error {
				calls++
				if calls <= tc.fails {
					return unavailableErr
				}
				return tc.then
			}, func(error, time.Duration) { retries++ })
			if (tc.wantCalls > 0 && calls != tc.wantCalls) || (tc.wantCalls == 0 && calls < 2) || !errors.Is(err, tc.wantErr) {
				t.Errorf("calls %d, err %v; want %d, %v", calls, err, tc.wantCalls, tc.wantErr)
			}
			// A wait that would end past until is never begun; the slack
			// is the timer's own lateness on a loaded machine (CI caught
			// 3 ms), far below the next wait (at least 100 ms) that
			// overstaying would add.
			if took := time.Since(start); took > tc.until+50*time.Millisecond {
				t.Errorf("took %s, past until (%s)", took, tc.until)
			}
			if retries != calls-1 {
				t.Errorf("told of %d retries for %d calls", retries, calls)
			}
		})
	}
}
