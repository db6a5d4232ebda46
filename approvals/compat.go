package approvals

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Upgrading from layout 2 without stopping the deployment: a layout-2
// gatebot cannot read layout-3 records (tag 0x02) nor see gates only the
// layout-3 index holds. So while the recorded layout is older than 3 a
// Store writes and reads layout 2 (records with the 0x01 dictionary, the
// four list indexes, the one card digest hash, the full audit fields),
// plus the ix:pl set, and every replica of every version understands the
// data. Once every replica runs a layout-3 gatebot, MigrateLayout (gatebot
// gates migrate) converts the data and records layout 3; each running
// Store notices within layoutRecheck, switches, and clears what it wrote
// the layout-2 way meanwhile.

// layoutRecheck is how often a Store writing layout 2 looks whether the
// recorded layout has become 3.
const layoutRecheck = 10 * time.Second

// layoutMode is the layout a Store reads and writes: 0 not known yet, 2
// or 3. It never goes back from 3.
type layoutMode struct {
	mu      sync.Mutex
	v       int
	checked time.Time
	recheck sync.Mutex // held by the one goroutine rereading the layout
}

// legacy reports whether s reads and writes layout 2 now, reading the
// recorded layout when it is not known or, while 2, every layoutRecheck.
// When Redis cannot say, it answers true without remembering: layout-2
// writes are the ones every gatebot reads.
func (s *Store) legacy(ctx context.Context) bool {
	s.mode.mu.Lock()
	v, fresh := s.mode.v, time.Since(s.mode.checked) < layoutRecheck
	s.mode.mu.Unlock()
	if v == Layout || (v != 0 && fresh) {
		return v != Layout
	}
	// One goroutine rereads the layout; the others go on with the one
	// known (callers may hold a transaction's connection, see
	// currentDict).
	if v != 0 && !s.mode.recheck.TryLock() {
		return v != Layout
	}
	if v != 0 {
		defer s.mode.recheck.Unlock()
	}
	nv, err := s.recordedMode(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "could not read the Redis layout; writing layout 2", "err", err)
		return true
	}
	if v == 2 && nv == Layout {
		// What this Store wrote the layout-2 way since the migration.
		if err := s.migrateData(ctx); err != nil {
			s.log.WarnContext(ctx, "could not clear layout-2 keys; the next switch or gatebot gates migrate will", "err", err)
		} else {
			s.log.InfoContext(ctx, "the Redis layout is 3 now; writing layout 3")
		}
	}
	s.setMode(nv)
	return nv != Layout
}

// isLegacy is legacy's last answer (true when none), for the parts of an
// operation after its first call.
func (s *Store) isLegacy() bool {
	s.mode.mu.Lock()
	defer s.mode.mu.Unlock()
	return s.mode.v != Layout
}

func (s *Store) setMode(v int) {
	s.mode.mu.Lock()
	s.mode.v, s.mode.checked = v, time.Now()
	s.mode.mu.Unlock()
}

// recordedMode is the layout to use for the data under the prefix: 3 for
// layout 3 (or newer, which CheckLayout refuses) and for a fresh prefix,
// 2 for layout 1 or 2 data.
func (s *Store) recordedMode(ctx context.Context) (int, error) {
	raw, err := s.rdb.Get(ctx, s.layoutKey()).Result()
	switch {
	case errors.Is(err, redis.Nil):
		// Layout 1 recorded nothing: data without a layout is older.
		n, err := s.rdb.Exists(ctx, s.opts.Prefix+"ix:all").Result()
		if err != nil {
			return 0, err
		}
		if n > 0 {
			return 2, nil
		}
		return Layout, nil
	case err != nil:
		return 0, err
	}
	if v, err := strconv.Atoi(raw); err == nil && v < Layout {
		return 2, nil
	}
	return Layout, nil
}

// MigrateLayout converts layout 1 or 2 data to layout 3 and records
// layout 3 (see migrateData); Stores writing layout 2 switch within
// layoutRecheck. Run it once every replica runs a gatebot that knows
// layout 3: an older one cannot read layout-3 records. On layout-3 data
// it only clears layout-2 keys left over, and it refuses a newer layout
// like CheckLayout.
func (s *Store) MigrateLayout(ctx context.Context) error {
	if err := s.CheckLayout(ctx); err != nil {
		return err
	}
	if err := s.migrateData(ctx); err != nil {
		return err
	}
	if err := s.raiseLayout(ctx, Layout); err != nil {
		return err
	}
	s.setMode(Layout)
	return nil
}

// migrateData moves the list indexes and card digests to layout 3; it may
// run any number of times.
func (s *Store) migrateData(ctx context.Context) error {
	if err := s.migrateIndexes(ctx); err != nil {
		return err
	}
	return s.migrateCardSent(ctx)
}

// raiseLayout records layout v unless a newer one is recorded, and
// refuses (ErrLayout) when one is.
func (s *Store) raiseLayout(ctx context.Context, v int) error {
	// A newer gatebot may write its layout at the same moment: never
	// lower a recorded version.
	const raise = `local v = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if v < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return redis.call('GET', KEYS[1])`
	got, err := s.rdb.Eval(ctx, raise, []string{s.layoutKey()}, v).Text()
	if err != nil {
		return unavailable("record layout", err)
	}
	if n, err := strconv.Atoi(got); err != nil || n > Layout {
		return fmt.Errorf("%w: another gatebot recorded layout %s under %q meanwhile; this one knows up to %d", ErrLayout, got, s.opts.Prefix, Layout)
	}
	return nil
}
