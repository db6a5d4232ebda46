package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/gatebot/gatebot/callbacks"
	"github.com/gatebot/gatebot/standardwebhooks"
	"io"
	"log/slog"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatebot/gatebot/apitoken"
	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/handlers"
)

// The external API's personal access tokens (`gatebot token …`) and the
// wiring of the api: config section.

const (
	tokenUsage = `usage:
  gatebot token create [--config FILE] --name NAME --pipelines P1,P2|* [--scopes gates:read,gates:write] [--expires 90d|never] [--creator WHO] [--owner UPN|aad:OBJECT_ID]
  gatebot token list   [--config FILE] [--json]
  gatebot token revoke [--config FILE] [--by WHO] NAME|ID

Personal access tokens for gatebot's HTTP API. gatebot token COMMAND --help explains one.`
	tokenCreateUsage = `usage: gatebot token create [--config FILE] --name NAME --pipelines P1,P2|* [--scopes gates:read,gates:write] [--expires 90d|never] [--creator WHO] [--owner UPN|aad:OBJECT_ID]

Create an API token and print it once on stdout (what it grants goes to stderr).`
	tokenListUsage = `usage: gatebot token list [--config FILE] [--json]

List API tokens (never their secrets) with their status and last use.`
	tokenRevokeUsage = `usage: gatebot token revoke [--config FILE] [--by WHO] NAME|ID

Revoke a token by name or tok_… id; every replica refuses it from its next request.`
)

var errTokenNoRedis = errors.New("token commands need redis.url: the embedded dev store lives only inside a running gatebot")

// tokenCmd runs `gatebot token create|list|revoke`.
func tokenCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return dispatch("token", args, []subcommand{
		{name: "create", run: func(a []string) error { return tokenCreate(ctx, a, getenv, stdout, stderr) }},
		{name: "list", aliases: []string{"ls"}, run: func(a []string) error { return tokenList(ctx, a, getenv, stdout) }},
		{name: "revoke", run: func(a []string) error { return tokenRevoke(ctx, a, getenv, stdout) }},
	}, tokenUsage, stdout)
}

func openTokens(cfgPath string, getenv func(string) string) (*Config, *apitoken.Store, func(), error) {
	c, _, err := loadConfig(cfgPath, getenv)
	if err != nil {
		return nil, nil, nil, err
	}
	if c.Redis.URL == "" {
		return nil, nil, nil, errTokenNoRedis
	}
	rdb, closeRedis, err := openRedis(c.Redis, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, nil, err
	}
	tokens, err := apitoken.NewStore(rdb, apitoken.Options{Prefix: c.Redis.Prefix})
	if err != nil {
		closeRedis()
		return nil, nil, nil, err
	}
	return c, tokens, closeRedis, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func whoami(getenv func(string) string) string {
	for _, k := range []string{"GATEBOT_USER", "USER", "USERNAME", "LOGNAME"} {
		if v := getenv(k); v != "" {
			return v
		}
	}
	return "unknown"
}

// tokenCreate prints the new token once, alone on stdout so that scripts
// can capture it; what it grants goes to stderr.
func tokenCreate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("token create")
	cfgPath := fs.String("config", getenv("GATEBOT_CONFIG"), "config file")
	name := fs.String("name", "", "token name, e.g. ci-prod")
	scopes := fs.String("scopes", string(apitoken.ScopeRead), "comma-separated: gates:read, gates:write")
	pls := fs.String("pipelines", "", `comma-separated pipeline names or ids, or "*" for all`)
	expires := fs.String("expires", "90d", `lifetime (e.g. 30d, 12h) or "never"`)
	creator := fs.String("creator", whoami(getenv), "who creates it, for the record")
	owner := fs.String("owner", "", "the person gates opened with it are requested by (UPN or aad:<object id>), so they cannot approve them when self-approval is off")
	pos, err := parseArgs(fs, args, "token create", tokenCreateUsage, stdout)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, "token create", "", tokenCreateUsage); err != nil {
		return err
	}
	if *name == "" || *pls == "" {
		return usageError("token create: --name and --pipelines are required\n" + tokenCreateUsage)
	}
	var ttl time.Duration
	if *expires != "never" {
		ttl, err = parseDuration(*expires)
		if err != nil || ttl <= 0 {
			return usageError(fmt.Sprintf("token create --expires: %q is not a lifetime such as 90d or 12h, or never", *expires))
		}
	}
	c, tokens, closeRedis, err := openTokens(*cfgPath, getenv)
	if err != nil {
		return err
	}
	defer closeRedis()
	pipelines, err := resolvePipelines(c, splitList(*pls))
	if err != nil {
		return err
	}
	var sc []apitoken.Scope
	for _, s := range splitList(*scopes) {
		sc = append(sc, apitoken.Scope(s))
	}
	secret, tok, err := tokens.Create(ctx, apitoken.CreateRequest{Name: *name, Scopes: sc, Pipelines: pipelines, Creator: *creator, Owner: *owner, TTL: ttl})
	if err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	fmt.Fprintln(stdout, secret.Reveal())
	exp := "never expires"
	if !tok.Expires.IsZero() {
		exp = "expires " + tok.Expires.UTC().Format("2006-01-02 15:04 MST")
	}
	own := "no owner"
	if tok.Owner != "" {
		own = "owner " + tok.Owner
	}
	fmt.Fprintf(stderr, "Created token %s (%s): scopes %s; pipelines %s; %s; %s.\nThis is the only time it is shown: store it in your secret manager now.\n",
		tok.Name, tok.ID, joinScopes(tok.Scopes), strings.Join(tok.Pipelines, ", "), own, exp)
	return nil
}

