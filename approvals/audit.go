package approvals

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// AuditEntry is one line of the audit log: a gate opened, a vote, or a
// state change. At is the Redis server's time of the entry (its stream id),
// one clock for all replicas.
type AuditEntry struct {
	ID       string    `json:"id"`
	At       time.Time `json:"at"`
	GateID   string    `json:"gate"`
	Pipeline string    `json:"pipeline"`
	Event    string    `json:"event"` // opened, approve, reject, or the state entered
	// Actor is gatebot's own identity for who acted: a UPN, a Teams user,
	// or an API token as api:<name>#<id>. Never a caller-supplied name.
	Actor   string `json:"actor,omitempty"`
	ActorID string `json:"actor_id,omitempty"` // aad:<object id> or channel user id
	// ActorName is the display name the action came with, when it differs
	// from Actor (for an API gate, the free-text requester the caller gave).
	ActorName string         `json:"actor_name,omitempty"`
	Where     string         `json:"where,omitempty"` // conversation or origin
	From      string         `json:"from,omitempty"`
	To        string         `json:"to,omitempty"`
	Reason    string         `json:"reason,omitempty"`
	Inputs    map[string]any `json:"inputs,omitempty"`
}

// Audit stream field names, short because the stream holds many entries.
// The actor id is stored as afActAAD (the bare object id, read back as
// aad:<id>) or afActID (a channel user id, or any id entries of layouts
// before 3 stored, aad: included). An "opened" entry leaves out its to
// state, always pending. In layout 2 (see compat.go) entries are written
// the way layout 2 did, ai with aad: and t always.
const (
	afGate   = "g"
	afPipe   = "p"
	afEvent  = "e"
	afActor  = "a"
	afActID  = "ai"
	afActAAD = "o"
	afName   = "n"
	afWhere  = "w"
	afFrom   = "f"
	afTo     = "t"
	afReason = "r"
	afInputs = "i"
)

// audit queues an XADD of one entry on p, trimming the stream.
func (s *Store) audit(ctx context.Context, p redis.Pipeliner, g *Gate, n auditNote) {
	vals := []string{afGate, g.ID, afPipe, g.Pipeline, afEvent, n.event}
	if n.actor != nil {
		actor, id := auditActor(*n.actor)
		if aad, ok := strings.CutPrefix(id, "aad:"); ok && !s.isLegacy() {
			vals = append(vals, afActor, actor, afActAAD, aad)
		} else {
			vals = append(vals, afActor, actor, afActID, id)
		}
		if name := n.actor.Name; name != "" && name != actor {
			vals = append(vals, afName, name)
		}
	}
	if n.where != "" {
		vals = append(vals, afWhere, n.where)
	}
	if n.from != "" {
		vals = append(vals, afFrom, string(n.from))
	}
	if n.to != "" && (n.event != "opened" || n.to != StatePending || s.isLegacy()) {
		vals = append(vals, afTo, string(n.to))
	}
	if n.reason != "" {
		vals = append(vals, afReason, n.reason)
	}
	if len(g.Inputs) > 0 {
		if b, err := json.Marshal(g.Inputs); err == nil {
			vals = append(vals, afInputs, string(b))
		}
	}
	p.XAdd(ctx, &redis.XAddArgs{Stream: s.auditKey(), MaxLen: s.opts.AuditMaxLen, Approx: true, Values: vals})
	if s.opts.AuditMaxAge > 0 {
		min := s.opts.Now().Add(-s.opts.AuditMaxAge).UnixMilli()
		p.XTrimMinIDApprox(ctx, s.auditKey(), strconv.FormatInt(min, 10), 0)
	}
}

// auditActor is the identity an audit entry names: the UPN when gatebot
// knows it, an API token's own id, or else the channel's display name and
// user id. A caller-supplied display name never becomes the actor.
func auditActor(p Person) (actor, id string) {
	id = p.ID
	if p.AADObjectID != "" {
		id = "aad:" + p.AADObjectID
	}
	switch {
	case p.UPN != "":
		actor = p.UPN
	case strings.HasPrefix(p.ID, "api:"):
		actor = p.ID
	default:
		actor = p.Display()
	}
	return actor, id
}

// AuditQuery filters the audit log. Zero fields do not filter. User
// matches the actor's UPN or name, or the actor id (aad:<id>, the bare
// object id, or the channel user id), case-insensitively. Limit keeps the
// most recent matching entries (default 1000).
type AuditQuery struct {
	Pipeline, User string
	Since, Until   time.Time
	Limit          int
}

// auditPage is how many stream entries one XREVRANGE reads.
const auditPage = 500

// Audit returns matching entries oldest first. It walks the audit stream
// backwards from Until by stream id (a millisecond timestamp), so the cost
// is proportional to the entries in the time range.
func (s *Store) Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	end := "+"
	if !q.Until.IsZero() {
		end = strconv.FormatInt(q.Until.UnixMilli(), 10)
	}
	start := "-"
	if !q.Since.IsZero() {
		start = strconv.FormatInt(q.Since.UnixMilli(), 10)
	}
	var out []AuditEntry
	for len(out) < limit {
		msgs, err := s.rdb.XRevRangeN(ctx, s.auditKey(), end, start, auditPage).Result()
		if err != nil {
			return nil, unavailable("read audit", err)
		}
		for _, m := range msgs {
			e := auditEntry(m)
			if q.Pipeline != "" && e.Pipeline != q.Pipeline {
				continue
			}
			if q.User != "" && !userMatches(e, q.User) {
				continue
			}
			out = append(out, e)
			if len(out) == limit {
				break
			}
		}
		if len(msgs) < auditPage {
			break
		}
		end = "(" + msgs[len(msgs)-1].ID
	}
	slices.Reverse(out)
	return out, nil
}

