package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/manifest"
)

const (
	auditUsage = `usage: gatebot audit [--config FILE] [--pipeline P] [--user U] [--since T] [--until T] [--limit N] [--json]

Print the audit log (who opened, approved, rejected, cancelled or ran which
gate), oldest first. Reads the Redis named by the config's redis.url.`
	manifestUsage = `usage: gatebot manifest [--config FILE] [--out app.zip] [--app-id ID] [--website-url URL] [--version SEMVER]

Build the Teams app package (manifest.json and icons) to upload in Teams.`
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

// buildManifest writes the Teams app package for the configured bot.
func buildManifest(args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlags("manifest")
	cfgPath := fs.String("config", getenv("GATEBOT_CONFIG"), "config file (for bot.app_id and public_url)")
	out := fs.String("out", "gatebot-teams-app.zip", "where to write the package")
	appID := fs.String("app-id", "", "Microsoft App ID (default: bot.app_id from the config)")
	ver := fs.String("version", "1.0.0", "app package version (semver)")
	website := fs.String("website-url", "", "https URL of the bot's home page (default: public_url from the config)")
	pos, err := parseArgs(fs, args, "manifest", manifestUsage, stdout)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, "manifest", "", manifestUsage); err != nil {
		return err
	}
	o := manifest.Options{AppID: *appID, Version: *ver, WebsiteURL: *website}
	if *cfgPath != "" {
		c, _, err := loadConfig(*cfgPath, getenv)
		if err != nil {
			return err
		}
		if o.AppID == "" {
			o.AppID = c.Bot.AppID
		}
		if o.WebsiteURL == "" {
			o.WebsiteURL = c.PublicURL
		}
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	if err := manifest.Build(f, o); err != nil {
		f.Close()
		os.Remove(*out)
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: upload it in Teams (Apps → Manage your apps → Upload an app)\n", *out)
	return nil
}
