package pipelines

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// InputType is the declared type of a pipeline input.
type InputType string

// The input types gatebot validates and forwards typed.
const (
	TypeString  InputType = "string"
	TypeNumber  InputType = "number"
	TypeBoolean InputType = "boolean"
)

// Input declares one pipeline input.
type Input struct {
	Type        InputType `yaml:"type" json:"type"`
	Required    bool      `yaml:"required" json:"required,omitempty"`
	Description string    `yaml:"description" json:"description,omitempty"`
	Default     any       `yaml:"default" json:"default,omitempty"`
	Enum        []string  `yaml:"enum" json:"enum,omitempty"`
	Pattern     string    `yaml:"pattern" json:"pattern,omitempty"`

	re *regexp.Regexp
}

// Definition is one configured pipeline: which provider runs it, where, and
// which inputs it takes.
type Definition struct {
	Name        string
	Provider    string // configured provider name
	Description string
	Target      map[string]any
	Inputs      map[string]*Input
}

// Compile checks the declarations and prepares patterns. It returns one
// error per problem, each naming the input.
func (d *Definition) Compile() []error {
	var errs []error
	for _, name := range d.InputNames() {
		in := d.Inputs[name]
		if in == nil {
			errs = append(errs, fmt.Errorf("inputs.%s: empty declaration", name))
			continue
		}
		switch in.Type {
		case "":
			in.Type = TypeString
		case TypeString, TypeNumber, TypeBoolean:
		default:
			errs = append(errs, fmt.Errorf("inputs.%s.type: %q is not one of string, number, boolean", name, in.Type))
			continue
		}
		if in.Pattern != "" {
			re, err := regexp.Compile(in.Pattern)
			if err != nil {
				errs = append(errs, fmt.Errorf("inputs.%s.pattern: %v", name, err))
			}
			in.re = re
		}
		if in.Default != nil {
			if _, err := in.coerce(fmt.Sprint(in.Default)); err != nil {
				errs = append(errs, fmt.Errorf("inputs.%s.default: %v", name, err))
			}
		}
	}
	return errs
}

// InputNames returns the declared input names in a stable order.
func (d *Definition) InputNames() []string {
	names := make([]string, 0, len(d.Inputs))
	for n := range d.Inputs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// InputError describes one bad input. Name is empty for problems that are
// not about a single input.
type InputError struct {
	Name   string
	Reason string
}

func (e InputError) Error() string {
	if e.Name == "" {
		return e.Reason
	}
	return e.Name + ": " + e.Reason
}

// InputErrors is every problem found in one set of inputs.
type InputErrors []InputError

func (e InputErrors) Error() string {
	parts := make([]string, len(e))
	for i, ie := range e {
		parts[i] = ie.Error()
	}
	return "invalid inputs: " + strings.Join(parts, "; ")
}

// ErrInvalidInputs is matched by errors.Is for any InputErrors.
var ErrInvalidInputs = errors.New("invalid inputs")

// Is lets errors.Is(err, ErrInvalidInputs) match.
func (e InputErrors) Is(target error) bool { return target == ErrInvalidInputs }

// Resolve validates raw inputs (as typed in chat or sent over the API)
// against the declarations and returns them typed, with defaults applied.
// Undeclared inputs are refused, never forwarded. The error, if any, is an
// InputErrors listing every problem.
func (d *Definition) Resolve(raw map[string]any) (map[string]any, error) {
	var errs InputErrors
	out := make(map[string]any, len(d.Inputs))
	var unknown []string
	for k := range raw {
		if _, ok := d.Inputs[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		errs = append(errs, InputError{Name: k, Reason: "not an input of " + d.Name + d.knownInputsHint()})
	}
	for _, name := range d.InputNames() {
		in := d.Inputs[name]
		v, ok := raw[name]
		if !ok || v == nil {
			if in.Default != nil {
				tv, _ := in.coerce(fmt.Sprint(in.Default))
				out[name] = tv
			} else if in.Required {
				errs = append(errs, InputError{Name: name, Reason: "required (" + in.Expect() + ")"})
			}
			continue
		}
		tv, err := in.accept(v)
		if err != nil {
			errs = append(errs, InputError{Name: name, Reason: err.Error()})
			continue
		}
		out[name] = tv
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

func (d *Definition) knownInputsHint() string {
	if len(d.Inputs) == 0 {
		return " (it takes no inputs)"
	}
	return " (known: " + strings.Join(d.InputNames(), ", ") + ")"
}

// Expect describes in words what the input accepts, for error messages.
func (in *Input) Expect() string {
	s := string(in.Type)
	if s == "" {
		s = string(TypeString)
	}
	switch {
	case len(in.Enum) > 0:
		s += " one of " + strings.Join(in.Enum, ", ")
	case in.Pattern != "":
		s += " matching " + in.Pattern
	case in.Type == TypeBoolean:
		s += " true or false"
	}
	return s
}

// accept checks a raw value that may already be typed (from JSON).
func (in *Input) accept(v any) (any, error) {
	switch tv := v.(type) {
	case string:
		return in.coerce(tv)
	case bool:
		if in.Type != TypeBoolean {
			return nil, fmt.Errorf("got a boolean, want %s", in.Expect())
		}
		return tv, nil
	case float64, int, int64:
		if in.Type == TypeString {
			return nil, fmt.Errorf("got a number, want %s", in.Expect())
		}
		return in.coerce(fmt.Sprint(tv))
	default:
		return nil, fmt.Errorf("got %T, want %s", v, in.Expect())
	}
}

func (in *Input) coerce(s string) (any, error) {
	var v any
	switch in.Type {
	case TypeBoolean:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not true or false", s)
		}
		v = b
	case TypeNumber:
		// ParseFloat also accepts NaN, Inf and ±infinity, and returns ±Inf
		// for values beyond float64 with a range error: none of them is a
		// number a pipeline can be given (JSON cannot even carry them).
		f, err := strconv.ParseFloat(s, 64)
		switch {
		case errors.Is(err, strconv.ErrRange):
			return nil, fmt.Errorf("%q is out of range for a number", s)
		case err != nil:
			return nil, fmt.Errorf("%q is not a number", s)
		case math.IsNaN(f) || math.IsInf(f, 0):
			return nil, fmt.Errorf("%q is not a finite number", s)
		}
		v = f
	default:
		v = s
	}
	if len(in.Enum) > 0 && !slices.Contains(in.Enum, s) {
		return nil, fmt.Errorf("%q is not one of %s", s, strings.Join(in.Enum, ", "))
	}
	re := in.re
	if re == nil && in.Pattern != "" {
		// Not compiled yet (Compile reports bad patterns); compile locally so
		// that concurrent callers never write to the shared declaration.
		re, _ = regexp.Compile(in.Pattern)
	}
	if re != nil && !re.MatchString(s) {
		return nil, fmt.Errorf("%q does not match %s", s, in.Pattern)
	}
	return v, nil
}

// StringInputs renders typed inputs as strings, for providers whose APIs
// take only string variables (Yunxiao envs, Jenkins parameters).
func StringInputs(inputs map[string]any) map[string]string {
	out := make(map[string]string, len(inputs))
	for k, v := range inputs {
		switch tv := v.(type) {
		case float64:
			out[k] = strconv.FormatFloat(tv, 'f', -1, 64)
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	return out
}
