package handlers

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode"
)

// command is one parsed chat command.
type command struct {
	Name string            // "run", "help", "status", "cancel" …
	Args []string          // positional arguments
	KV   map[string]string // key=value arguments, in the order typed (see Keys)
	Keys []string
}

// errSyntax reports a command line that could not be tokenised.
var errSyntax = errors.New("command syntax")

// parseCommand parses text such as `/run deploy-api version=1.4.2 msg="a b"`.
// A leading slash is optional, since in channels people write `@gatebot run …`.
// Values may be quoted with double or single quotes; a backslash escapes the
// next character inside double quotes.
func parseCommand(text string) (command, error) {
	toks, err := tokenize(text)
	if err != nil {
		return command{}, err
	}
	if len(toks) == 0 {
		return command{Name: "help"}, nil
	}
	cmd := command{Name: strings.ToLower(strings.TrimPrefix(toks[0].text, "/")), KV: map[string]string{}}
	for _, t := range toks[1:] {
		if k, v, ok := strings.Cut(t.text, "="); ok && !t.quotedKey && k != "" {
			if _, dup := cmd.KV[k]; dup {
				return command{}, fmt.Errorf("%w: %s is given twice", errSyntax, k)
			}
			cmd.KV[k] = v
			cmd.Keys = append(cmd.Keys, k)
			continue
		}
		cmd.Args = append(cmd.Args, t.text)
	}
	return cmd, nil
}

type token struct {
	text      string
	quotedKey bool // the '=' (if any) was inside quotes, so this is not key=value
}

var curlyQuotes = strings.NewReplacer("“", `"`, "”", `"`, "‘", "'", "’", "'")

func tokenize(s string) ([]token, error) {
	var (
		toks    []token
		cur     strings.Builder
		inTok   bool
		quote   rune
		sawEq   bool // '=' seen outside quotes in this token
		quotedE bool // '=' seen inside quotes before any unquoted '='
	)
	flush := func() {
		if inTok {
			toks = append(toks, token{text: cur.String(), quotedKey: quotedE && !sawEq})
		}
		cur.Reset()
		inTok, sawEq, quotedE = false, false, false
	}
	// Teams clients and phones turn straight quotes into curly ones.
	rs := []rune(curlyQuotes.Replace(s))
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote != 0:
			switch {
			case r == quote:
				quote = 0
			case r == '\\' && quote == '"' && i+1 < len(rs):
				i++
				cur.WriteRune(rs[i])
			default:
				if r == '=' && !sawEq {
					quotedE = true
				}
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote = r
			inTok = true
		case unicode.IsSpace(r):
			flush()
		default:
			if r == '=' {
				sawEq = true
			}
			cur.WriteRune(r)
			inTok = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("%w: a %c quote is not closed", errSyntax, quote)
	}
	flush()
	return toks, nil
}

// closest returns the candidate nearest to name by edit distance, if it is
// near enough to be a plausible typo.
func closest(name string, candidates []string) string {
	best, bestD := "", 1<<30
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	for _, c := range sorted {
		d := levenshtein(strings.ToLower(name), strings.ToLower(c))
		if strings.HasPrefix(strings.ToLower(c), strings.ToLower(name)) && len(name) >= 2 {
			d = min(d, 1)
		}
		if d < bestD {
			best, bestD = c, d
		}
	}
	if bestD <= max(2, len(name)/3) {
		return best
	}
	return ""
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
