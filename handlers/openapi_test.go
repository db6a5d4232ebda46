package handlers_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"mime"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"gopkg.in/yaml.v3"
)

// A small checker for the subset of OpenAPI 3.1 / JSON Schema that
// openapi.yaml uses: $ref, type (one or a list), enum, required,
// properties, additionalProperties, items, minLength/maxLength,
// minimum/maximum, pattern, and the formats date-time, uri and
// uri-reference. Every API request the tests make goes through
// checkExchange, so each test doubles as a conformance test.

type openAPISpec struct {
	root map[string]any
	raw  []byte
}

var loadSpec = sync.OnceValues(func() (*openAPISpec, error) {
	raw, err := os.ReadFile("openapi.yaml")
	if err != nil {
		return nil, err
	}
	var root map[string]any
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	return &openAPISpec{root: root, raw: raw}, nil
})

func mustSpec(t testing.TB) *openAPISpec {
	t.Helper()
	sp, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// deref follows $ref (local JSON pointers only) until a node without one.
func (sp *openAPISpec) deref(node any) (map[string]any, error) {
	m := asMap(node)
	for hops := 0; m != nil; hops++ {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, nil
		}
		if hops > 20 {
			return nil, fmt.Errorf("$ref loop at %s", ref)
		}
		ptr, ok := strings.CutPrefix(ref, "#/")
		if !ok {
			return nil, fmt.Errorf("non-local $ref %q", ref)
		}
		var cur any = sp.root
		for _, part := range strings.Split(ptr, "/") {
			part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
			cm := asMap(cur)
			if cm == nil {
				return nil, fmt.Errorf("$ref %q does not resolve", ref)
			}
			cur, ok = cm[part]
			if !ok {
				return nil, fmt.Errorf("$ref %q does not resolve", ref)
			}
		}
		m = asMap(cur)
	}
	return nil, fmt.Errorf("not an object")
}

