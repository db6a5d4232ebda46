package approvals

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
)

// recentCap bounds the records a Store remembers: two generations of this
// many (a few MiB at most). A gate is busy for seconds (open, votes,
// trigger, polls, card syncs), so a generation of 512 covers a hundred
// gates a second; one that fell out costs a GET and a decode, no more.
const recentCap = 512

// recentRecords remembers, per gate id, the last record this Store read or
// wrote and its decoded gate. It spares the JSON decode of a record already
// seen, and lets update send its compare-and-set without reading first:
// Redis still compares the record, so a stale entry costs one retry, never
// a lost change. Gates handed out are clones; the cache's own are never
// mutated.
type recentRecords struct {
	mu        sync.Mutex
	cur, prev map[string]recentRecord
}

type recentRecord struct {
	rec string
	g   *Gate
}

// known returns the record last seen for id and its gate, which is the
// cache's: read it, clone it to change it.
func (r *recentRecords) known(id string) (string, *Gate, bool) {
	r.mu.Lock()
	e, ok := r.lookupLocked(id)
	r.mu.Unlock()
	return e.rec, e.g, ok
}

// shared returns rec's gate, the cache's (read-only), if rec is the record
// last seen for id.
func (r *recentRecords) shared(id string, rec []byte) (*Gate, bool) {
	r.mu.Lock()
	e, ok := r.lookupLocked(id)
	r.mu.Unlock()
	if !ok || e.rec != string(rec) {
		return nil, false
	}
	return e.g, true
}

// remember records rec as id's latest record; g, its decoded gate, becomes
// the cache's: the caller must not mutate it afterwards.
func (r *recentRecords) remember(id string, rec []byte, g *Gate) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == nil {
		r.cur = make(map[string]recentRecord, recentCap)
	}
	if len(r.cur) >= recentCap {
		r.prev, r.cur = r.cur, make(map[string]recentRecord, recentCap)
	}
	delete(r.prev, id)
	r.cur[id] = recentRecord{rec: string(rec), g: g}
}

// forget drops what is known of id.
func (r *recentRecords) forget(id string) {
	r.mu.Lock()
	delete(r.cur, id)
	delete(r.prev, id)
	r.mu.Unlock()
}

func (r *recentRecords) lookupLocked(id string) (recentRecord, bool) {
	if e, ok := r.cur[id]; ok {
		return e, true
	}
	e, ok := r.prev[id]
	return e, ok
}

// decodeFor decodes rec, gate id's record, unless it is the record this
// Store saw last for id.
func (s *Store) decodeFor(ctx context.Context, id string, rec []byte) (*Gate, error) {
	g, err := s.sharedFor(ctx, id, rec)
	if err != nil {
		return nil, err
	}
	return g.clone(), nil
}

// sharedFor is decodeFor without the copy: the gate is the cache's, to be
// read only.
func (s *Store) sharedFor(ctx context.Context, id string, rec []byte) (*Gate, error) {
	if g, ok := s.recent.shared(id, rec); ok {
		return g, nil
	}
	g, err := s.decodeGate(ctx, rec)
	if err != nil {
		return nil, err
	}
	s.recent.remember(id, rec, g)
	return g, nil
}

// remember records rec as gate id's record, g being what it decodes to;
// g stays the caller's.
func (s *Store) remember(ctx context.Context, id string, rec []byte, g *Gate) {
	if s.checkRecent {
		d, err := s.decodeGate(ctx, rec)
		if err != nil || !reflect.DeepEqual(d, g) {
			panic(fmt.Sprintf("approvals: remembered gate %s differs from its record (%v):\n%#v\n%#v", id, err, g, d))
		}
	}
	s.recent.remember(id, rec, g.clone())
}

// clone returns a deep copy of g: nothing reachable from it is shared with
// g. TestCloneSharesNothing fails when a field is added that it misses.
func (g *Gate) clone() *Gate {
	if g == nil {
		return nil
	}
	c := *g
	c.Inputs = cloneInputs(g.Inputs)
	c.Conversations = slices.Clone(g.Conversations)
	c.Policy.Approvers = slices.Clone(g.Policy.Approvers)
	c.Votes = slices.Clone(g.Votes)
	if g.DecidedBy != nil {
		p := *g.DecidedBy
		c.DecidedBy = &p
	}
	if g.Run != nil {
		run := *g.Run
		run.Ref = maps.Clone(g.Run.Ref)
		c.Run = &run
	}
	c.Post.Conversation = bytes.Clone(g.Post.Conversation)
	if g.Copies != nil {
		c.Copies = make([]Copy, len(g.Copies))
		for i, cp := range g.Copies {
			cp.Conversation = bytes.Clone(cp.Conversation)
			c.Copies[i] = cp
		}
	}
	c.Labels = maps.Clone(g.Labels)
	return &c
}

// cloneInputs deep-copies inputs as JSON decodes them: maps, slices and
// scalars.
func cloneInputs(in map[string]any) map[string]any {
	if in == nil {
		return nil
	}
	out := make(map[string]any, len(in))
	for k, v := range in {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return cloneInputs(t)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = cloneValue(e)
		}
		return out
	case []string:
		return slices.Clone(t)
	case map[string]string:
		return maps.Clone(t)
	}
	return v
}
