package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ListQuery selects gates for List. Empty Pipeline or State do not filter.
// Cursor is the value List returned for the next page ("" for the first).
// Limit defaults to 50 and is capped at 500.
type ListQuery struct {
	Pipeline string
	State    State
	Cursor   string
	Limit    int
}

// ErrBadCursor is a List cursor that List did not produce.
var ErrBadCursor = errors.New("invalid list cursor")

// List returns gates newest first and the cursor of the next page ("" when
// this page is the last). It reads one sorted-set index (all gates, by
// pipeline, by state, or by both), never scanning the key space; index
// entries whose gate record has expired are pruned on the way.
func (s *Store) List(ctx context.Context, q ListQuery) ([]*Gate, string, error) {
	limit := q.Limit
	switch {
	case limit <= 0:
		limit = 50
	case limit > 500:
		limit = 500
	}
	key := s.ixAll()
	switch {
	case q.Pipeline != "" && q.State != "":
		key = s.ixPipelineState(q.Pipeline, q.State)
	case q.Pipeline != "":
		key = s.ixPipeline(q.Pipeline)
	case q.State != "":
		key = s.ixState(q.State)
	}
	maxScore, curID := "+inf", ""
	var curScore float64
	if q.Cursor != "" {
		sc, id, ok := strings.Cut(q.Cursor, ":")
		f, err := strconv.ParseFloat(sc, 64)
		if !ok || err != nil || id == "" {
			return nil, "", ErrBadCursor
		}
		maxScore, curScore, curID = sc, f, id
	}
	var (
		out    []*Gate
		outZ   []redis.Z
		prune  []any
		offset int64
	)
	// One gate past the page tells whether there is a next page.
	want := limit + 1
	batch := int64(want)
	for len(out) < want {
		zs, err := s.rdb.ZRevRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{
			Max: maxScore, Min: "-inf", Offset: offset, Count: batch,
		}).Result()
		if err != nil {
			return nil, "", unavailable("list gates", err)
		}
		offset += int64(len(zs))
		var cand []redis.Z
		for _, z := range zs {
			id, _ := z.Member.(string)
			// Within one score, members come in descending order: those at
			// or above the cursor id were on earlier pages.
			if curID != "" && z.Score == curScore && id >= curID {
				continue
			}
			cand = append(cand, z)
		}
		if len(cand) > 0 {
			keys := make([]string, len(cand))
			for i, z := range cand {
				keys[i] = s.gateKey(z.Member.(string))
			}
			raws, err := s.rdb.MGet(ctx, keys...).Result()
			if err != nil {
				return nil, "", unavailable("list gates", err)
			}
			for i, raw := range raws {
				str, ok := raw.(string)
				if !ok {
					prune = append(prune, cand[i].Member)
					continue
				}
				g, err := s.codec.decode([]byte(str))
				if err != nil {
					return nil, "", fmt.Errorf("list gates: %w", err)
				}
				if (q.State != "" && g.State != q.State) || (q.Pipeline != "" && g.Pipeline != q.Pipeline) {
					continue
				}
				out = append(out, g)
				outZ = append(outZ, cand[i])
				if len(out) == want {
					break
				}
			}
		}
		if int64(len(zs)) < batch {
			break
		}
	}
	if len(prune) > 0 {
		if err := s.rdb.ZRem(ctx, key, prune...).Err(); err != nil {
			s.log.WarnContext(ctx, "pruning list index failed", "key", key, "err", err)
		}
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := outZ[limit-1]
		next = strconv.FormatFloat(last.Score, 'f', -1, 64) + ":" + last.Member.(string)
	}
	return out, next, nil
}

// endedMember names an ended gate in the "ended" schedule with everything
// pruning needs to find its index entries: the JSON array
// [id, pipeline, state], unambiguous whatever the strings hold.
func endedMember(g *Gate) string {
	b, _ := json.Marshal([3]string{g.ID, g.Pipeline, string(g.State)})
	return string(b)
}

// pruneEnded takes up to limit gates whose retention is over off the list
// indexes and the "ended" schedule, at a cost proportional to what it
// removes. A gate whose record still exists (recreated under the same
// explicit id, or a clock ahead of Redis's) keeps its index entries; List
// prunes those when it meets them without a record.
func (s *Store) pruneEnded(ctx context.Context, limit int) error {
	members, err := s.rdb.ZRangeByScore(ctx, s.endedKey(), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(s.now().UnixMilli(), 10), Count: int64(limit),
	}).Result()
	if err != nil {
		return unavailable("prune indexes", err)
	}
	if len(members) == 0 {
		return nil
	}
	type ended struct{ id, pipeline, state string }
	var gone []ended
	exists := make([]*redis.IntCmd, len(members))
	parsed := make([][3]string, len(members))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, m := range members {
			if err := json.Unmarshal([]byte(m), &parsed[i]); err != nil || parsed[i][0] == "" {
				s.log.WarnContext(ctx, "dropping malformed ended entry", "member", m)
				continue
			}
			exists[i] = p.Exists(ctx, s.gateKey(parsed[i][0]))
		}
		return nil
	})
	if err != nil {
		return unavailable("prune indexes", err)
	}
	for i := range members {
		if exists[i] != nil && exists[i].Val() == 0 {
			gone = append(gone, ended{parsed[i][0], parsed[i][1], parsed[i][2]})
		}
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, e := range gone {
			p.ZRem(ctx, s.ixAll(), e.id)
			p.ZRem(ctx, s.ixPipeline(e.pipeline), e.id)
			p.ZRem(ctx, s.ixState(State(e.state)), e.id)
			p.ZRem(ctx, s.ixPipelineState(e.pipeline, State(e.state)), e.id)
		}
		done := make([]any, len(members))
		for i, m := range members {
			done[i] = m
		}
		p.ZRem(ctx, s.endedKey(), done...)
		return nil
	})
	if err != nil {
		return unavailable("prune indexes", err)
	}
	return nil
}
