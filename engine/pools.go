package engine

import "sync"

// pools is a global pool of worker slots with a limit per provider. Only
// one goroutine (a loop) acquires; workers release. So what free reports
// stays available until that loop acquires it.
type pools struct {
	perProvider int

	mu   sync.Mutex
	busy map[string]int
	all  int
	max  int
	// freed is signalled (without blocking) when a slot is released, so
	// a loop waiting for capacity wakes at once.
	freed chan struct{}
}

func newPools(total, perProvider int) *pools {
	return &pools{perProvider: perProvider, max: total, busy: map[string]int{}, freed: make(chan struct{}, 1)}
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

func (p *pools) release(provider string) {
	p.mu.Lock()
	p.all--
	p.busy[provider]--
	if p.busy[provider] == 0 {
		delete(p.busy, provider)
	}
	p.mu.Unlock()
	select {
	case p.freed <- struct{}{}:
	default:
	}
}
