package approvals

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// casScript writes a gate change in one round trip: if the gate record is
// still the one the change was computed from (ARGV[1]), it runs the change's
// commands, each on its own key (KEYS[2..], ARGV: argument count, command
// name, arguments), and returns {1}; otherwise it writes nothing and
// returns {0, record as stored} (nil when the gate is gone), which the
// caller decides again from. A script runs atomically, like the
// WATCH/MULTI/EXEC it replaces, without the WATCH, the GET and the
// MULTI's separate round trips.
var casScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur ~= ARGV[1] then
  return {0, cur}
end
local i = 2
for k = 2, #KEYS do
  local n = tonumber(ARGV[i])
  redis.call(ARGV[i + 1], KEYS[k], unpack(ARGV, i + 2, i + 1 + n))
  i = i + 2 + n
end
return {1}
`)

// casCommands are the writes a change may queue: each takes its key first,
// which the script needs to declare every key it touches (Redis Cluster
// routes on them).
var casCommands = map[string]bool{
	"set": true, "zadd": true, "zrem": true, "hset": true, "hdel": true, "xadd": true,
	"expire": true, "pexpire": true, "sadd": true, "srem": true, "del": true,
}

// casArgs turns the commands queued in p into the script's keys and
// arguments after key (the gate record) and expected (its record as read).
func casArgs(key, expected string, p redis.Pipeliner) ([]string, []any, error) {
	cmds := p.Cmds()
	keys := make([]string, 1, len(cmds)+1)
	keys[0] = key
	args := make([]any, 1, 1+4*len(cmds))
	args[0] = expected
	for _, c := range cmds {
		a, name := c.Args(), c.Name()
		var k string
		if len(a) >= 2 {
			k, _ = a[1].(string)
		}
		if k == "" || !casCommands[name] {
			return nil, nil, fmt.Errorf("gate change: %q: %w", name, errNotCAS)
		}
		keys = append(keys, k)
		args = append(args, strconv.Itoa(len(a)-2), name)
		args = append(args, a[2:]...)
	}
	return keys, args, nil
}

// errNotCAS marks a change that queued a command the script cannot run: a
// bug, not a Redis failure.
var errNotCAS = errors.New("command cannot be part of a compare-and-set")

// errStale reports that the gate record changed since it was read; current
// is the record now stored (nil: the gate is gone).
type errStale struct{ current []byte }

func (e *errStale) Error() string { return "gate record changed since it was read" }

// compareAndSet runs the commands queued in p if the record under key is
// still expected; otherwise it returns an *errStale. Redis errors come back
// as they are.
func (s *Store) compareAndSet(ctx context.Context, key, expected string, p redis.Pipeliner) error {
	keys, args, err := casArgs(key, expected, p)
	if err != nil {
		return err
	}
	res, err := casScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return err
	}
	if len(res) == 0 {
		return errors.New("gate change: empty script reply")
	}
	if ok, _ := res[0].(int64); ok == 1 {
		return nil
	}
	stale := &errStale{}
	if len(res) > 1 {
		if cur, ok := res[1].(string); ok {
			stale.current = []byte(cur)
		}
	}
	return stale
}
