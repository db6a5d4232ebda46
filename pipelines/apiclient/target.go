package apiclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Target reads a pipeline's provider-specific target section (YAML decoded
// into map[string]any). Every accessor names the key in its error, prefixed
// with "target.", so config check messages point at the line to fix.
type Target map[string]any

// String returns target[key] as a string. YAML numbers (pipeline_id: 123)
// are accepted and formatted without exponent. A missing key returns "",
// and an error only when required.
func (t Target) String(key string, required bool) (string, error) {
	v, ok := t[key]
	if !ok || v == nil {
		if required {
			return "", fmt.Errorf("target.%s is required", key)
		}
		return "", nil
	}
	var s string
	switch tv := v.(type) {
	case string:
		s = tv
	case int:
		s = strconv.Itoa(tv)
	case int64:
		s = strconv.FormatInt(tv, 10)
	case uint64:
		s = strconv.FormatUint(tv, 10)
	case float64:
		s = strconv.FormatFloat(tv, 'f', -1, 64)
	default:
		return "", fmt.Errorf("target.%s must be a string, not %T", key, v)
	}
	if required && strings.TrimSpace(s) == "" {
		return "", fmt.Errorf("target.%s must not be empty", key)
	}
	return s, nil
}

// Lookup returns target[key] as a string and whether the key is set, so
// that callers can tell an explicit "" (often "send none") from a missing
// key (use the default). Integral YAML numbers are accepted; fractions and
// other types are an error.
func (t Target) Lookup(key string) (string, bool, error) {
	v, ok := t[key]
	if !ok || v == nil {
		return "", false, nil
	}
	switch tv := v.(type) {
	case string:
		return tv, true, nil
	case int:
		return strconv.Itoa(tv), true, nil
	case int64:
		return strconv.FormatInt(tv, 10), true, nil
	case uint64:
		return strconv.FormatUint(tv, 10), true, nil
	case float64:
		if tv == math.Trunc(tv) {
			return strconv.FormatFloat(tv, 'f', -1, 64), true, nil
		}
	}
	return "", false, fmt.Errorf("target.%s: want a string, got %T", key, v)
}

// Object returns target[key] as a JSON-ready object (nil when absent).
// Nested maps from YAML are normalised so that encoding/json accepts them.
func (t Target) Object(key string) (map[string]any, error) {
	v, ok := t[key]
	if !ok || v == nil {
		return nil, nil
	}
	n, err := normalize(v)
	if err != nil {
		return nil, fmt.Errorf("target.%s: %v", key, err)
	}
	m, ok := n.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("target.%s must be a mapping, not %T", key, v)
	}
	return m, nil
}

// StringMap returns target[key] as a map of strings (nil when absent).
func (t Target) StringMap(key string) (map[string]string, error) {
	m, err := t.Object(key)
	if err != nil || m == nil {
		return nil, err
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		s, err := Target(m).String(k, false)
		if err != nil || v == nil {
			return nil, fmt.Errorf("target.%s.%s must be a string", key, k)
		}
		out[k] = s
	}
	return out, nil
}

// StringList returns target[key] as a list of strings (nil when absent).
func (t Target) StringList(key string) ([]string, error) {
	v, ok := t[key]
	if !ok || v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		if ss, ok := v.([]string); ok {
			return slices.Clone(ss), nil
		}
		return nil, fmt.Errorf("target.%s must be a list, not %T", key, v)
	}
	out := make([]string, len(list))
	for i, e := range list {
		s, err := Target{"x": e}.String("x", true)
		if err != nil {
			return nil, fmt.Errorf("target.%s[%d] must be a non-empty string", key, i)
		}
		out[i] = s
	}
	return out, nil
}

// Decode converts target[key] into v (a pointer) through JSON, refusing
// unknown fields, for structured values such as ServiceStage's selected_tasks.
// It reports false when the key is absent.
func (t Target) Decode(key string, v any) (bool, error) {
	raw, ok := t[key]
	if !ok || raw == nil {
		return false, nil
	}
	n, err := normalize(raw)
	if err != nil {
		return true, fmt.Errorf("target.%s: %v", key, err)
	}
	b, err := json.Marshal(n)
	if err != nil {
		return true, fmt.Errorf("target.%s: %v", key, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return true, fmt.Errorf("target.%s: %v", key, err)
	}
	return true, nil
}

// CheckKeys reports every key of t that is not in allowed, listing the
// allowed ones, so a typo in config is caught at config check.
func (t Target) CheckKeys(allowed ...string) []error {
	var unknown []string
	for k := range t {
		if !slices.Contains(allowed, k) {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	errs := make([]error, 0, len(unknown))
	for _, k := range unknown {
		errs = append(errs, fmt.Errorf("target.%s is not a known key (known: %s)", k, strings.Join(allowed, ", ")))
	}
	return errs
}

// normalize turns map[any]any (older YAML decoders) into map[string]any,
// recursively.
func normalize(v any) (any, error) {
	switch tv := v.(type) {
	case Target:
		return normalize(map[string]any(tv))
	case map[string]any:
		out := make(map[string]any, len(tv))
		for k, e := range tv {
			n, err := normalize(e)
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(tv))
		for k, e := range tv {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("key %v is not a string", k)
			}
			n, err := normalize(e)
			if err != nil {
				return nil, err
			}
			out[ks] = n
		}
		return out, nil
	case []any:
		out := make([]any, len(tv))
		for i, e := range tv {
			n, err := normalize(e)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	default:
		return v, nil
	}
}

// FlexString decodes a JSON string or number into a string, for ids that
// providers send either way (CodeArts' id, Opsera's runCount).
type FlexString string

// UnmarshalJSON accepts "abc", 123 and 1.5e3 (kept as written).
func (f *FlexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*f = ""
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = FlexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want a string or number, got %s", Truncate(string(b), 40))
	}
	*f = FlexString(n.String())
	return nil
}