// validate checks v (as decoded by encoding/json into any) against schema.
func (sp *openAPISpec) validate(v any, schema any, at string) []string {
	s, err := sp.deref(schema)
	if err != nil {
		return []string{at + ": schema: " + err.Error()}
	}
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, at+": "+fmt.Sprintf(format, args...)) }
	if t, ok := s["type"]; ok {
		var types []string
		switch tv := t.(type) {
		case string:
			types = []string{tv}
		case []any:
			for _, x := range tv {
				types = append(types, fmt.Sprint(x))
			}
		}
		if !slices.ContainsFunc(types, func(tn string) bool { return jsonType(v, tn) }) {
			fail("is %s, want %s", describe(v), strings.Join(types, " or "))
			return errs
		}
	}
	if enum, ok := s["enum"].([]any); ok {
		if !slices.ContainsFunc(enum, func(e any) bool { return reflect.DeepEqual(normalize(e), v) }) {
			fail("%v is not one of %v", v, enum)
		}
	}
	switch tv := v.(type) {
	case string:
		n := len([]rune(tv))
		if m, ok := num(s["minLength"]); ok && float64(n) < m {
			fail("shorter than %v", m)
		}
		if m, ok := num(s["maxLength"]); ok && float64(n) > m {
			fail("longer than %v", m)
		}
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(tv) {
			fail("%q does not match %s", tv, p)
		}
		switch s["format"] {
		case "date-time":
			if _, err := time.Parse(time.RFC3339Nano, tv); err != nil {
				fail("%q is not an RFC 3339 date-time", tv)
			}
		case "uri":
			if u, err := url.Parse(tv); err != nil || !u.IsAbs() {
				fail("%q is not an absolute URI", tv)
			}
		case "uri-reference":
			if _, err := url.Parse(tv); err != nil {
				fail("%q is not a URI reference", tv)
			}
		}
	case float64:
		if m, ok := num(s["minimum"]); ok && tv < m {
			fail("%v is below %v", tv, m)
		}
		if m, ok := num(s["maximum"]); ok && tv > m {
			fail("%v is above %v", tv, m)
		}
	case []any:
		if items, ok := s["items"]; ok {
			for i, x := range tv {
				errs = append(errs, sp.validate(x, items, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	case map[string]any:
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if _, ok := tv[r.(string)]; !ok {
					fail("required property %q missing", r)
				}
			}
		}
		props := asMap(s["properties"])
		for _, k := range sortedKeys(tv) {
			if ps, ok := props[k]; ok {
				errs = append(errs, sp.validate(tv[k], ps, at+"."+k)...)
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					fail("property %q is not documented", k)
				}
			case map[string]any:
				errs = append(errs, sp.validate(tv[k], ap, at+"."+k)...)
			}
		}
	}
	return errs
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func num(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

// normalize makes a YAML scalar comparable with a JSON-decoded value.
func normalize(v any) any {
	if n, ok := num(v); ok {
		return n
	}
	return v
}

func jsonType(v any, t string) bool {
	switch t {
	case "null":
		return v == nil
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "number":
		_, ok := v.(float64)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == math.Trunc(f)
	case "array":
		_, ok := v.([]any)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	}
	return false
}

func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case float64:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

var pathParam = regexp.MustCompile(`\{[^/}]+\}`)

// operation finds the documented operation for method and path.
func (sp *openAPISpec) operation(method, path string) (op, item map[string]any, tmpl string) {
	for t, it := range asMap(sp.root["paths"]) {
		parts := strings.Split(t, "/")
		for i, part := range parts {
			if pathParam.MatchString(part) {
				parts[i] = "[^/]+"
			} else {
				parts[i] = regexp.QuoteMeta(part)
			}
		}
		if regexp.MustCompile("^" + strings.Join(parts, "/") + "$").MatchString(path) {
			if o := asMap(asMap(it)[strings.ToLower(method)]); o != nil {
				return o, asMap(it), t
			}
		}
	}
	return nil, nil, ""
}

// params lists the parameters of an operation and its path item.
func (sp *openAPISpec) params(op, item map[string]any) []map[string]any {
	var out []map[string]any
	for _, src := range []any{item["parameters"], op["parameters"]} {
		list, _ := src.([]any)
		for _, p := range list {
			if pm, err := sp.deref(p); err == nil {
				out = append(out, pm)
			}
		}
	}
	return out
}

// checkExchange checks one request and its response against the spec:
// the operation and status are documented, the response media type and
// body match, required headers are present, and an accepted request's
// body and query parameters are documented and valid.
func checkExchange(t testing.TB, req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) {
	t.Helper()
	sp := mustSpec(t)
	what := req.Method + " " + req.URL.Path
	op, item, _ := sp.operation(req.Method, req.URL.Path)
	if op == nil {
		t.Errorf("openapi: %s is not documented", what)
		return
	}
	status := strconv.Itoa(resp.StatusCode)
	respSpec, ok := asMap(op["responses"])[status]
	if !ok {
		t.Errorf("openapi: %s answered %s, which is not documented (body %s)", what, status, respBody)
		return
	}
	rs, err := sp.deref(respSpec)
	if err != nil {
		t.Errorf("openapi: %s %s: %v", what, status, err)
		return
	}
	for name, h := range asMap(rs["headers"]) {
		hs, err := sp.deref(h)
		if err != nil {
			t.Errorf("openapi: %s %s header %s: %v", what, status, name, err)
			continue
		}
		v := resp.Header.Get(name)
		if v == "" {
			if hs["required"] == true {
				t.Errorf("openapi: %s %s: required header %s missing", what, status, name)
			}
			continue
		}
		for _, e := range sp.validate(v, hs["schema"], "header "+name) {
			t.Errorf("openapi: %s %s: %s", what, status, e)
		}
	}
	content := asMap(rs["content"])
	if len(respBody) == 0 || req.Method == http.MethodHead {
		if len(content) > 0 && req.Method != http.MethodHead {
			t.Errorf("openapi: %s %s: empty body, documented %v", what, status, sortedKeys(content))
		}
	} else {
		mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		media, ok := content[mt]
		if !ok {
			t.Errorf("openapi: %s %s: Content-Type %q is not documented (%v)", what, status, mt, sortedKeys(content))
		} else if strings.HasSuffix(mt, "json") {
			var v any
			if err := json.Unmarshal(respBody, &v); err != nil {
				t.Errorf("openapi: %s %s: body is not JSON: %v", what, status, err)
			} else {
				for _, e := range sp.validate(v, asMap(media)["schema"], "response") {
					t.Errorf("openapi: %s %s: %s", what, status, e)
				}
			}
		}
	}
	if resp.StatusCode/100 != 2 {
		return
	}
	// The server accepted the request: the spec must describe it.
	params := sp.params(op, item)
	for name, vals := range req.URL.Query() {
		i := slices.IndexFunc(params, func(p map[string]any) bool { return p["in"] == "query" && p["name"] == name })
		if i < 0 {
			t.Errorf("openapi: %s accepted undocumented query parameter %q", what, name)
			continue
		}
		for _, e := range sp.validate(queryValue(vals[0], params[i]["schema"], sp), params[i]["schema"], "query "+name) {
			t.Errorf("openapi: %s: %s", what, e)
		}
	}
	for _, p := range params {
		if p["in"] == "header" {
			if v := req.Header.Get(p["name"].(string)); v != "" {
				for _, e := range sp.validate(v, p["schema"], "header "+p["name"].(string)) {
					t.Errorf("openapi: %s: %s", what, e)
				}
			}
		}
	}
	if rb := asMap(op["requestBody"]); rb != nil && len(reqBody) > 0 {
		media := asMap(asMap(rb["content"])["application/json"])
		var v any
		if err := json.Unmarshal(reqBody, &v); err != nil {
			t.Errorf("openapi: %s accepted a body that is not JSON", what)
		} else {
			for _, e := range sp.validate(v, media["schema"], "request") {
				t.Errorf("openapi: %s accepted an undocumented request: %s", what, e)
			}
		}
	}
}

// queryValue types a query string value as its schema says.
func queryValue(v string, schema any, sp *openAPISpec) any {
	s, _ := sp.deref(schema)
	if s["type"] == "integer" || s["type"] == "number" {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return f
		}
	}
	return v
}

// checkCallback checks a received callback against the gateStateChanged
// webhook.
func checkCallback(t testing.TB, h http.Header, body []byte) {
	t.Helper()
	sp := mustSpec(t)
	op := asMap(asMap(asMap(sp.root["webhooks"])["gateStateChanged"])["post"])
	if op == nil {
		t.Fatal("openapi: webhook gateStateChanged is not documented")
	}
	for _, p := range sp.params(op, nil) {
		v := h.Get(p["name"].(string))
		if v == "" && p["required"] == true {
			t.Errorf("openapi: callback lacks header %s", p["name"])
			continue
		}
		for _, e := range sp.validate(v, p["schema"], "callback header "+p["name"].(string)) {
			t.Errorf("openapi: %s", e)
		}
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Errorf("openapi: callback body is not JSON: %v", err)
		return
	}
	schema := asMap(asMap(asMap(op["requestBody"])["content"])["application/json"])["schema"]
	for _, e := range sp.validate(v, schema, "callback") {
		t.Errorf("openapi: %s", e)
	}
}

func TestOpenAPIDocument(t *testing.T) {
	sp := mustSpec(t)
	if sp.root["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", sp.root["openapi"])
	}
	// Every $ref resolves.
	var walk func(n any, at string)
	walk = func(n any, at string) {
		switch v := n.(type) {
		case map[string]any:
			if _, ok := v["$ref"]; ok {
				if _, err := sp.deref(v); err != nil {
					t.Errorf("%s: %v", at, err)
				}
			}
			for k, c := range v {
				walk(c, at+"/"+k)
			}
		case []any:
			for i, c := range v {
				walk(c, fmt.Sprintf("%s/%d", at, i))
			}
		}
	}
	walk(sp.root, "#")
	ids := map[string]bool{}
	for p, item := range asMap(sp.root["paths"]) {
		for m, op := range asMap(item) {
			if m == "parameters" {
				continue
			}
			id, _ := asMap(op)["operationId"].(string)
			if id == "" || ids[id] {
				t.Errorf("%s %s: missing or repeated operationId %q", m, p, id)
			}
			ids[id] = true
			if len(asMap(asMap(op)["responses"])) == 0 {
				t.Errorf("%s %s: no responses", m, p)
			}
		}
	}

	// The spec and the router agree on the API's routes.
	e := newAPIEnv(t, redisClients(t)["miniredis"], apiEnvOptions{})
	var routed []string
	e.h.Router().Walk(func(r *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tmpl, err := r.GetPathTemplate()
		if err != nil || !strings.HasPrefix(tmpl, "/api/v1/") {
			return nil
		}
		methods, _ := r.GetMethods()
		for _, m := range methods {
			if m != http.MethodHead {
				routed = append(routed, strings.ToLower(m)+" "+tmpl)
			}
		}
		return nil
	})
	var documented []string
	for p, item := range asMap(sp.root["paths"]) {
		for m := range asMap(item) {
			if m != "parameters" {
				documented = append(documented, m+" "+p)
			}
		}
	}
	sort.Strings(routed)
	sort.Strings(documented)
	if !slices.Equal(routed, documented) {
		t.Errorf("routes and spec differ:\nrouted:     %v\ndocumented: %v", routed, documented)
	}

	// It is served as is.
	resp, body := e.api(http.MethodGet, "/api/v1/openapi.yaml", "", nil, nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, sp.raw) || resp.Header.Get("Content-Type") != "application/yaml" {
		t.Errorf("GET /api/v1/openapi.yaml: %d %s, %d bytes, equal to the file: %v", resp.StatusCode, resp.Header.Get("Content-Type"), len(body), bytes.Equal(body, sp.raw))
	}
}

