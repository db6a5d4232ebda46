package logging

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
)

// DuplicateKeys returns the keys that appear more than once in one JSON
// object line, at any depth (a key repeated inside one object only).
func duplicateKeys(t *testing.T, line []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	var dups []string
	var walk func() error
	walk = func() error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				k := kt.(string)
				if seen[k] {
					dups = append(dups, k)
				}
				seen[k] = true
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case json.Delim('['):
			for dec.More() {
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
		return nil
	}
	if err := walk(); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("not JSON: %s: %v", line, err)
	}
	return dups
}

func TestUniqueKeepsTheFirstValueOfAKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		log  func(l *slog.Logger)
		want map[string]any
	}{
		{"with then with", func(l *slog.Logger) { l.With("gate_id", "g_1").With("gate_id", "g_1", "verb", "approve").Info("m") },
			map[string]any{"gate_id": "g_1", "verb": "approve"}},
		{"with then record", func(l *slog.Logger) { l.With("gate_id", "g_1").Info("m", "gate_id", "g_2", "err", "x") },
			map[string]any{"gate_id": "g_1", "err": "x"}},
		{"twice in a record", func(l *slog.Logger) { l.Info("m", "a", 1, "a", 2) }, map[string]any{"a": float64(1)}},
		{"twice in one With", func(l *slog.Logger) { l.With("a", 1, "a", 2).Info("m") }, map[string]any{"a": float64(1)}},
		{"reserved keys", func(l *slog.Logger) { l.Info("m", "msg", "spoof", "level", "x") }, map[string]any{}},
		{"groups are separate", func(l *slog.Logger) { l.With("id", 1).WithGroup("g").With("id", 2).Info("m", "id", 3) },
			map[string]any{"id": float64(1), "g": map[string]any{"id": float64(2)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			l, err := New(&buf, FormatJSON, slog.LevelDebug)
			if err != nil {
				t.Fatal(err)
			}
			tt.log(l)
			line := bytes.TrimSpace(buf.Bytes())
			if d := duplicateKeys(t, line); len(d) > 0 {
				t.Errorf("keys %v repeated: %s", d, line)
			}
			var got map[string]any
			if err := json.Unmarshal(line, &got); err != nil {
				t.Fatal(err)
			}
			if got["msg"] != "m" || got["level"] != "INFO" {
				t.Errorf("msg/level overwritten: %s", line)
			}
			for _, k := range []string{"time", "level", "msg"} {
				delete(got, k)
			}
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(tt.want)
			if string(gotJSON) != string(wantJSON) {
				t.Errorf("attrs = %s, want %s", gotJSON, wantJSON)
			}
		})
	}
}

func TestNewFormats(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l, err := New(&buf, FormatText, slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	l.Debug("hidden")
	l.With("k", "v").Info("shown", "k", "again")
	sc := bufio.NewScanner(&buf)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "msg=shown k=v") || strings.Contains(lines[0], "again") {
		t.Errorf("text output = %q", lines)
	}
	if _, err := New(&buf, "xml", slog.LevelInfo); err == nil {
		t.Error("unknown format accepted")
	}
	h := Unique(slog.NewJSONHandler(io.Discard, nil))
	if Unique(h) != h {
		t.Error("Unique wrapped twice")
	}
}
