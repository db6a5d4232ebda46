package approvals

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
)

// MinIDPrefix is the fewest characters after "g_" that Resolve searches
// by: with 5 random bits a character, 8 make a clash between two gates of
// one retention window unlikely while staying short enough to type.
const MinIDPrefix = 8

// Bounds of one prefix search, so a short prefix on a huge index costs a
// known amount: ZSCAN calls of scanCount entries each, and the candidates
// kept once the prefix is known to be ambiguous.
const (
	scanCount     = 500
	maxScanCalls  = 200
	maxCandidates = 20
	maxIDLen      = 200
	idLen         = 20 // characters after "g_" in a generated id (newGateID)
)

// ErrAmbiguous is Resolve's answer for a prefix that more than one gate's id
// starts with; errors.As gives the *AmbiguousError with the candidates.
var ErrAmbiguous = errors.New("gate id prefix matches more than one gate")

// AmbiguousError lists the gates an id prefix matches (at most
// maxCandidates, sorted), so the caller can show those its user may see.
type AmbiguousError struct {
	Prefix     string
	Candidates []string
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("gate id %s…: %d gates match", e.Prefix, len(e.Candidates))
}

// Unwrap makes errors.Is(err, ErrAmbiguous) hold.
func (e *AmbiguousError) Unwrap() error { return ErrAmbiguous }

// Resolve finds the gate a person named by its full id or a prefix of it
// (with or without the "g_", at least MinIDPrefix characters after it). A
// full id costs one GET; a prefix a bounded ZSCAN of the list index sets.
// Errors: *InvalidError (field "id") for text that cannot be an id or is
// too short, ErrNotFound, *AmbiguousError, and store errors.
func (s *Store) Resolve(ctx context.Context, idOrPrefix string) (*Gate, error) {
	id, err := normaliseID(idOrPrefix)
	if err != nil {
		return nil, err
	}
	g, err := s.Get(ctx, id)
	if !errors.Is(err, ErrNotFound) {
		return g, err
	}
	switch n := len(id) - len("g_"); {
	case n < MinIDPrefix:
		return nil, &InvalidError{Field: "id", Reason: fmt.Sprintf("needs at least %d characters after g_", MinIDPrefix)}
	case n >= idLen:
		// As long as a generated id: a whole id, not a prefix.
		return nil, err
	}
	ids, err := s.scanPrefix(ctx, id)
	if err != nil {
		return nil, err
	}
	switch len(ids) {
	case 0:
		return nil, fmt.Errorf("gate %s…: %w", id, ErrNotFound)
	case 1:
		return s.Get(ctx, ids[0])
	}
	return nil, &AmbiguousError{Prefix: id, Candidates: ids}
}

// normaliseID trims what a person typed and adds the "g_" gatebot's ids
// start with when it is missing.
func normaliseID(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > maxIDLen || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return "", &InvalidError{Field: "id", Reason: "is not a gate id"}
	}
	if !strings.HasPrefix(s, "g_") {
		s = "g_" + s
	}
	return s, nil
}

// scanPrefix returns the ids in the list index that start with prefix and
// whose record still exists, sorted. It scans every non-empty index set
// (ZSCAN MATCH), all of them within one budget of maxScanCalls calls.
// Index entries of expired records are left for List to prune.
func (s *Store) scanPrefix(ctx context.Context, prefix string) ([]string, error) {
	refs, err := s.indexes(ctx, "", "")
	if err != nil {
		return nil, err
	}
	sizes := make([]*redis.IntCmd, len(refs))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range refs {
			sizes[i] = p.ZCard(ctx, r.key)
		}
		return nil
	})
	if err != nil {
		return nil, unavailable("resolve gate id", err)
	}
	pattern := globEscape(prefix) + "*"
	seen := map[string]bool{}
	calls := 0
	for i, r := range refs {
		if sizes[i].Val() == 0 {
			continue
		}
		var cursor uint64
		for {
			if calls == maxScanCalls {
				return nil, &InvalidError{Field: "id", Reason: "is too short to search this many gates; give the full id"}
			}
			calls++
			// ZSCAN returns member, score pairs.
			kv, next, err := s.rdb.ZScan(ctx, r.key, cursor, pattern, scanCount).Result()
			if err != nil {
				return nil, unavailable("resolve gate id", err)
			}
			for i := 0; i < len(kv); i += 2 {
				seen[kv[i]] = true
			}
			cursor = next
			if cursor == 0 || len(seen) >= maxCandidates {
				break
			}
		}
		if len(seen) >= maxCandidates {
			break
		}
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if len(ids) > maxCandidates {
		ids = ids[:maxCandidates]
	}
	return s.existing(ctx, ids)
}

// existing keeps the ids whose gate record is still stored.
func (s *Store) existing(ctx context.Context, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.gateKey(id)
	}
	// One EXISTS per key: a multi-key EXISTS would cross hash slots on a
	// cluster whose prefix has no hash tag.
	cmds := make([]interface{ Val() int64 }, len(keys))
	pipe := s.rdb.Pipeline()
	for i, k := range keys {
		cmds[i] = pipe.Exists(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, unavailable("resolve gate id", err)
	}
	out := ids[:0]
	for i, id := range ids {
		if cmds[i].Val() > 0 {
			out = append(out, id)
		}
	}
	return out, nil
}

// globEscape makes s match literally in a Redis MATCH pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