// TestOpenAPICheckerCatches shows that the checker is not a rubber stamp.
func TestOpenAPICheckerCatches(t *testing.T) {
	sp := mustSpec(t)
	gate := func(mut func(m map[string]any)) any {
		m := map[string]any{
			"id": "g_1", "pipeline": "deploy-api", "state": "pending", "inputs": map[string]any{"version": "1.2.3"},
			"requester": map[string]any{"name": "ci"}, "required_approvals": 1.0, "votes": []any{},
			"created_at": "2026-01-02T03:04:05Z", "updated_at": "2026-01-02T03:04:05Z", "version": 1.0,
			"links": map[string]any{"self": "/api/v1/gates/g_1"},
		}
		if mut != nil {
			mut(m)
		}
		return m
	}
	ref := map[string]any{"$ref": "#/components/schemas/Gate"}
	if errs := sp.validate(gate(nil), ref, "gate"); len(errs) != 0 {
		t.Fatalf("a valid gate is refused: %v", errs)
	}
	bad := map[string]func(m map[string]any){
		"missing id":          func(m map[string]any) { delete(m, "id") },
		"state not in enum":   func(m map[string]any) { m["state"] = "napping" },
		"undocumented field":  func(m map[string]any) { m["secret"] = "x" },
		"wrong type":          func(m map[string]any) { m["version"] = "1" },
		"fractional integer":  func(m map[string]any) { m["version"] = 1.5 },
		"bad date":            func(m map[string]any) { m["created_at"] = "yesterday" },
		"nested input object": func(m map[string]any) { m["inputs"] = map[string]any{"x": map[string]any{}} },
		"vote without by": func(m map[string]any) {
			m["votes"] = []any{map[string]any{"approve": true, "at": "2026-01-02T03:04:05Z"}}
		},
		"below minimum": func(m map[string]any) { m["required_approvals"] = 0.0 },
	}
	for name, mut := range bad {
		if errs := sp.validate(gate(mut), ref, "gate"); len(errs) == 0 {
			t.Errorf("%s: accepted", name)
		}
	}
	// An undocumented status is reported.
	ft := &fakeT{}
	req, _ := http.NewRequest(http.MethodGet, "http://x/api/v1/gates/g_1", nil)
	checkExchange(ft, req, nil, &http.Response{StatusCode: http.StatusTeapot, Header: http.Header{}}, nil)
	if len(ft.errs) == 0 {
		t.Error("an undocumented status passed")
	}
	ft = &fakeT{}
	req, _ = http.NewRequest(http.MethodPatch, "http://x/api/v1/gates/g_1", nil)
	checkExchange(ft, req, nil, &http.Response{StatusCode: http.StatusOK, Header: http.Header{}}, nil)
	if len(ft.errs) == 0 {
		t.Error("an undocumented operation passed")
	}
}

// fakeT collects the checker's complaints.
type fakeT struct {
	testing.TB
	errs []string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Errorf(format string, args ...any) {
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}
func (f *fakeT) Fatal(args ...any) { f.errs = append(f.errs, fmt.Sprint(args...)) }
