package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/pipelines"
)

// `gatebot gates …`: the operator's view of approval gates, read from and
// written to the same Redis store the bot uses.

const (
	gatesUsage = `usage:
  gatebot gates list   [--config FILE] [--state S] [--pipeline P] [--limit N] [--json]
  gatebot gates show   [--config FILE] [--json] ID
  gatebot gates cancel [--config FILE] --reason TEXT ID
  gatebot gates migrate [--config FILE]

Operate on approval gates in the Redis named by the config's redis.url.
gatebot gates COMMAND --help explains one.`
	gatesListUsage = `usage: gatebot gates list [--config FILE] [--state S] [--pipeline P] [--limit N] [--json]

List gates, newest first. --state is one of: ` + stateNames + `.`
	gatesShowUsage = `usage: gatebot gates show [--config FILE] [--json] ID

Print one gate's full record: inputs, policy, votes, run and history fields.`
	gatesCancelUsage = `usage: gatebot gates cancel [--config FILE] --reason TEXT ID

Cancel a gate that has not started a run (pending, approved or trigger_failed).
The audit log records it as cancelled by cli:<your user name>.`
	stateNames = "pending, approved, triggering, running, succeeded, failed, rejected, expired, cancelled, trigger_failed"
)

var errGatesNoRedis = errors.New("gates commands need redis.url: the embedded dev store lives only inside a running gatebot")

// gatesCmd runs `gatebot gates list|show|cancel|migrate`.
func gatesCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	return dispatch("gates", args, []subcommand{
		{name: "list", aliases: []string{"ls"}, run: func(a []string) error { return gatesList(ctx, a, getenv, stdout) }},
		{name: "show", run: func(a []string) error { return gatesShow(ctx, a, getenv, stdout) }},
		{name: "cancel", run: func(a []string) error { return gatesCancel(ctx, a, getenv, stdout) }},
		{name: "migrate", run: func(a []string) error { return gatesMigrate(ctx, a, getenv, stdout) }},
	}, gatesUsage, stdout)
}

// openGates connects to the configured store.
func openGates(cfgPath string, getenv func(string) string) (*approvals.Store, func(), error) {
	c, _, err := loadConfig(cfgPath, getenv)
	if err != nil {
		return nil, nil, err
	}
	if c.Redis.URL == "" {
		return nil, nil, errGatesNoRedis
	}
	rdb, closeRedis, err := openRedis(c.Redis, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, err
	}
	store, err := approvals.NewStore(rdb, approvals.Options{Prefix: c.Redis.Prefix})
	if err != nil {
		closeRedis()
		return nil, nil, err
	}
	return store, closeRedis, nil
}

func gatesList(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlags("gates list")
	cfgPath := fs.String("config", getenv("GATEBOT_CONFIG"), "config file")
	state := fs.String("state", "", "only gates in this state ("+stateNames+")")
	pipeline := fs.String("pipeline", "", "only gates of this pipeline")
	limit := fs.Int("limit", 100, "at most this many gates")
	jsonOut := fs.Bool("json", false, "JSON lines (one gate record a line) instead of a table")
	pos, err := parseArgs(fs, args, "gates list", gatesListUsage, stdout)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, "gates list", "", gatesListUsage); err != nil {
		return err
	}
	if *state != "" && !knownState(approvals.State(*state)) {
		return usageError(fmt.Sprintf("gates list --state: %q is not a state (one of %s)", *state, stateNames))
	}
	if *limit < 1 {
		return usageError(fmt.Sprintf("gates list --limit: %d is not a positive number", *limit))
	}
	store, closeRedis, err := openGates(*cfgPath, getenv)
	if err != nil {
		return err
	}
	defer closeRedis()
	var gates []*approvals.Gate
	q := approvals.ListQuery{Pipeline: *pipeline, State: approvals.State(*state)}
	for len(gates) < *limit {
		q.Limit = min(*limit-len(gates), 500)
		page, next, err := store.List(ctx, q)
		if err != nil {
			return fmt.Errorf("list gates: %w", err)
		}
		gates = append(gates, page...)
		if next == "" {
			break
		}
		q.Cursor = next
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		for _, g := range gates {
			if err := enc.Encode(newGateView(g)); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPIPELINE\tSTATE\tAPPROVALS\tREQUESTER\tORIGIN\tCREATED\tUPDATED")
	for _, g := range gates {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\t%s\n", g.ID, g.Pipeline, g.State, len(g.Approvals()), g.Policy.Required,
			personText(g.Requester), orDash(g.Origin), stamp(g.CreatedAt), stamp(g.UpdatedAt))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(gates) == 0 {
		fmt.Fprintln(stdout, "(no gates match)")
	}
	return nil
}

func knownState(s approvals.State) bool {
	return slices.Contains(strings.Split(stateNames, ", "), string(s))
}

func gatesShow(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlags("gates show")
	cfgPath := fs.String("config", getenv("GATEBOT_CONFIG"), "config file")
	jsonOut := fs.Bool("json", false, "the record as JSON")
	pos, err := parseArgs(fs, args, "gates show", gatesShowUsage, stdout)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, "gates show", "the gate ID", gatesShowUsage); err != nil {
		return err
	}
	store, closeRedis, err := openGates(*cfgPath, getenv)
	if err != nil {
		return err
	}
	defer closeRedis()
	g, err := store.Get(ctx, pos[0])
	if err != nil {
		return gateError(pos[0], err)
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(newGateView(g))
	}
	return writeGate(stdout, g)
}

