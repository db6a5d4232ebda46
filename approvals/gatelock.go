package approvals

import (
	"context"
	"sync"
)

// gateLocks lets one change of a gate at a time through this Store. Two
// clicks on the same card reach one replica at once (a double tap, a
// Teams retry): without it both decide on the same record, and the loser
// encodes and sends a change for nothing, is answered with the winner's
// record, decodes it and decides again. Changes made by other replicas
// still meet the compare-and-set; this only spares the work a replica
// would race against itself.
type gateLocks struct {
	mu sync.Mutex
	m  map[string]*gateLock
}

type gateLock struct {
	turn    chan struct{} // holds a token while a change of the gate runs
	waiters int           // callers holding or waiting for turn; guarded by gateLocks.mu
}

// lock waits for gate id's turn, or for ctx to end. The returned func
// gives the turn back.
func (l *gateLocks) lock(ctx context.Context, id string) (func(), error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*gateLock{}
	}
	gl := l.m[id]
	if gl == nil {
		gl = &gateLock{turn: make(chan struct{}, 1)}
		l.m[id] = gl
	}
	gl.waiters++
	l.mu.Unlock()
	select {
	case gl.turn <- struct{}{}:
		return func() { <-gl.turn; l.leave(id, gl) }, nil
	case <-ctx.Done():
		l.leave(id, gl)
		return nil, ctx.Err()
	}
}

func (l *gateLocks) leave(id string, gl *gateLock) {
	l.mu.Lock()
	if gl.waiters--; gl.waiters == 0 {
		delete(l.m, id)
	}
	l.mu.Unlock()
}

// held is how many gates have a change running or waiting (tests).
func (l *gateLocks) held() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
