package bot

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Teams allows a bot, per conversation (thread), 7 sends or creates per
// second, 8 per 2 s, 60 per 30 s and 1800 per hour. Two token buckets keep
// every window under its limit: at most 3+2W in any W seconds from the
// short bucket and 45+0.45·W from the long one (5/1 s, 7/2 s, 58/30 s,
// 1665/h), so a busy conversation gets about two messages a second for its
// first 45 and then one every 2.2 s.
const (
	paceShortRate  = 2
	paceShortBurst = 3
	paceLongRate   = 0.45
	paceLongBurst  = 45
	// paceIdleEvict: a limiter idle this long is full again, so dropping
	// it loses nothing.
	paceIdleEvict = time.Hour
	paceSweepSize = 1024
)

type paceState struct {
	short, long *rate.Limiter
	last        time.Time
	// blocked is when Teams' last 429 for this conversation lets it be
	// called again: every send and update waits until then.
	blocked time.Time
}

// pacer holds one limiter pair per conversation.
type pacer struct {
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	mu sync.Mutex
	m  map[string]*paceState
}

func newPacer() *pacer {
	return &pacer{now: time.Now, sleep: sleepCtx, m: make(map[string]*paceState)}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// state returns key's limiters, creating them; p.mu must be held.
func (p *pacer) state(key string, now time.Time) *paceState {
	st := p.m[key]
	if st == nil {
		if len(p.m) >= paceSweepSize {
			for k, s := range p.m {
				if now.Sub(s.last) > paceIdleEvict {
					delete(p.m, k)
				}
			}
		}
		st = &paceState{
			short: rate.NewLimiter(paceShortRate, paceShortBurst),
			long:  rate.NewLimiter(paceLongRate, paceLongBurst),
		}
		p.m[key] = st
	}
	return st
}

// reserve books one send for key at now and returns how long to wait.
func (p *pacer) reserve(key string, now time.Time) (time.Duration, func()) {
	p.mu.Lock()
	st := p.state(key, now)
	r1 := st.short.ReserveN(now, 1)
	r2 := st.long.ReserveN(now, 1)
	d := max(r1.DelayFrom(now), r2.DelayFrom(now), st.blocked.Sub(now))
	st.last = now.Add(d)
	p.mu.Unlock()
	return d, func() { r1.CancelAt(now); r2.CancelAt(now) }
}

// tryReserve books one send for key at now if it may go at once; otherwise
// it books nothing and returns how long until it may.
func (p *pacer) tryReserve(key string, now time.Time) time.Duration {
	d, cancel := p.reserve(key, now)
	if d > 0 {
		cancel()
	}
	return d
}

// block keeps key from being called before until (a 429's Retry-After).
func (p *pacer) block(key string, until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.state(key, until)
	if until.After(st.blocked) {
		st.blocked = until
	}
	if until.After(st.last) {
		st.last = until
	}
}

// wait blocks until a send to key is within the limits or ctx ends.
func (p *pacer) wait(ctx context.Context, key string) error {
	d, cancel := p.reserve(key, p.now())
	if d <= 0 {
		return nil
	}
	if err := p.sleep(ctx, d); err != nil {
		cancel()
		return err
	}
	return nil
}