func gateError(id string, err error) error {
	if errors.Is(err, approvals.ErrNotFound) {
		return fmt.Errorf("no gate %s (ended gates are kept for approvals.retention, 30 days by default)", id)
	}
	return fmt.Errorf("read gate %s: %w", id, err)
}

func gatesCancel(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlags("gates cancel")
	cfgPath := fs.String("config", getenv("GATEBOT_CONFIG"), "config file")
	reason := fs.String("reason", "", "why, for the audit log and the gate's record (required)")
	pos, err := parseArgs(fs, args, "gates cancel", gatesCancelUsage, stdout)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, "gates cancel", "the gate ID", gatesCancelUsage); err != nil {
		return err
	}
	if strings.TrimSpace(*reason) == "" {
		return usageError("gates cancel: --reason is required\n" + gatesCancelUsage)
	}
	store, closeRedis, err := openGates(*cfgPath, getenv)
	if err != nil {
		return err
	}
	defer closeRedis()
	id := pos[0]
	g, err := store.Get(ctx, id)
	if err != nil {
		return gateError(id, err)
	}
	switch {
	case g.State == approvals.StateRunning:
		// The store would mark it cancelled while the provider run goes
		// on untracked: the run has to be cancelled at its provider.
		return fmt.Errorf("gate %s is running at the provider: cancel the run from its card in Teams (or at the provider) so gatebot follows it to the end", id)
	case g.State.Final():
		return fmt.Errorf("gate %s has already ended (%s)", id, g.State)
	}
	actor := "cli:" + whoami(getenv)
	ng, err := store.Cancel(ctx, id, approvals.Person{ID: actor, Name: actor}, strings.TrimSpace(*reason))
	var te *approvals.TransitionError
	switch {
	case errors.As(err, &te):
		return fmt.Errorf("gate %s can no longer be cancelled: it is %s now", id, te.From)
	case err != nil:
		return fmt.Errorf("cancel gate %s: %w", id, err)
	}
	fmt.Fprintf(stdout, "Cancelled gate %s (%s, was %s) as %s; the audit log records the reason.\n", ng.ID, ng.Pipeline, g.State, actor)
	return nil
}

