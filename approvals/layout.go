package approvals

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Layout is the version of the Redis layout this gatebot writes and reads,
// recorded under P layout. Version 1 (no key) had one trigger stream and
// the callback sweep; version 2 has a trigger stream per pipeline and the
// outbox; version 3 keeps one list index set per state and pipeline (and
// the pipelines set), no longer ix:all, ix:p:* and ix:s:*. A gatebot reads
// every older layout (PrepareTriggers moves the old trigger stream,
// CheckLayout the indexes) and refuses a newer one, which it would
// misread.
const Layout = 3

// ErrLayout is matched (errors.Is) by CheckLayout's refusal of a layout
// newer than this gatebot knows.
var ErrLayout = errors.New("unknown Redis layout")

// CheckLayout records this gatebot's layout under a fresh prefix, and
// refuses, naming both versions, a layout newer than Layout (a
// rolled-back gatebot meeting a newer one's data). On layout 1 or 2 data
// it records 2 and the Store keeps writing layout 2, which replicas of
// the older gatebot still running read, until MigrateLayout (see
// compat.go).
// On layout 3 it also reads the learned record dictionary (WarmDicts).
func (s *Store) CheckLayout(ctx context.Context) error {
	raw, err := s.rdb.Get(ctx, s.layoutKey()).Result()
	switch {
	case errors.Is(err, redis.Nil):
	case err != nil:
		return unavailable("read layout", err)
	default:
		v, perr := strconv.Atoi(raw)
		if perr != nil || v > Layout {
			return fmt.Errorf("%w: the data under %q is layout %q and this gatebot knows layouts up to %d; run a gatebot at least as new as the one that wrote it", ErrLayout, s.opts.Prefix, raw, Layout)
		}
	}
	mode, err := s.recordedMode(ctx)
	if err != nil {
		return unavailable("read layout", err)
	}
	if mode == Layout {
		if err := s.raiseLayout(ctx, Layout); err != nil {
			return err
		}
		s.setMode(Layout)
		return s.WarmDicts(ctx)
	}
	if err := s.raiseLayout(ctx, 2); err != nil {
		return err
	}
	s.setMode(2)
	s.log.WarnContext(ctx, "the Redis data is layout 2: writing layout 2, which older gatebots read, until 'gatebot gates migrate' converts it; run that once every replica runs this version",
		"prefix", s.opts.Prefix)
	return nil
}

func (s *Store) layoutKey() string { return s.opts.Prefix + "layout" }

// migrateIndexes brings the list indexes of layout 1 or 2 to layout 3:
// every pipeline that has an index set is listed in P ix:pl, and the
// dropped indexes (ix:all, ix:p:*, ix:s:*) are unlinked. Every gate of
// those layouts is in its ix:ps set already. It scans the key space once,
// and may run again after a failure.
func (s *Store) migrateIndexes(ctx context.Context) error {
	keys, err := s.scanKeys(ctx, globEscape(s.opts.Prefix)+"ix:*")
	if err != nil {
		return unavailable("migrate indexes", err)
	}
	var pls []any
	var old []string
	for _, k := range keys {
		k = strings.TrimPrefix(k, s.opts.Prefix)
		if rest, ok := strings.CutPrefix(k, "ix:ps:"); ok {
			if _, pl, ok := strings.Cut(rest, ":"); ok && pl != "" {
				pls = append(pls, pl)
			}
		}
		if pl, ok := strings.CutPrefix(k, "ix:p:"); ok && pl != "" {
			pls = append(pls, pl)
		}
		if layout2Index(k) {
			old = append(old, s.opts.Prefix+k)
		}
	}
	if len(pls) > 0 {
		if err := s.rdb.SAdd(ctx, s.pipelinesKey(), pls...).Err(); err != nil {
			return unavailable("migrate indexes", err)
		}
	}
	for _, k := range old {
		if err := s.rdb.Unlink(ctx, k).Err(); err != nil {
			return unavailable("migrate indexes", err)
		}
	}
	if len(old) > 0 {
		s.log.InfoContext(ctx, "migrated the list indexes to layout 3", "pipelines", len(pls), "dropped_keys", len(old))
	}
	return nil
}

// migrateCardSent moves the card digests of layout 2's one hash, P
// ob:cardsent, to the hashes of layout 3 (see cardSentKey), a page at a
// time, and deletes it. It may run again after a failure.
func (s *Store) migrateCardSent(ctx context.Context) error {
	old := s.opts.Prefix + "ob:cardsent"
	var cursor uint64
	for {
		kv, next, err := s.rdb.HScan(ctx, old, cursor, "*", 500).Result()
		if err != nil {
			return unavailable("migrate card digests", err)
		}
		if len(kv) > 0 {
			_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i := 0; i+1 < len(kv); i += 2 {
					p.HSetNX(ctx, s.cardSentKeyV3(kv[i]), kv[i], kv[i+1])
				}
				return nil
			})
			if err != nil {
				return unavailable("migrate card digests", err)
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	if err := s.rdb.Unlink(ctx, old).Err(); err != nil {
		return unavailable("migrate card digests", err)
	}
	return nil
}

// scanKeys returns the keys matching pattern, on every master of a
// cluster (SCAN reads one node).
func (s *Store) scanKeys(ctx context.Context, pattern string) ([]string, error) {
	var (
		mu  sync.Mutex
		out []string
	)
	scan := func(ctx context.Context, c redis.Cmdable) error {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			out = append(out, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
		return out, err
	}
	return out, scan(ctx, s.rdb)
}
