package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// The learned dictionary: most of a compressed record is what every gate
// of a deployment shares (the bot, tenant, channel and service URL of the
// conversation reference, the pipeline, its approvers and input names),
// which no fixed dictionary can know. The first gate with a conversation
// reference gives a template: that gate with everything personal or
// per-gate removed (see dictTemplate). It is stored, never to change,
// under P dict:<id>, id being a hash of its content, and P dict names the
// one new records use; each record names its own id, so a record always
// decodes with the dictionary it was written with, and two replicas
// learning at once only make two dictionaries.
//
// P dict:<id> has no TTL and must not be deleted while any record
// names it. A replica that uses one checks every dictRecheck that it is
// still there and restores it (same id, same content) if not.

// dictRecheck is how often an encoder checks that its dictionary is stored.
const dictRecheck = time.Minute

// learnedDicts is a Store's cache of learned dictionaries.
type learnedDicts struct {
	learn   sync.Mutex // one lookup or learning at a time
	mu      sync.Mutex
	byID    map[uint32]*deflateCodec
	cur     *deflateCodec // nil: none learned yet
	curID   uint32
	checked time.Time // when cur was last found stored, or none was found
}

func (s *Store) dictPointerKey() string { return s.opts.Prefix + "dict" }
func (s *Store) dictKey(id uint32) string {
	return s.opts.Prefix + "dict:" + strconv.FormatUint(uint64(id), 16)
}
func dictID(content []byte) uint32 { h := fnv.New32a(); h.Write(content); return max(h.Sum32(), 1) }

// encodeGate is g's record as stored: compressed with the learned
// dictionary when there is one (learning it from g if g can teach it),
// else with the fixed one; in layout 2, with the 0x01 dictionary.
func (s *Store) encodeGate(ctx context.Context, g *Gate) ([]byte, error) {
	if s.legacy(ctx) {
		return codecV1.encode(g)
	}
	c, err := s.currentDict(ctx, g)
	if err != nil {
		s.log.WarnContext(ctx, "no learned record dictionary; using the fixed one", "err", err)
		c = codecV2
	}
	return c.encode(g)
}

// decodeGate reads a stored record, fetching the learned dictionary it
// names if this Store has not met it yet.
func (s *Store) decodeGate(ctx context.Context, rec []byte) (*Gate, error) {
	return decodeRecord(rec, func(id uint32) (*deflateCodec, error) { return s.learnedDict(ctx, id) })
}

// learnedDict returns the codec of dictionary id, reading it once. A
// Store meets the dictionaries of its prefix at start (WarmDicts), so a
// read here is rare: a dictionary another replica learned meanwhile.
func (s *Store) learnedDict(ctx context.Context, id uint32) (*deflateCodec, error) {
	s.dicts.mu.Lock()
	c := s.dicts.byID[id]
	s.dicts.mu.Unlock()
	if c != nil {
		return c, nil
	}
	content, err := s.rdb.Get(ctx, s.dictKey(id)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, fmt.Errorf("decode gate: record dictionary %s is missing", s.dictKey(id))
	case err != nil:
		return nil, unavailable("read record dictionary", err)
	}
	return s.cacheDict(id, content), nil
}

// WarmDicts reads the learned record dictionary this prefix uses, so that
// neither encoding nor decoding has to read it inside a transaction later.
// gatebot calls it at start (CheckLayout does); without it the first
// records still encode and decode, with a read each.
func (s *Store) WarmDicts(ctx context.Context) error {
	raw, err := s.rdb.Get(ctx, s.dictPointerKey()).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return nil
	case err != nil:
		return unavailable("read record dictionary", err)
	}
	n, err := strconv.ParseUint(raw, 16, 32)
	if err != nil || n == 0 {
		return fmt.Errorf("record dictionary pointer %s is %q", s.dictPointerKey(), raw)
	}
	c, err := s.learnedDict(ctx, uint32(n))
	if err != nil {
		return err
	}
	s.setCurrent(c, uint32(n), time.Now())
	return nil
}

func (s *Store) cacheDict(id uint32, content []byte) *deflateCodec {
	s.dicts.mu.Lock()
	defer s.dicts.mu.Unlock()
	if c := s.dicts.byID[id]; c != nil {
		return c
	}
	if s.dicts.byID == nil {
		s.dicts.byID = map[uint32]*deflateCodec{}
	}
	c := newCodecV2(id, content)
	s.dicts.byID[id] = c
	return c
}