// gateView is a gate as the CLI prints it in JSON: readable field names
// (the stored record's are short), and no conversation reference, which is
// the channel's business and not an operator's.
type gateView struct {
	ID        string            `json:"id"`
	Pipeline  string            `json:"pipeline"`
	State     approvals.State   `json:"state"`
	Inputs    map[string]any    `json:"inputs,omitempty"`
	Message   string            `json:"message,omitempty"`
	Requester approvals.Person  `json:"requester"`
	Origin    string            `json:"origin,omitempty"`
	Policy    policyView        `json:"policy"`
	Votes     []voteView        `json:"votes,omitempty"`
	Created   time.Time         `json:"created"`
	Deadline  time.Time         `json:"deadline,omitzero"`
	Updated   time.Time         `json:"updated"`
	DecidedBy *approvals.Person `json:"decided_by,omitempty"`
	Reason    string            `json:"reason,omitempty"`
	Run       *pipelines.Run    `json:"run,omitempty"`
	Error     string            `json:"error,omitempty"`
	Attempts  int               `json:"attempts,omitempty"`
	Callback  string            `json:"callback_url,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Version   int64             `json:"version"`
}

type policyView struct {
	Required          int      `json:"required"`
	Approvers         []string `json:"approvers,omitempty"`
	AllowSelfApproval bool     `json:"allow_self_approval"`
	Timeout           string   `json:"timeout"`
}

type voteView struct {
	By      approvals.Person `json:"by"`
	Approve bool             `json:"approve"`
	Reason  string           `json:"reason,omitempty"`
	At      time.Time        `json:"at"`
}

func newGateView(g *approvals.Gate) gateView {
	v := gateView{ID: g.ID, Pipeline: g.Pipeline, State: g.State, Inputs: g.Inputs, Message: g.Message, Requester: g.Requester,
		Origin: g.Origin, Created: g.CreatedAt, Deadline: g.Deadline, Updated: g.UpdatedAt, DecidedBy: g.DecidedBy, Reason: g.Reason,
		Run: g.Run, Error: g.Error, Attempts: g.Attempts, Callback: redactURL(g.CallbackURL), Labels: g.Labels, Version: g.Version,
		Policy: policyView{Required: g.Policy.Required, Approvers: g.Policy.Approvers, AllowSelfApproval: g.Policy.AllowSelfApproval, Timeout: g.Policy.Timeout.String()}}
	for _, vo := range g.Votes {
		v.Votes = append(v.Votes, voteView{By: vo.By, Approve: vo.Approve, Reason: vo.Reason, At: vo.At})
	}
	return v
}

// redactURL keeps a callback URL's scheme, host and path: a caller may have
// put a credential in its query or user info.
func redactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return "[unparsable URL]"
	}
	out := u.Scheme + "://" + u.Host + u.Path
	if u.RawQuery != "" {
		out += "?[redacted]"
	}
	return out
}

// writeGate prints a gate's full record for people.
func writeGate(w io.Writer, g *approvals.Gate) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s:\t%s\n", k, fmt.Sprintf(format, args...)) }
	line("Gate", "%s", g.ID)
	line("Pipeline", "%s", g.Pipeline)
	line("State", "%s", g.State)
	line("Requested by", "%s", personText(g.Requester))
	line("Origin", "%s", orDash(g.Origin))
	for _, k := range slices.Sorted(maps.Keys(g.Inputs)) {
		line("Input "+k, "%v", g.Inputs[k])
	}
	if g.Message != "" {
		line("Message", "%s", g.Message)
	}
	approvers := "anyone in the conversation"
	if len(g.Policy.Approvers) > 0 {
		approvers = strings.Join(g.Policy.Approvers, ", ")
	}
	line("Policy", "%d approval(s) from %s; self-approval %s; timeout %s", g.Policy.Required, approvers,
		map[bool]string{true: "allowed", false: "not allowed"}[g.Policy.AllowSelfApproval], g.Policy.Timeout)
	line("Created", "%s", stamp(g.CreatedAt))
	if !g.Deadline.IsZero() {
		line("Deadline", "%s", stamp(g.Deadline))
	}
	line("Updated", "%s (version %d)", stamp(g.UpdatedAt), g.Version)
	for i, v := range g.Votes {
		verb := "approved"
		if !v.Approve {
			verb = "rejected"
		}
		text := fmt.Sprintf("%s %s at %s", personText(v.By), verb, stamp(v.At))
		if v.Reason != "" {
			text += fmt.Sprintf(" (%q)", v.Reason)
		}
		line(fmt.Sprintf("Vote %d", i+1), "%s", text)
	}
	if g.DecidedBy != nil {
		line("Decided by", "%s", personText(*g.DecidedBy))
	}
	if g.Reason != "" {
		line("Reason", "%s", g.Reason)
	}
	if r := g.Run; r != nil {
		line("Run", "%s %s %s", orDash(r.ID), orDash(string(r.Status)), r.URL)
		if r.Detail != "" {
			line("Run detail", "%s", r.Detail)
		}
	}
	if g.Error != "" {
		line("Last error", "%s (attempt %d)", g.Error, g.Attempts)
	}
	if g.CallbackURL != "" {
		line("Callback", "%s", redactURL(g.CallbackURL))
	}
	for _, k := range slices.Sorted(maps.Keys(g.Labels)) {
		line("Label "+k, "%s", g.Labels[k])
	}
	return tw.Flush()
}

// personText names a person with the identifiers an operator can search
// the audit log for.
func personText(p approvals.Person) string {
	name := p.Display()
	var ids []string
	for _, id := range []string{p.UPN, prefixed("aad:", p.AADObjectID), p.ID} {
		if id != "" && id != name && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if name == "" {
		return "-"
	}
	if len(ids) == 0 {
		return name
	}
	return name + " (" + strings.Join(ids, ", ") + ")"
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}