// resolvePipelines maps configured names and ids to names, refusing
// unknown ones so a typo does not create a useless token.
func resolvePipelines(c *Config, in []string) ([]string, error) {
	var out, unknown []string
	for _, p := range in {
		if p == apitoken.AllPipelines {
			out = append(out, p)
			continue
		}
		if _, ok := c.Pipelines[p]; ok {
			out = append(out, p)
			continue
		}
		found := false
		for name, pl := range c.Pipelines {
			if pl != nil && pl.ID != "" && pl.ID == p {
				out, found = append(out, name), true
				break
			}
		}
		if !found {
			unknown = append(unknown, p)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("token create --pipelines: %s not configured (known: %s)", strings.Join(unknown, ", "), strings.Join(sortedKeys(c.Pipelines), ", "))
	}
	return out, nil
}

func joinScopes(s []apitoken.Scope) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = string(v)
	}
	return strings.Join(parts, ",")
}

// tokenListEntry is one line of `token list --json`.
type tokenListEntry struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Status    string    `json:"status"`
	Scopes    []string  `json:"scopes"`
	Pipelines []string  `json:"pipelines"`
	Creator   string    `json:"creator,omitempty"`
	Owner     string    `json:"owner,omitempty"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires,omitzero"`
	LastUsed  time.Time `json:"last_used,omitzero"`
	Revoked   time.Time `json:"revoked,omitzero"`
	RevokedBy string    `json:"revoked_by,omitempty"`
}

func tokenList(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlags("token list")
	cfgPath := fs.String("config", getenv("GATEBOT_CONFIG"), "config file")
	jsonOut := fs.Bool("json", false, "JSON lines")
	pos, err := parseArgs(fs, args, "token list", tokenListUsage, stdout)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, "token list", "", tokenListUsage); err != nil {
		return err
	}
	_, tokens, closeRedis, err := openTokens(*cfgPath, getenv)
	if err != nil {
		return err
	}
	defer closeRedis()
	list, err := tokens.List(ctx)
	if err != nil {
		return fmt.Errorf("list tokens: %w", err)
	}
	now := time.Now()
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		for _, t := range list {
			e := tokenListEntry{ID: t.ID, Name: t.Name, Status: t.Status(now), Scopes: strings.Split(joinScopes(t.Scopes), ","),
				Pipelines: t.Pipelines, Creator: t.Creator, Owner: t.Owner, Created: t.Created, Expires: t.Expires, LastUsed: t.LastUsed,
				Revoked: t.Revoked, RevokedBy: t.RevokedBy}
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tSCOPES\tPIPELINES\tOWNER\tCREATOR\tCREATED\tEXPIRES\tLAST USED")
	when := func(t time.Time, zero string) string {
		if t.IsZero() {
			return zero
		}
		return t.UTC().Format("2006-01-02 15:04")
	}
	for _, t := range list {
		owner := t.Owner
		if owner == "" {
			owner = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Status(now), joinScopes(t.Scopes),
			strings.Join(t.Pipelines, ","), owner, t.Creator, when(t.Created, "-"), when(t.Expires, "never"), when(t.LastUsed, "never"))
	}
	return tw.Flush()
}

