// Package logging builds gatebot's slog loggers: JSON lines in production,
// text for a person at a terminal, and every key at most once per line.
//
// slog's With adds attributes without looking at what is already there, so
// a request logger that carries gate_id, handed to a helper that adds
// gate_id again, writes {"gate_id":"g_1",…,"gate_id":"g_1"}: invalid for
// strict JSON readers and ambiguous for log queries. Unique keeps the
// first value of each key instead.
//
// It imports nothing but the standard library.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
)

// Formats New accepts.
const (
	FormatJSON = "json"
	FormatText = "text"
)

// New returns a logger writing format (FormatJSON or FormatText) lines at
// level and above to w, each key at most once per line.
func New(w io.Writer, format string, level slog.Leveler) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch format {
	case FormatJSON:
		h = slog.NewJSONHandler(w, opts)
	case FormatText:
		h = slog.NewTextHandler(w, opts)
	default:
		return nil, fmt.Errorf("logging: format %q is not %s or %s", format, FormatJSON, FormatText)
	}
	return slog.New(Unique(h)), nil
}

// reserved are the keys the built-in handlers write themselves.
var reserved = []string{slog.TimeKey, slog.LevelKey, slog.MessageKey, slog.SourceKey}

// Unique wraps h so that a key already on the logger (from With) or
// earlier in the same record is not written again: the first value wins.
// Keys are tracked per group, as the JSON handler nests them. Wrapping a
// handler Unique already wraps returns it unchanged.
func Unique(h slog.Handler) slog.Handler {
	if u, ok := h.(*unique); ok {
		return u
	}
	keys := make(map[string]struct{}, len(reserved))
	for _, k := range reserved {
		keys[k] = struct{}{}
	}
	return &unique{next: h, keys: keys}
}

type unique struct {
	next slog.Handler
	// keys are those written in the current group: by the handler itself
	// (top level only) and by WithAttrs. Never modified once shared.
	keys map[string]struct{}
}

func (u *unique) Enabled(ctx context.Context, l slog.Level) bool { return u.next.Enabled(ctx, l) }

func (u *unique) WithAttrs(as []slog.Attr) slog.Handler {
	keys := make(map[string]struct{}, len(u.keys)+len(as))
	for k := range u.keys {
		keys[k] = struct{}{}
	}
	kept := as[:0:0]
	for _, a := range as {
		if a.Key == "" && a.Value.Kind() != slog.KindGroup {
			continue
		}
		if _, dup := keys[a.Key]; dup && a.Key != "" {
			continue
		}
		keys[a.Key] = struct{}{}
		kept = append(kept, a)
	}
	return &unique{next: u.next.WithAttrs(kept), keys: keys}
}

func (u *unique) WithGroup(name string) slog.Handler {
	if name == "" {
		return u
	}
	return &unique{next: u.next.WithGroup(name), keys: map[string]struct{}{}}
}

func (u *unique) Handle(ctx context.Context, r slog.Record) error {
	dup := false
	seen := map[string]struct{}{}
	r.Attrs(func(a slog.Attr) bool {
		_, onLogger := u.keys[a.Key]
		_, earlier := seen[a.Key]
		if a.Key != "" && (onLogger || earlier) {
			dup = true
			return false
		}
		seen[a.Key] = struct{}{}
		return true
	})
	if !dup {
		return u.next.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	clear(seen)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != "" {
			if _, onLogger := u.keys[a.Key]; onLogger {
				return true
			}
			if _, earlier := seen[a.Key]; earlier {
				return true
			}
			seen[a.Key] = struct{}{}
		}
		out.AddAttrs(a)
		return true
	})
	return u.next.Handle(ctx, out)
}
