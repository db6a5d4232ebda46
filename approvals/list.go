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
// this page is the last). It reads the index sets the query names (see
// index.go) newest first and merges them, never scanning the key space;
// index entries whose gate record has expired are pruned on the way.
func (s *Store) List(ctx context.Context, q ListQuery) ([]*Gate, string, error) {
	limit := q.Limit
	switch {
	case limit <= 0:
		limit = 50
	case limit > 500:
		limit = 500
	}
	at := listPos{max: "+inf"}
	if q.Cursor != "" {
		sc, id, ok := strings.Cut(q.Cursor, ":")
		f, err := strconv.ParseFloat(sc, 64)
		if !ok || err != nil || id == "" {
			return nil, "", ErrBadCursor
		}
		at = listPos{max: sc, score: f, id: id}
	}
	refs, err := s.indexes(ctx, q.Pipeline, q.State)
	if err != nil {
		return nil, "", err
	}
	// One gate past the page tells whether there is a next page.
	want := limit + 1
	batch := int64(want)
	if len(refs) > 1 {
		batch = int64(max(8, min(want, 2*want/len(refs)+1)))
	}
	m := &ixMerge{heads: make([]*ixHead, len(refs)), at: at, batch: batch, seen: map[string]bool{}}
	for i, r := range refs {
		m.heads[i] = &ixHead{ref: r}
	}
	var (
		out   []*Gate
		outZ  []redis.Z
		prune = map[string][]any{}
	)
	for len(out) < want {
		if err := s.fillHeads(ctx, m); err != nil {
			return nil, "", err
		}
		cand, more := m.next(want - len(out))
		gs, err := s.readCandidates(ctx, cand, prune)
		if err != nil {
			return nil, "", err
		}
		for i, g := range gs {
			if g == nil || (cand[i].ref.pipeline != "" && g.Pipeline != cand[i].ref.pipeline) || (q.State != "" && g.State != q.State) {
				continue
			}
			out = append(out, g)
			outZ = append(outZ, cand[i].z)
			if len(out) == want {
				break
			}
		}
		if !more {
			break
		}
	}
	for key, ids := range prune {
		if err := s.rdb.ZRem(ctx, key, ids...).Err(); err != nil {
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

// listPos is where a page starts: at most score max, and within the
// cursor's score only ids below the cursor's.
type listPos struct {
	max   string
	score float64
	id    string
}

// ixHead is what a List has read of one index set and not used yet.
type ixHead struct {
	ref    ixRef
	buf    []redis.Z
	offset int64
	done   bool
}

// ixMerge merges index sets newest first: by created (score) descending,
// then id descending, the order ZREVRANGEBYSCORE gives within one set.
type ixMerge struct {
	heads []*ixHead
	at    listPos
	batch int64
	seen  map[string]bool // a gate changing state meanwhile may be read from two sets
}

// candidate is an index entry to read the gate of.
type candidate struct {
	z   redis.Z
	ref ixRef
}

// fillHeads reads the next batch of every index set whose buffer ran out,
// in one round trip.
func (s *Store) fillHeads(ctx context.Context, m *ixMerge) error {
	var need []*ixHead
	for _, h := range m.heads {
		if len(h.buf) == 0 && !h.done {
			need = append(need, h)
		}
	}
	if len(need) == 0 {
		return nil
	}
	cmds := make([]*redis.ZSliceCmd, len(need))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, h := range need {
			cmds[i] = p.ZRevRangeByScoreWithScores(ctx, h.ref.key, &redis.ZRangeBy{
				Max: m.at.max, Min: "-inf", Offset: h.offset, Count: m.batch,
			})
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return unavailable("list gates", err)
	}
	for i, h := range need {
		zs := cmds[i].Val()
		h.offset += int64(len(zs))
		h.buf, h.done = zs, int64(len(zs)) < m.batch
	}
	return nil
}

// next takes up to n entries in merged order, stopping early where a set
// must be read further first; more is false once every set is used up.
func (m *ixMerge) next(n int) (cand []candidate, more bool) {
	for len(cand) < n {
		best := -1
		for i, h := range m.heads {
			if len(h.buf) == 0 {
				if !h.done {
					return cand, true // read it before going past its last entry
				}
				continue
			}
			if best < 0 || newer(h.buf[0], m.heads[best].buf[0]) {
				best = i
			}
		}
		if best < 0 {
			return cand, false
		}
		h := m.heads[best]
		z := h.buf[0]
		h.buf = h.buf[1:]
		id, _ := z.Member.(string)
		// Within one score, ids at or above the cursor's were on earlier pages.
		if (m.at.id != "" && z.Score == m.at.score && id >= m.at.id) || m.seen[id] {
			continue
		}
		m.seen[id] = true
		cand = append(cand, candidate{z: z, ref: h.ref})
	}
	return cand, true
}

// newer reports whether index entry a comes before b in a list.
func newer(a, b redis.Z) bool {
	if a.Score != b.Score {
		return a.Score > b.Score
	}
	am, _ := a.Member.(string)
	bm, _ := b.Member.(string)
	return am > bm
}

// readCandidates reads the candidates' gates (nil where the record is
// gone, noting the entry in prune by index key).
func (s *Store) readCandidates(ctx context.Context, cand []candidate, prune map[string][]any) ([]*Gate, error) {
	if len(cand) == 0 {
		return nil, nil
	}
	keys := make([]string, len(cand))
	for i, c := range cand {
		keys[i] = s.gateKey(c.z.Member.(string))
	}
	raws, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, unavailable("list gates", err)
	}
	out := make([]*Gate, len(cand))
	for i, raw := range raws {
		str, ok := raw.(string)
		if !ok {
			prune[cand[i].ref.key] = append(prune[cand[i].ref.key], cand[i].z.Member)
			continue
		}
		g, err := s.decodeGate(ctx, []byte(str))
		if err != nil {
			return nil, fmt.Errorf("list gates: %w", err)
		}
		out[i] = g
	}
	return out, nil
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
	legacy := s.legacy(ctx)
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
			p.ZRem(ctx, s.ixPipelineState(e.pipeline, State(e.state)), e.id)
			if legacy {
				p.ZRem(ctx, s.ixAllV2(), e.id)
				p.ZRem(ctx, s.ixPipelineV2(e.pipeline), e.id)
				p.ZRem(ctx, s.ixStateV2(State(e.state)), e.id)
			}
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
