package approvals

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// OpenStates returns the states of gates that may still change, in the
// order of a gate's life: what an operator watches for stuck work.
func OpenStates() []State {
	return []State{StatePending, StateApproved, StateTriggering, StateRunning, StateTriggerFailed}
}

// CountByState returns how many gates are in each open state. It reads the
// size of each state's index set of each pipeline (one ZCARD each, in one
// pipeline), so it is cheap enough to run on every metrics scrape. The
// keys are read one by one inside the pipeline, never as one multi-key
// command, so it works on Redis Cluster whatever the prefix.
func (s *Store) CountByState(ctx context.Context) (map[State]int64, error) {
	var pls []string
	if !s.legacy(ctx) {
		var err error
		if pls, err = s.pipelines(ctx); err != nil {
			return nil, err
		}
	}
	states := OpenStates()
	cmds := make([][]*redis.IntCmd, len(states))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, st := range states {
			if pls == nil { // layout 2: one set per state
				cmds[i] = []*redis.IntCmd{p.ZCard(ctx, s.ixStateV2(st))}
				continue
			}
			cmds[i] = s.countState(ctx, p, pls, st)
		}
		return nil
	})
	if err != nil {
		return nil, unavailable("count by state", err)
	}
	out := make(map[State]int64, len(states))
	for i, st := range states {
		out[st] = 0
		for _, c := range cmds[i] {
			out[st] += c.Val()
		}
	}
	return out, nil
}
