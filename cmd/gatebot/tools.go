package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/gatebot/gatebot/approvals"
)

const (
	auditUsage = `usage: gatebot audit [--config FILE] [--pipeline P] [--user U] [--since T] [--until T] [--limit N] [--json]

Print the audit log (who opened, approved, rejected, cancelled or ran which
gate), oldest first. Reads the Redis named by the config's redis.url.`
)

// audit prints the audit log, filtered.
func audit(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlags("audit")
	cfgPath := fs.String("config", getenv("GATEBOT_CONFIG"), "config file")
	pipeline := fs.String("pipeline", "", "only this pipeline")
	user := fs.String("user", "", "only entries by this user (name, UPN or id)")
	since := fs.String("since", "", "entries at or after this time (RFC 3339) or duration ago (e.g. 24h)")
	until := fs.String("until", "", "entries before this time (RFC 3339)")
	limit := fs.Int("limit", 1000, "at most this many entries")
	jsonOut := fs.Bool("json", false, "JSON lines instead of text")
	pos, err := parseArgs(fs, args, "audit", auditUsage, stdout)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, "audit", "", auditUsage); err != nil {
		return err
	}
	c, _, err := loadConfig(*cfgPath, getenv)
	if err != nil {
		return err
	}
	if c.Redis.URL == "" {
		return errNoRedis
	}
	q := approvals.AuditQuery{Pipeline: *pipeline, User: *user, Limit: *limit}
	now := time.Now()
	if q.Since, err = parseWhen(*since, now); err != nil {
		return usageError("audit --since: " + err.Error())
	}
	if q.Until, err = parseWhen(*until, now); err != nil {
		return usageError("audit --until: " + err.Error())
	}
	rdb, closeRedis, err := openRedis(c.Redis, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer closeRedis()
	store, err := approvals.NewStore(rdb, approvals.Options{Prefix: c.Redis.Prefix})
	if err != nil {
		return err
	}
	entries, err := store.Audit(ctx, q)
	if err != nil {
		return fmt.Errorf("read audit log: %w", err)
	}
	return approvals.FormatAudit(stdout, entries, *jsonOut)
}

// parseWhen reads an RFC 3339 time or a duration before now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := parseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration", s)
	}
	return now.Add(-d), nil
}
