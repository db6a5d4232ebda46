package main

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The shape check walks a config document next to the Go type it decodes
// into and reports, per field path, what yaml.v3's strict decoder would
// only report one at a time and in Go terms ("field colour not found in
// type main.PipelineConfig"): unknown fields (with the closest known name),
// values of the wrong kind, and durations that do not parse. Everything is
// reported in one pass so `gatebot config check` lists every problem.

// fieldProblem is one problem at a field path relative to the node that
// was checked.
type fieldProblem struct {
	Path string
	Msg  string
}

func (p fieldProblem) Error() string {
	if p.Path == "" {
		return p.Msg
	}
	return p.Path + ": " + p.Msg
}

var (
	durationType   = reflect.TypeFor[Duration]()
	goDurationType = reflect.TypeFor[time.Duration]()
	providerType   = reflect.TypeFor[ProviderConfig]()
)

// checkShape reports every place where n does not fit t.
func checkShape(n *yaml.Node, t reflect.Type) []fieldProblem {
	var out []fieldProblem
	shape(n, t, "", "", &out)
	return out
}

func joinPath(base, key string) string {
	if base == "" {
		return key
	}
	return base + "." + key
}

// shape checks n against t; check is the field's `check` struct tag.
func shape(n *yaml.Node, t reflect.Type, path, check string, out *[]fieldProblem) {
	for n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Tag == "!!null" {
		return
	}
	add := func(format string, args ...any) {
		*out = append(*out, fieldProblem{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	switch t {
	case durationType:
		if n.Kind != yaml.ScalarNode {
			add("must be a duration such as 90s, 1h or 30d")
			return
		}
		d, err := parseDuration(n.Value)
		if err != nil {
			add("%s", durationProblem(n.Value))
			return
		}
		checkNumber(float64(d), n.Value, check, add)
		return
	case goDurationType:
		if _, err := time.ParseDuration(n.Value); n.Kind != yaml.ScalarNode || err != nil {
			add("%q is not a duration such as 90s or 5m", n.Value)
		}
		return
	case providerType:
		// The section's body belongs to the provider type and is checked
		// against its own Config when the provider is built.
		if n.Kind != yaml.MappingNode {
			add("must be a mapping with a type")
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		shapeStruct(n, t, path, out)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			add("must be a mapping (name: value), got %s", kindName(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			shape(n.Content[i+1], t.Elem(), joinPath(path, n.Content[i].Value), check, out)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			add("must be a list, got %s", kindName(n))
			return
		}
		for i, c := range n.Content {
			shape(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), check, out)
		}
	case reflect.Interface:
		// Free-form (target:, input defaults).
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			add("must be a single value, got %s", kindName(n))
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			add("%s is not true or false", describe(n))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v, err := strconv.ParseInt(n.Value, 0, 64)
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || err != nil {
			add("%s is not a whole number", describe(n))
			return
		}
		checkNumber(float64(v), n.Value, check, add)
	case reflect.Float32, reflect.Float64:
		v, err := strconv.ParseFloat(n.Value, 64)
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") || err != nil {
			add("%s is not a number", describe(n))
			return
		}
		checkNumber(v, n.Value, check, add)
	}
}

// checkNumber applies a field's `check` tag: "positive" or "nonnegative".
func checkNumber(v float64, raw, check string, add func(string, ...any)) {
	switch {
	case check == "positive" && v <= 0:
		add("%s must be greater than zero", raw)
	case check == "nonnegative" && v < 0:
		add("%s must not be negative", raw)
	}
}

// yamlField is one field a struct accepts in YAML.
type yamlField struct {
	typ   reflect.Type
	check string
}

// yamlFields lists the YAML names t accepts, following `,inline`.
func yamlFields(t reflect.Type, into map[string]yamlField) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				yamlFields(ft, into)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		into[name] = yamlField{typ: f.Type, check: f.Tag.Get("check")}
	}
}

func shapeStruct(n *yaml.Node, t reflect.Type, path string, out *[]fieldProblem) {
	if n.Kind != yaml.MappingNode {
		*out = append(*out, fieldProblem{Path: path, Msg: fmt.Sprintf("must be a mapping of fields, got %s", kindName(n))})
		return
	}
	fields := map[string]yamlField{}
	yamlFields(t, fields)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		p := joinPath(path, k.Value)
		f, ok := fields[k.Value]
		if !ok {
			msg := fmt.Sprintf("unknown field (line %d)", k.Line)
			if best := closest(k.Value, fields); best != "" {
				msg += fmt.Sprintf("; did you mean %s → %s?", k.Value, best)
			}
			*out = append(*out, fieldProblem{Path: p, Msg: msg})
			continue
		}
		if line, dup := seen[k.Value]; dup {
			*out = append(*out, fieldProblem{Path: p, Msg: fmt.Sprintf("set twice (lines %d and %d)", line, k.Line)})
			continue
		}
		seen[k.Value] = k.Line
		shape(n.Content[i+1], f.typ, p, f.check, out)
	}
}

// closest is the known field name nearest to name, if near enough to be
// the likely intent (a typo, a British spelling, a dash for an underscore).
func closest(name string, fields map[string]yamlField) string {
	norm := func(s string) string { return strings.ToLower(strings.NewReplacer("-", "_", " ", "_").Replace(s)) }
	limit := max(2, len(name)/3)
	best, bestD := "", limit+1
	for k := range fields {
		d := editDistance(norm(name), norm(k))
		if d < bestD || (d == bestD && k < best) {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

func describe(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return fmt.Sprintf("%q", n.Value)
	}
	return kindName(n)
}

// durationWords reads "1 hour", "30 mins", "2days" and the like.
var durationWords = regexp.MustCompile(`^\s*(\d+)\s*(d|days?|h|hrs?|hours?|m|mins?|minutes?|s|secs?|seconds?)\s*$`)

// durationProblem explains why s is not a duration and, when the intent is
// clear, what to write instead.
func durationProblem(s string) string {
	if strings.HasPrefix(strings.TrimSpace(s), "-") {
		return fmt.Sprintf("%q must not be negative", s)
	}
	if m := durationWords.FindStringSubmatch(strings.ToLower(s)); m != nil {
		return fmt.Sprintf("%q is not a duration (use %s%s)", s, m[1], m[2][:1])
	}
	return fmt.Sprintf("%q is not a duration (e.g. 90s, 1h, 30d)", s)
}
