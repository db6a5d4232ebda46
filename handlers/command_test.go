package handlers

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	cases := []struct {
		in      string
		name    string
		args    []string
		kv      map[string]string
		keys    []string
		wantErr string
	}{
		{in: "/run deploy-api version=1.4.2", name: "run", args: []string{"deploy-api"}, kv: map[string]string{"version": "1.4.2"}, keys: []string{"version"}},
		{in: "run deploy-api", name: "run", args: []string{"deploy-api"}, kv: map[string]string{}},
		{in: "  /RUN   demo  ", name: "run", args: []string{"demo"}, kv: map[string]string{}},
		{in: `/run demo msg="hello world" v=1`, name: "run", args: []string{"demo"}, kv: map[string]string{"msg": "hello world", "v": "1"}, keys: []string{"msg", "v"}},
		{in: `/run demo msg='it''s'`, name: "run", args: []string{"demo"}, kv: map[string]string{"msg": "its"}, keys: []string{"msg"}},
		{in: `/run demo msg="say \"hi\""`, name: "run", args: []string{"demo"}, kv: map[string]string{"msg": `say "hi"`}, keys: []string{"msg"}},
		{in: "/run demo msg=“curly quotes”", name: "run", args: []string{"demo"}, kv: map[string]string{"msg": "curly quotes"}, keys: []string{"msg"}},
		{in: `/run demo "a=b"`, name: "run", args: []string{"demo", "a=b"}, kv: map[string]string{}},
		{in: "/run demo url=https://x.example/?a=b", name: "run", args: []string{"demo"}, kv: map[string]string{"url": "https://x.example/?a=b"}, keys: []string{"url"}},
		{in: "/run demo empty=", name: "run", args: []string{"demo"}, kv: map[string]string{"empty": ""}, keys: []string{"empty"}},
		{in: "", name: "help"},
		{in: `/run demo msg="open`, wantErr: "a \" quote is not closed"},
		{in: "/run demo v=1 v=2", wantErr: "v is given twice"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := parseCommand(c.in)
			if c.wantErr != "" {
				if err == nil || !errors.Is(err, errSyntax) || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want a syntax error with %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != c.name || !reflect.DeepEqual(got.Args, c.args) || (c.kv != nil && !reflect.DeepEqual(got.KV, c.kv)) || !reflect.DeepEqual(got.Keys, c.keys) {
				t.Errorf("parseCommand(%q) = %+v, want name=%q args=%q kv=%v keys=%q", c.in, got, c.name, c.args, c.kv, c.keys)
			}
		})
	}
}

func TestClosest(t *testing.T) {
	names := []string{"deploy-api", "deploy-web", "demo", "rollback"}
	cases := map[string]string{
		"dmeo":       "demo",
		"deploy-ap":  "deploy-api",
		"rolback":    "rollback",
		"DEMO":       "demo",
		"completely": "",
		"x":          "",
	}
	for in, want := range cases {
		if got := closest(in, names); got != want {
			t.Errorf("closest(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkParseCommand measures parsing a typical /run line with quoted
// values and curly quotes, as phones send them.
func BenchmarkParseCommand(b *testing.B) {
	for _, line := range []string{"help", `/run deploy-api version=1.4.2 env=prod msg=“hotfix for the login page”`} {
		b.Run(strings.Fields(line)[0], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := parseCommand(line); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
