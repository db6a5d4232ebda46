package approvals

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Layout is the version of the Redis layout this gatebot writes and reads,
// recorded under P layout. Version 1 (no key) had one trigger stream and
// the callback sweep; version 2 has a trigger stream per pipeline and the
// outbox. A gatebot reads every older layout (PrepareTriggers moves the
// old trigger stream) and refuses a newer one, which it would misread.
const Layout = 2

// ErrLayout is matched (errors.Is) by CheckLayout's refusal of a layout
// newer than this gatebot knows.
var ErrLayout = errors.New("unknown Redis layout")

// CheckLayout records this gatebot's layout under the prefix if none is
// recorded or an older one is, and refuses, naming both versions, a layout
// newer than Layout (a rolled-back gatebot meeting a newer one's data).
func (s *Store) CheckLayout(ctx context.Context) error {
	key := s.opts.Prefix + "layout"
	raw, err := s.rdb.Get(ctx, key).Result()
	switch {
	case errors.Is(err, redis.Nil):
	case err != nil:
		return unavailable("read layout", err)
	default:
		v, perr := strconv.Atoi(raw)
		if perr != nil || v > Layout {
			return fmt.Errorf("%w: the data under %q is layout %q and this gatebot knows layouts up to %d; run a gatebot at least as new as the one that wrote it", ErrLayout, s.opts.Prefix, raw, Layout)
		}
		if v == Layout {
			return nil
		}
	}
	// A newer gatebot may write its layout at the same moment: never
	// lower a recorded version.
	const raise = `local v = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if v < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return redis.call('GET', KEYS[1])`
	got, err := s.rdb.Eval(ctx, raise, []string{key}, Layout).Text()
	if err != nil {
		return unavailable("record layout", err)
	}
	if got != strconv.Itoa(Layout) {
		return fmt.Errorf("%w: another gatebot recorded layout %s under %q meanwhile; this one knows up to %d", ErrLayout, got, s.opts.Prefix, Layout)
	}
	return nil
}
