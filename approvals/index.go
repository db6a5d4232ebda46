package approvals

import (
	"context"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The list index is one sorted set per state and pipeline, gate id →
// created (ms): P ix:ps:<state>:<pipeline>. A gate is in exactly one of
// them, so each costs one sorted-set member, moved in the transaction
// that changes its state. Queries by pipeline, by state or of all gates
// merge the sets involved; the pipelines are listed in the small set P
// ix:pl, which Create adds to. (Layout 2 also kept P ix:all, P
// ix:p:<pipeline> and P ix:s:<state>: three more members per gate.)

// allStates is every state, in the order of a gate's life.
func allStates() []State {
	return []State{StatePending, StateApproved, StateTriggering, StateRunning, StateTriggerFailed,
		StateSucceeded, StateFailed, StateRejected, StateExpired, StateCancelled}
}

func (s *Store) ixPipelineState(p string, st State) string {
	return s.opts.Prefix + "ix:ps:" + string(st) + ":" + p
}
func (s *Store) pipelinesKey() string { return s.opts.Prefix + "ix:pl" }

// ixRef is one index set and what its members are.
type ixRef struct {
	key      string
	pipeline string
	state    State
}

// Layout 2's other indexes (see compat.go).
func (s *Store) ixAllV2() string              { return s.opts.Prefix + "ix:all" }
func (s *Store) ixPipelineV2(p string) string { return s.opts.Prefix + "ix:p:" + p }
func (s *Store) ixStateV2(st State) string    { return s.opts.Prefix + "ix:s:" + string(st) }

// indexAdd queues, inside a change's MULTI, g's entry in the index of
// state st and its pipeline's place in the pipelines set, and in layout 2
// its entries in the other three indexes.
func (s *Store) indexAdd(ctx context.Context, p redis.Pipeliner, g *Gate, st State, legacy bool) {
	z := redis.Z{Score: ms(g.CreatedAt), Member: g.ID}
	p.SAdd(ctx, s.pipelinesKey(), g.Pipeline)
	p.ZAdd(ctx, s.ixPipelineState(g.Pipeline, st), z)
	if legacy {
		p.ZAdd(ctx, s.ixAllV2(), z)
		p.ZAdd(ctx, s.ixPipelineV2(g.Pipeline), z)
		p.ZAdd(ctx, s.ixStateV2(st), z)
	}
}

// pipelines returns every pipeline that has had a gate, sorted.
func (s *Store) pipelines(ctx context.Context) ([]string, error) {
	pls, err := s.rdb.SMembers(ctx, s.pipelinesKey()).Result()
	if err != nil {
		return nil, unavailable("list pipelines", err)
	}
	slices.Sort(pls)
	return pls, nil
}

// indexes returns the index sets a query reads: one for a pipeline and a
// state, one per state for a pipeline, one per pipeline for a state, and
// every one for neither. In layout 2 it is always one set, of those
// layout 2 keeps (an empty pipeline or state in the ixRef: any).
func (s *Store) indexes(ctx context.Context, pipeline string, state State) ([]ixRef, error) {
	if s.legacy(ctx) {
		switch {
		case pipeline != "" && state != "":
			return []ixRef{{key: s.ixPipelineState(pipeline, state), pipeline: pipeline, state: state}}, nil
		case pipeline != "":
			return []ixRef{{key: s.ixPipelineV2(pipeline), pipeline: pipeline}}, nil
		case state != "":
			return []ixRef{{key: s.ixStateV2(state), state: state}}, nil
		}
		return []ixRef{{key: s.ixAllV2()}}, nil
	}
	pls := []string{pipeline}
	if pipeline == "" {
		var err error
		if pls, err = s.pipelines(ctx); err != nil {
			return nil, err
		}
	}
	states := []State{state}
	if state == "" {
		states = allStates()
	}
	out := make([]ixRef, 0, len(pls)*len(states))
	for _, pl := range pls {
		for _, st := range states {
			out = append(out, ixRef{key: s.ixPipelineState(pl, st), pipeline: pl, state: st})
		}
	}
	return out, nil
}

// countState sums the sizes of the index sets of state st over pipelines
// into p's replies; the caller adds them up after Exec.
func (s *Store) countState(ctx context.Context, p redis.Pipeliner, pls []string, st State) []*redis.IntCmd {
	cmds := make([]*redis.IntCmd, len(pls))
	for i, pl := range pls {
		cmds[i] = p.ZCard(ctx, s.ixPipelineState(pl, st))
	}
	return cmds
}

// layout2Index reports whether key (without the prefix) is one of the
// indexes layout 2 kept besides ix:ps, which layout 3 drops.
func layout2Index(key string) bool {
	return key == "ix:all" || strings.HasPrefix(key, "ix:p:") || strings.HasPrefix(key, "ix:s:")
}
