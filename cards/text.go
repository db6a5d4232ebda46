package cards

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Ellipsis marks text that was cut to fit a card.
const Ellipsis = "…"

// Size budgets, in bytes of the JSON the text becomes (after markdown
// escaping and JSON's own escaping, as json.Marshal writes it). Budgets
// rather than rune counts make the worst case computable: a card built from
// the largest values of every field stays below maxCardBytes (tested).
const (
	budgetName    = 120  // people, pipelines, input names, run ids
	budgetValue   = 300  // one input value
	budgetInputs  = 6000 // all input facts of a gate together
	budgetMessage = 1500 // the requester's message
	budgetLine    = 600  // errors, reasons, details, notice lines
	budgetDesc    = 400  // pipeline descriptions
	maxNames      = 6    // people listed by name before "N more"
	maxLines      = 12   // message lines kept
)

// truncate cuts s to at most n runes, the last being an ellipsis.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimRightFunc(string(r[:n-1]), unicode.IsSpace) + Ellipsis
}

// inline turns untrusted text into one escaped line of at most budget JSON
// bytes: control characters and line breaks become spaces and runs of
// spaces collapse.
func inline(s string, budget int) string {
	return clip(escapeLine(strings.Join(strings.FieldsFunc(s, isSpaceOrControl), " ")), budget)
}

// block turns untrusted multi-line text into escaped markdown paragraphs,
// keeping at most maxLines lines and budget JSON bytes.
func block(s string, budget int) string {
	var lines []string
	for line := range strings.SplitSeq(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		line = strings.Join(strings.FieldsFunc(line, isSpaceOrControl), " ")
		if line == "" {
			continue
		}
		if len(lines) == maxLines {
			lines[maxLines-1] += " " + Ellipsis
			break
		}
		lines = append(lines, escapeLine(line))
	}
	// Adaptive Card markdown needs a blank line for a visible line break.
	return clip(strings.Join(lines, "\n\n"), budget)
}

// jsonLen is how many bytes json.Marshal writes for s, without quotes.
func jsonLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		n += jsonCost(r, size)
		i += size
	}
	return n
}

// jsonCost is how many bytes json.Marshal writes for r.
func jsonCost(r rune, size int) int {
	switch {
	case r == '"' || r == '\\' || r == '\n':
		return 2
	case r < 0x20, r == '<', r == '>', r == '&', r == '\u2028', r == '\u2029':
		return 6 // \u00XX; json.Marshal escapes HTML characters by default
	case r == utf8.RuneError && size == 1:
		return 6 // invalid UTF-8 becomes \ufffd
	}
	return size
}

// clip cuts already-escaped text so that its JSON encoding takes at most
// budget bytes, ending in an ellipsis when cut. It never splits a
// backslash escape, which would turn the ellipsis into an escaped character
// or leave markup live.
func clip(s string, budget int) string {
	if jsonLen(s) <= budget {
		return s
	}
	limit := budget - len(Ellipsis)
	cost, cut := 0, 0
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		c := jsonCost(r, n)
		if r == '\\' && i+1 < len(s) {
			// Keep a backslash with the character it escapes (always ASCII).
			c += jsonCost(rune(s[i+1]), 1)
			n = 2
		}
		if cost+c > limit {
			break
		}
		cost += c
		i += n
		cut = i
	}
	return strings.TrimRightFunc(s[:cut], unicode.IsSpace) + Ellipsis
}

func isSpaceOrControl(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
}

// escapeLine backslash-escapes the markdown Adaptive Cards interpret
// (bold, italic, links, lists, headings, quotes, code) in one line of text,
// so that it renders literally. CommonMark reads a backslash before any ASCII
// punctuation as that character; Teams desktop, web and (since 2023) mobile
// honour it. Characters are escaped only where they can start markup, so
// plain values such as versions ("1.2.3") and paths stay readable even in a
// client that showed stray backslashes. Bare URLs may still be auto-linked
// by a client, but then the link text is the URL itself, never a disguise.
func escapeLine(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	i := 0
	if n := blockMarker(s); n > 0 {
		b.WriteString(s[:n-1])
		b.WriteByte('\\')
		b.WriteByte(s[n-1])
		i = n
	}
	for ; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\', '*', '_', '[', ']', '`', '~':
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}

// blockMarker returns the length of a CommonMark block marker that s starts
// with and whose last byte needs a backslash: a bullet ("- ", "+ "), an
// ordered-list number ("1. ", "2) "), an ATX heading ("# "), a block quote
// (">"), or a setext underline / thematic break (a line of "-" or "="). It
// returns 0 when s starts like ordinary text ("1.5", "-5", "#123").
func blockMarker(s string) int {
	endsMarker := func(i int) bool { return i == len(s) || s[i] == ' ' || s[i] == '\t' }
	if s == "" {
		return 0
	}
	switch c := s[0]; {
	case c == '>':
		return 1
	case c == '-' || c == '=':
		if strings.Trim(s, string(c)+" \t") == "" {
			return 1
		}
		if c == '-' && endsMarker(1) {
			return 1
		}
	case c == '+':
		if endsMarker(1) {
			return 1
		}
	case c == '#':
		n := len(s) - len(strings.TrimLeft(s, "#"))
		if n <= 6 && endsMarker(n) {
			return 1
		}
	case c >= '0' && c <= '9':
		n := len(s) - len(strings.TrimLeft(s, "0123456789"))
		if n <= 9 && n < len(s) && (s[n] == '.' || s[n] == ')') && endsMarker(n+1) {
			return n + 1
		}
	}
	return 0
}

// formatValue renders an input value the way a user typed it.
func formatValue(v any) string {
	switch tv := v.(type) {
	case nil:
		return ""
	case string:
		return tv
	case float64:
		return strconv.FormatFloat(tv, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(tv), 'f', -1, 32)
	case bool, int, int64, int32, uint, uint64, json.Number:
		return fmt.Sprint(tv)
	}
	if b, err := json.Marshal(v); err == nil {
		return string(b)
	}
	return fmt.Sprint(v)
}

// formatTime renders t in loc (UTC when nil), unambiguous across locales.
func formatTime(t time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	return t.In(loc).Format("2006-01-02 15:04 MST")
}

// formatDuration renders d coarsely: "45s", "3m 12s", "2h 05m".
func formatDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
}