// currentDict returns the codec new records use: the learned dictionary
// P dict names, learning one from g when there is none and g has a
// conversation reference, or the fixed dictionary's.
//
// It never waits for another goroutine's lookup: encoders run inside a
// transaction that holds a pooled connection, and the lookup needs one
// more; with every pooled connection held by a waiting encoder the pool
// would stall (it did, at 128 conversations opening gates at once). So
// one goroutine looks while the others use the dictionary known so far,
// or the fixed one.
func (s *Store) currentDict(ctx context.Context, g *Gate) (*deflateCodec, error) {
	if c := s.cachedDict(g); c != nil {
		return c, nil
	}
	if !s.dicts.learn.TryLock() {
		s.dicts.mu.Lock()
		cur := s.dicts.cur
		s.dicts.mu.Unlock()
		if cur != nil {
			return cur, nil
		}
		return codecV2, nil
	}
	defer s.dicts.learn.Unlock()
	if c := s.cachedDict(g); c != nil {
		return c, nil // another goroutine looked meanwhile
	}
	now := time.Now()
	s.dicts.mu.Lock()
	cur, id := s.dicts.cur, s.dicts.curID
	s.dicts.mu.Unlock()
	if cur != nil {
		// Restore it if someone deleted it: same id, same content.
		content := cur.dict[len(gateDictV2):]
		if err := s.rdb.SetNX(ctx, s.dictKey(id), content, 0).Err(); err != nil {
			return nil, unavailable("check record dictionary", err)
		}
		s.setCurrent(cur, id, now)
		return cur, nil
	}
	raw, err := s.rdb.Get(ctx, s.dictPointerKey()).Result()
	if errors.Is(err, redis.Nil) && len(g.Post.Conversation) > 0 {
		raw, err = s.learnDict(ctx, g)
	}
	switch {
	case errors.Is(err, redis.Nil):
		s.setCurrent(nil, 0, now)
		return codecV2, nil
	case err != nil:
		return nil, unavailable("read record dictionary", err)
	}
	n, err := strconv.ParseUint(raw, 16, 32)
	if err != nil || n == 0 {
		return nil, fmt.Errorf("record dictionary pointer %s is %q", s.dictPointerKey(), raw)
	}
	c, err := s.learnedDict(ctx, uint32(n))
	if err != nil {
		return nil, err
	}
	s.setCurrent(c, uint32(n), now)
	return c, nil
}

// cachedDict is the codec for g known without asking Redis, or nil: the
// current learned one checked within dictRecheck, or the fixed one when
// none was found within dictRecheck and g cannot teach one.
func (s *Store) cachedDict(g *Gate) *deflateCodec {
	s.dicts.mu.Lock()
	defer s.dicts.mu.Unlock()
	if time.Since(s.dicts.checked) >= dictRecheck {
		return nil
	}
	if s.dicts.cur != nil {
		return s.dicts.cur
	}
	if len(g.Post.Conversation) == 0 {
		return codecV2
	}
	return nil
}

func (s *Store) setCurrent(c *deflateCodec, id uint32, at time.Time) {
	s.dicts.mu.Lock()
	s.dicts.cur, s.dicts.curID, s.dicts.checked = c, id, at
	s.dicts.mu.Unlock()
}

// learnDict stores g's template as a dictionary and makes it the current
// one unless another replica's got there first; it returns the current id.
func (s *Store) learnDict(ctx context.Context, g *Gate) (string, error) {
	content, err := json.Marshal(dictTemplate(g))
	if err != nil {
		return "", fmt.Errorf("learn record dictionary: %w", err)
	}
	id := dictID(content)
	hex := strconv.FormatUint(uint64(id), 16)
	stored, err := s.rdb.SetNX(ctx, s.dictKey(id), content, 0).Result()
	if err != nil {
		return "", err
	}
	if err := s.rdb.SetNX(ctx, s.dictPointerKey(), hex, 0).Err(); err != nil {
		return "", err
	}
	cur, err := s.rdb.Get(ctx, s.dictPointerKey()).Result()
	switch {
	case err != nil:
		return "", err
	case cur == hex:
		s.log.InfoContext(ctx, "learned a record dictionary", "key", s.dictKey(id), "bytes", len(content))
	case stored:
		// Another replica's came first; no record names this one.
		if err := s.rdb.Del(ctx, s.dictKey(id)).Err(); err != nil {
			s.log.WarnContext(ctx, "could not delete an unused record dictionary", "key", s.dictKey(id), "err", err)
		}
	}
	return cur, nil
}

// dictTemplate is what g shares with the other gates of its deployment:
// its pipeline, input names, origin, tenant, conversations and policy, and
// its conversation reference with the requester's identifiers blanked
// out. Nothing personal or per-gate (requester, message, input values,
// votes, ids) goes into a dictionary, which outlives every gate.
func dictTemplate(g *Gate) *Gate {
	t := &Gate{ID: "g_", Pipeline: g.Pipeline, Origin: g.Origin, Tenant: g.Tenant, Conversations: g.Conversations,
		Policy: g.Policy, State: StatePending, CreatedAt: g.CreatedAt, Deadline: g.Deadline, UpdatedAt: g.CreatedAt, Version: 1}
	if len(g.Inputs) > 0 {
		t.Inputs = map[string]any{}
		for k := range g.Inputs {
			t.Inputs[k] = ""
		}
	}
	if conv := scrubbed(g.Post.Conversation, g.Requester); conv != nil {
		t.Post.Conversation = conv
	}
	return t
}

// scrubbed is the JSON document raw with every string that holds one of
// p's identifiers or name (case-insensitively) emptied, or nil when raw is
// not JSON.
func scrubbed(raw json.RawMessage, p Person) json.RawMessage {
	var doc any
	if len(raw) == 0 || json.Unmarshal(raw, &doc) != nil {
		return nil
	}
	var ids []string
	for _, id := range []string{p.ID, p.AADObjectID, p.UPN, p.Name} {
		if len(id) >= 3 {
			ids = append(ids, strings.ToLower(id))
		}
	}
	var walk func(v any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				v[k] = walk(e)
			}
		case []any:
			for i, e := range v {
				v[i] = walk(e)
			}
		case string:
			for _, id := range ids {
				if strings.Contains(strings.ToLower(v), id) {
					return ""
				}
			}
		}
		return v
	}
	out, err := json.Marshal(walk(doc))
	if err != nil {
		return nil
	}
	return out
}
