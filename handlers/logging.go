package handlers

import (
	"context"
	"log/slog"
	"slices"
	"sync"
)

// lazyAttrs is a slog.Handler that keeps the attributes given to WithAttrs
// and hands them to the wrapped handler only when a record is actually
// written. Request-scoped loggers carry a request id and activity fields on
// every turn, but at the usual warn level almost no turn logs anything:
// slog's JSON and text handlers format those attributes eagerly in
// WithAttrs, which was per-turn work for nothing.
type lazyAttrs struct {
	base  slog.Handler
	attrs []slog.Attr

	once     sync.Once
	resolved slog.Handler
}

// lazyLogger returns l with WithAttrs deferred until a record is handled.
func lazyLogger(l *slog.Logger) *slog.Logger {
	return slog.New(&lazyAttrs{base: l.Handler()})
}

func (h *lazyAttrs) handler() slog.Handler {
	h.once.Do(func() {
		h.resolved = h.base
		if len(h.attrs) > 0 {
			h.resolved = h.base.WithAttrs(h.attrs)
		}
	})
	return h.resolved
}

// Enabled asks the wrapped handler: attributes never change the level.
func (h *lazyAttrs) Enabled(ctx context.Context, level slog.Level) bool {
	return h.base.Enabled(ctx, level)
}

// Handle writes r with the deferred attributes.
func (h *lazyAttrs) Handle(ctx context.Context, r slog.Record) error {
	return h.handler().Handle(ctx, r)
}

// WithAttrs adds attributes without formatting them.
func (h *lazyAttrs) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	return &lazyAttrs{base: h.base, attrs: append(slices.Clip(h.attrs), attrs...)}
}

// WithGroup resolves the attributes so far: they belong outside the group.
func (h *lazyAttrs) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &lazyAttrs{base: h.handler().WithGroup(name)}
}
