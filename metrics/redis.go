package metrics

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
)

// RedisHook returns a go-redis hook that counts failed commands and
// pipelines in gatebot_redis_errors_total. Add it with rdb.AddHook.
func (m *Metrics) RedisHook() redis.Hook { return redisHook{m: m} }

type redisHook struct{ m *Metrics }

func (h redisHook) DialHook(next redis.DialHook) redis.DialHook {
	// A failed dial surfaces again as the command's error; counting it here
	// too would count one outage twice.
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if isRedisFailure(err) && !isHandshake(cmd) {
			h.m.RedisError()
		}
		return err
	}
}

func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if err == nil {
			return nil
		}
		for _, c := range cmds {
			if isRedisFailure(c.Err()) && !isHandshake(c) {
				h.m.RedisError()
				return err
			}
		}
		if isRedisFailure(err) && !slices.ContainsFunc(cmds, isHandshake) {
			// The pipeline failed as a whole (a write to a dead connection)
			// without a per-command error.
			h.m.RedisError()
		}
		return err
	}
}

// isHandshake reports whether cmd is one go-redis sends on each new
// connection and expects older servers to refuse (HELLO before Redis 6,
// CLIENT SETINFO before 7.2, CLIENT MAINT_NOTIFICATIONS before 8): those
// refusals go through the hooks too, and are not failures.
func isHandshake(cmd redis.Cmder) bool {
	switch strings.ToLower(cmd.Name()) {
	case "hello":
		return true
	case "client":
		args := cmd.Args()
		if len(args) < 2 {
			return false
		}
		sub, _ := args[1].(string)
		sub = strings.ToLower(sub)
		return sub == "setinfo" || sub == "maint_notifications"
	}
	return false
}

// isRedisFailure tells a failure from Redis's ordinary answers: a missing
// key (redis.Nil), a WATCHed transaction that lost its race and is retried
// (redis.TxFailedErr), a caller that went away, a script not cached yet
// (go-redis falls back to EVAL) and a consumer group that already exists.
func isRedisFailure(err error) bool {
	switch {
	case err == nil, errors.Is(err, redis.Nil), errors.Is(err, redis.TxFailedErr), errors.Is(err, context.Canceled):
		return false
	}
	var re redis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		if strings.HasPrefix(msg, "NOSCRIPT") || strings.HasPrefix(msg, "BUSYGROUP") {
			return false
		}
	}
	return true
}
