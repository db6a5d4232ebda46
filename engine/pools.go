package engine

import (
	"context"
	"sync"
)

// pools is a global pool of worker slots with a limit per provider.
type pools struct {
	perProvider int

	mu   sync.Mutex
	busy map[string]int
	all  int
	max  int
	// freed is signalled (without blocking) when a slot is released, so
	// a loop waiting for capacity wakes at once.
	freed chan struct{}
	wake  chan struct{} // closed and replaced on every release
}

func newPools(total, perProvider int) *pools {
	return &pools{perProvider: perProvider, max: total, busy: map[string]int{}, freed: make(chan struct{}, 1), wake: make(chan struct{})}
}

// free reports how many more calls provider may make now.
func (p *pools) free(provider string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return min(p.max-p.all, p.perProvider-p.busy[provider])
}

// total reports how many slots are free in all.
func (p *pools) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.max - p.all
}

// tryAcquire takes a slot for provider if one is free.
func (p *pools) tryAcquire(provider string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.all >= p.max || p.busy[provider] >= p.perProvider {
		return false
	}
	p.all++
	p.busy[provider]++
	return true
}

// acquire takes a slot for provider, waiting for one to be released; false
// when ctx ended first (no slot taken).
func (p *pools) acquire(ctx context.Context, provider string) bool {
	for !p.tryAcquire(provider) {
		p.mu.Lock()
		ch := p.wake
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

func (p *pools) release(provider string) {
	p.mu.Lock()
	p.all--
	p.busy[provider]--
	if p.busy[provider] == 0 {
		delete(p.busy, provider)
	}
	close(p.wake) // every waiter tries again
	p.wake = make(chan struct{})
	p.mu.Unlock()
	select {
	case p.freed <- struct{}{}:
	default:
	}
}