func userMatches(e AuditEntry, u string) bool {
	return strings.EqualFold(e.Actor, u) || strings.EqualFold(e.ActorID, u) ||
		strings.EqualFold(strings.TrimPrefix(e.ActorID, "aad:"), u)
}

func auditEntry(m redis.XMessage) AuditEntry {
	str := func(k string) string {
		v, _ := m.Values[k].(string)
		return v
	}
	e := AuditEntry{
		ID: m.ID, GateID: str(afGate), Pipeline: str(afPipe), Event: str(afEvent),
		Actor: str(afActor), ActorID: str(afActID), ActorName: str(afName), Where: str(afWhere),
		From: str(afFrom), To: str(afTo), Reason: str(afReason),
	}
	if aad := str(afActAAD); aad != "" {
		e.ActorID = "aad:" + aad
	}
	if e.Event == "opened" && e.To == "" {
		e.To = string(StatePending)
	}
	msPart, _, _ := strings.Cut(m.ID, "-")
	e.At, _ = parseMs(msPart)
	if in := str(afInputs); in != "" {
		_ = json.Unmarshal([]byte(in), &e.Inputs)
	}
	return e
}

// FormatAudit writes entries as aligned text lines, or as JSON lines when
// jsonLines is set (one AuditEntry object per line). Every free-text field
// is escaped and stripped of bidirectional-formatting characters, so an
// entry is always one line that reads as it is stored.
func FormatAudit(w io.Writer, entries []AuditEntry, jsonLines bool) error {
	if jsonLines {
		enc := json.NewEncoder(w)
		for i := range entries {
			e := cleanEntry(entries[i])
			if err := enc.Encode(&e); err != nil {
				return fmt.Errorf("write audit: %w", err)
			}
		}
		return nil
	}
	for _, e := range entries {
		var b strings.Builder
		fmt.Fprintf(&b, "%s  %-22s  %-16s  %-14s", e.At.UTC().Format(time.RFC3339), auditText(e.GateID),
			auditText(e.Pipeline), auditText(e.Event))
		if e.Actor != "" || e.ActorID != "" {
			fmt.Fprintf(&b, "  by %s", auditText(firstNonEmpty(e.Actor, e.ActorID)))
			if e.ActorID != "" && e.ActorID != e.Actor {
				fmt.Fprintf(&b, " (%s)", auditText(e.ActorID))
			}
		}
		if e.ActorName != "" {
			fmt.Fprintf(&b, "  as %s", strconv.Quote(stripBidi(e.ActorName)))
		}
		if e.From != "" || e.To != "" {
			fmt.Fprintf(&b, "  %s->%s", auditText(e.From), auditText(e.To))
		}
		if e.Where != "" {
			fmt.Fprintf(&b, "  in %s", auditText(e.Where))
		}
		if e.Reason != "" {
			fmt.Fprintf(&b, "  reason=%s", strconv.Quote(stripBidi(e.Reason)))
		}
		if len(e.Inputs) > 0 {
			for _, k := range slices.Sorted(maps.Keys(e.Inputs)) {
				fmt.Fprintf(&b, "  %s=%s", auditText(k), auditText(fmt.Sprint(e.Inputs[k])))
			}
		}
		b.WriteByte('\n')
		if _, err := io.WriteString(w, b.String()); err != nil {
			return fmt.Errorf("write audit: %w", err)
		}
	}
	return nil
}

// auditText prints an identifier-like value bare and anything else (spaces,
// quotes, control characters, non-printing runes) quoted and escaped.
func auditText(s string) string {
	s = stripBidi(s)
	for _, r := range s {
		if r <= ' ' || r == '"' || r == '\\' || r == '=' || !strconv.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// stripBidi removes bidirectional-formatting characters, which reorder
// how the rest of a line is displayed.
func stripBidi(s string) string {
	if !strings.ContainsFunc(s, IsBidiControl) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if IsBidiControl(r) {
			return -1
		}
		return r
	}, s)
}

// cleanEntry strips bidirectional-formatting characters from every text
// field of e; JSON escapes control characters itself.
func cleanEntry(e AuditEntry) AuditEntry {
	for _, f := range []*string{&e.GateID, &e.Pipeline, &e.Event, &e.Actor, &e.ActorID, &e.ActorName, &e.Where,
		&e.From, &e.To, &e.Reason} {
		*f = stripBidi(*f)
	}
	if len(e.Inputs) > 0 {
		in := make(map[string]any, len(e.Inputs))
		for k, v := range e.Inputs {
			if sv, ok := v.(string); ok {
				v = stripBidi(sv)
			}
			in[stripBidi(k)] = v
		}
		e.Inputs = in
	}
	return e
}

// firstNonEmpty returns a, or b when a is empty.
func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