func tokenRevoke(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlags("token revoke")
	cfgPath := fs.String("config", getenv("GATEBOT_CONFIG"), "config file")
	by := fs.String("by", whoami(getenv), "who revokes it, for the record")
	pos, err := parseArgs(fs, args, "token revoke", tokenRevokeUsage, stdout)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, "token revoke", "the token (NAME or tok_… id)", tokenRevokeUsage); err != nil {
		return err
	}
	_, tokens, closeRedis, err := openTokens(*cfgPath, getenv)
	if err != nil {
		return err
	}
	defer closeRedis()
	t, err := tokens.Revoke(ctx, pos[0], *by)
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	fmt.Fprintf(stdout, "Revoked token %s (%s); every gatebot replica refuses it from its next request.\n", t.Name, t.ID)
	return nil
}

// check validates the api: section.
func (a *APIConfig) check(ps *problems) {
	if a.CallbackSecret != "" {
		if _, err := standardwebhooks.ParseSecret(a.CallbackSecret.Reveal()); err != nil {
			ps.add("api.callback_secret", "must be whsec_ followed by the base64 of 24 to 64 random bytes (e.g. whsec_$(openssl rand -base64 32))")
		}
	}
	if len(a.CallbackHosts) > 0 && a.CallbackSecret == "" {
		ps.add("api.callback_hosts", "callbacks also need api.callback_secret to sign them")
	}
	if err := callbacks.ValidateHosts(a.CallbackHosts); err != nil {
		for _, e := range strings.Split(err.Error(), "\n") {
			ps.add("api.callback_hosts", "%s", e)
		}
	}
}

// apiOptions builds the external API's options: tokens and their rate
// limit always, and the callback deliverer (also returned, to be run) when
// a secret is configured.
func apiOptions(c *Config, rdb redis.UniversalClient, store *approvals.Store, log *slog.Logger) (handlers.APIOptions, *callbacks.Deliverer, error) {
	tokens, err := apitoken.NewStore(rdb, apitoken.Options{Prefix: c.Redis.Prefix, Logger: log})
	if err != nil {
		return handlers.APIOptions{}, nil, err
	}
	limiter, err := apitoken.NewLimiter(rdb, apitoken.LimiterOptions{Prefix: c.Redis.Prefix, Rate: c.API.RateLimit, Burst: c.API.RateBurst})
	if err != nil {
		return handlers.APIOptions{}, nil, fmt.Errorf("api rate limit: %w", err)
	}
	o := handlers.APIOptions{Tokens: tokens, Limiter: limiter, BaseURL: strings.TrimRight(c.PublicURL, "/")}
	var cb *callbacks.Deliverer
	if c.API.CallbackSecret != "" {
		cb, err = callbacks.New(callbacks.Options{
			Outbox: store, Secret: c.API.CallbackSecret.Reveal(), Hosts: slices.Clone(c.API.CallbackHosts),
			Render: handlers.APIGateView(o.BaseURL), Logger: log,
		})
		if err != nil {
			return handlers.APIOptions{}, nil, fmt.Errorf("api callbacks: %w", err)
		}
		o.Callbacks = cb
	}
	return o, cb, nil
}
