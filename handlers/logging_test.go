package handlers

import (
	"bytes"
	"context"
	"log/slog"
	"regexp"
	"testing"
)

// TestLazyLoggerSameOutput: deferring WithAttrs must not change a single
// byte of what is logged, including attributes added before and after a
// group.
func TestLazyLoggerSameOutput(t *testing.T) {
	t.Parallel()
	steps := map[string]func(*slog.Logger) *slog.Logger{
		"attrs": func(l *slog.Logger) *slog.Logger {
			return l.With("request_id", "r_1").With("activity_type", "message", "n", 3)
		},
		"group": func(l *slog.Logger) *slog.Logger {
			return l.With("request_id", "r_1").WithGroup("turn").With("activity_id", "a<1>")
		},
		"none": func(l *slog.Logger) *slog.Logger { return l },
	}
	ts := regexp.MustCompile(`"time":"[^"]*",`)
	for name, step := range steps {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var eager, lazy bytes.Buffer
			opts := &slog.HandlerOptions{Level: slog.LevelInfo}
			step(slog.New(slog.NewJSONHandler(&eager, opts))).Warn("turn", "err", "boom")
			step(lazyLogger(slog.New(slog.NewJSONHandler(&lazy, opts)))).Warn("turn", "err", "boom")
			got, want := ts.ReplaceAllString(lazy.String(), ""), ts.ReplaceAllString(eager.String(), "")
			if got != want || got == "" {
				t.Errorf("lazy logger wrote\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// countingHandler counts WithAttrs calls that reach it.
type countingHandler struct {
	slog.Handler
	withAttrs *int
}

func (h countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	*h.withAttrs++
	return countingHandler{h.Handler.WithAttrs(as), h.withAttrs}
}

// TestLazyLoggerDefersFormatting: a request logger whose records are all
// below the level never formats its attributes; the first record written
// formats them once.
func TestLazyLoggerDefersFormatting(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	n := 0
	base := slog.New(countingHandler{slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}), &n})
	log := lazyLogger(base).With("request_id", "r_1").With("conversation_id", "19:x")
	log.Info("http request", "path", "/api/messages")
	log.Debug("ignoring activity")
	if n != 0 || buf.Len() != 0 {
		t.Fatalf("disabled records formatted attributes %d times, wrote %q", n, buf.String())
	}
	if !log.Enabled(context.Background(), slog.LevelWarn) || log.Enabled(context.Background(), slog.LevelInfo) {
		t.Fatal("Enabled must follow the wrapped handler's level")
	}
	log.Warn("inbound auth failed")
	log.Error("again")
	if n != 1 {
		t.Fatalf("WithAttrs reached the handler %d times, want once", n)
	}
	if !bytes.Contains(buf.Bytes(), []byte(`"msg":"inbound auth failed","request_id":"r_1","conversation_id":"19:x"}`)) {
		t.Fatalf("attributes missing from %s", buf.String())
	}
}
