package apiclient_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gatebot/gatebot/pipelines/apiclient"
	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

func TestTarget(t *testing.T) {
	var tg apiclient.Target
	src := `
pipeline_id: 123
app: api
big: 12345678901
empty: ""
list: [a, 2]
badlist: [a, {x: 1}]
env: {A: x, B: 2}
nested: {ref: {branch: main, n: [1, 2]}}
scalar: 5
tasks: [{stage_name: s, tasks: [t1]}]
`
	if err := yaml.Unmarshal([]byte(src), &tg); err != nil {
		t.Fatal(err)
	}
	str := func(key string, req bool) string {
		s, err := tg.String(key, req)
		if err != nil {
			return "ERR " + err.Error()
		}
		return s
	}
	tests := map[string]string{
		str("pipeline_id", true): "123",
		str("app", true):         "api",
		str("big", true):         "12345678901",
		str("missing", false):    "",
	}
	for got, want := range tests {
		if got != want {
			t.Errorf("got %q want %q", got, want)
		}
	}
	for _, k := range []string{"missing", "empty", "list"} {
		if s := str(k, true); !strings.HasPrefix(s, "ERR target."+k) {
			t.Errorf("String(%s) = %q, want an error naming the key", k, s)
		}
	}
	if l, err := tg.StringList("list"); err != nil || !cmp.Equal(l, []string{"a", "2"}) {
		t.Errorf("StringList = %v, %v", l, err)
	}
	if _, err := tg.StringList("badlist"); err == nil {
		t.Error("badlist accepted")
	}
	if m, err := tg.StringMap("env"); err != nil || !cmp.Equal(m, map[string]string{"A": "x", "B": "2"}) {
		t.Errorf("StringMap = %v, %v", m, err)
	}
	o, err := tg.Object("nested")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(o); string(b) != `{"ref":{"branch":"main","n":[1,2]}}` {
		t.Errorf("Object json = %s", b)
	}
	if _, err := tg.Object("scalar"); err == nil {
		t.Error("scalar accepted as object")
	}
	var tasks []struct {
		StageName string   `json:"stage_name"`
		Tasks     []string `json:"tasks"`
	}
	if ok, err := tg.Decode("tasks", &tasks); !ok || err != nil || tasks[0].Tasks[0] != "t1" {
		t.Errorf("Decode = %v %v %+v", ok, err, tasks)
	}
	var strict []struct{ Other string }
	if _, err := tg.Decode("tasks", &strict); err == nil {
		t.Error("unknown fields accepted")
	}
	errs := tg.CheckKeys("pipeline_id", "app")
	if len(errs) != 8 || !strings.Contains(errs[1].Error(), "target.big is not a known key (known: pipeline_id, app)") {
		t.Errorf("CheckKeys = %v", errs)
	}
}

func TestFlexString(t *testing.T) {
	for in, want := range map[string]string{`"abc"`: "abc", `286541`: "286541", `null`: "", `1.5e3`: "1.5e3"} {
		var f apiclient.FlexString
		if err := json.Unmarshal([]byte(in), &f); err != nil || string(f) != want {
			t.Errorf("%s → %q, %v", in, f, err)
		}
	}
	var f apiclient.FlexString
	if err := json.Unmarshal([]byte(`{}`), &f); err == nil {
		t.Error("object accepted")
	}
}

func TestTargetLookup(t *testing.T) {
	tg := apiclient.Target{"s": "main", "empty": "", "n": 42, "i64": int64(7), "u64": uint64(8), "f": 12345678901.0, "frac": 1.5, "null": nil, "list": []any{"a"}}
	tests := []struct {
		key     string
		want    string
		set     bool
		wantErr string
	}{
		{key: "s", want: "main", set: true},
		{key: "empty", want: "", set: true},
		{key: "missing"},
		{key: "null"},
		{key: "n", want: "42", set: true},
		{key: "i64", want: "7", set: true},
		{key: "u64", want: "8", set: true},
		{key: "f", want: "12345678901", set: true},
		{key: "frac", wantErr: "target.frac: want a string, got float64"},
		{key: "list", wantErr: "target.list: want a string, got []interface {}"},
	}
	for _, tt := range tests {
		got, set, err := tg.Lookup(tt.key)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("Lookup(%q) err = %v, want %q", tt.key, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want || set != tt.set {
			t.Errorf("Lookup(%q) = %q, %v, %v; want %q, %v", tt.key, got, set, err, tt.want, tt.set)
		}
	}
}
