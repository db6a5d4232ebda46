package pipelines_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/gatebot/gatebot/pipelines"
)

func deployDef(t *testing.T) *pipelines.Definition {
	t.Helper()
	d := &pipelines.Definition{Name: "deploy-api", Inputs: map[string]*pipelines.Input{
		"version":  {Type: pipelines.TypeString, Required: true, Pattern: `^v?\d+\.\d+\.\d+$`},
		"dry_run":  {Type: pipelines.TypeBoolean, Default: false},
		"replicas": {Type: pipelines.TypeNumber},
		"region":   {Enum: []string{"eu", "us"}},
	}}
	if errs := d.Compile(); len(errs) > 0 {
		t.Fatal(errs)
	}
	return d
}

func TestResolve(t *testing.T) {
	cases := []struct {
		name    string
		raw     map[string]any
		want    map[string]any
		wantErr []string // one per problem, in order
	}{
		{"typed from chat strings", map[string]any{"version": "1.4.2", "dry_run": "true", "replicas": "3", "region": "eu"},
			map[string]any{"version": "1.4.2", "dry_run": true, "replicas": 3.0, "region": "eu"}, nil},
		{"defaults applied", map[string]any{"version": "v2.0.0"}, map[string]any{"version": "v2.0.0", "dry_run": false}, nil},
		{"typed JSON accepted", map[string]any{"version": "1.0.0", "dry_run": true, "replicas": 2.5},
			map[string]any{"version": "1.0.0", "dry_run": true, "replicas": 2.5}, nil},
		{"every problem named", map[string]any{"dry_run": "maybe", "replicas": "many", "region": "mars", "colour": "red"}, nil, []string{
			"colour: not an input of deploy-api (known: dry_run, region, replicas, version)",
			`dry_run: "maybe" is not true or false`,
			"region: \"mars\" is not one of eu, us",
			`replicas: "many" is not a number`,
			"version: required (string matching ^v?\\d+\\.\\d+\\.\\d+$)",
		}},
		{"not finite or out of range", map[string]any{"version": "1.0.0", "replicas": "NaN"}, nil, []string{`replicas: "NaN" is not a finite number`}},
		{"infinity", map[string]any{"version": "1.0.0", "replicas": "Inf"}, nil, []string{`replicas: "Inf" is not a finite number`}},
		{"minus infinity", map[string]any{"version": "1.0.0", "replicas": "-infinity"}, nil, []string{`replicas: "-infinity" is not a finite number`}},
		{"beyond float64", map[string]any{"version": "1.0.0", "replicas": "1e400"}, nil, []string{`replicas: "1e400" is out of range for a number`}},
		{"pattern", map[string]any{"version": "banana"}, nil, []string{`version: "banana" does not match ^v?\d+\.\d+\.\d+$`}},
		{"wrong JSON types", map[string]any{"version": 1.0, "dry_run": "true", "region": true}, nil, []string{
			"region: got a boolean, want string one of eu, us",
			"version: got a number, want string matching ^v?\\d+\\.\\d+\\.\\d+$",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := deployDef(t)
			got, err := d.Resolve(c.raw)
			if c.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, c.want) {
					t.Errorf("got %#v, want %#v", got, c.want)
				}
				return
			}
			var ie pipelines.InputErrors
			if !errors.As(err, &ie) || !errors.Is(err, pipelines.ErrInvalidInputs) {
				t.Fatalf("err = %v, want InputErrors", err)
			}
			var msgs []string
			for _, e := range ie {
				msgs = append(msgs, e.Error())
			}
			if !reflect.DeepEqual(msgs, c.wantErr) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(msgs, "\n"), strings.Join(c.wantErr, "\n"))
			}
		})
	}
}

func TestCompile(t *testing.T) {
	d := &pipelines.Definition{Name: "p", Inputs: map[string]*pipelines.Input{
		"a": {Type: "strnig"},
		"b": {Pattern: "("},
		"c": {Type: pipelines.TypeNumber, Default: "ten"},
		"d": nil,
	}}
	errs := d.Compile()
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	want := []string{`inputs.a.type: "strnig" is not one of string, number, boolean`, "inputs.b.pattern:", `inputs.c.default: "ten" is not a number`, "inputs.d: empty declaration"}
	if len(msgs) != len(want) {
		t.Fatalf("got %q", msgs)
	}
	for i := range want {
		if !strings.HasPrefix(msgs[i], want[i]) {
			t.Errorf("problem %d = %q, want prefix %q", i, msgs[i], want[i])
		}
	}
}

func TestStringInputs(t *testing.T) {
	got := pipelines.StringInputs(map[string]any{"n": 3.0, "f": 2.5, "b": true, "s": "x"})
	want := map[string]string{"n": "3", "f": "2.5", "b": "true", "s": "x"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestAPIErrorTemporary(t *testing.T) {
	for status, want := range map[int]bool{0: false, 400: false, 404: false, 408: true, 429: true, 500: true, 503: true} {
		e := &pipelines.APIError{Provider: "p", Op: "trigger", StatusCode: status}
		if got := e.Temporary(); got != want {
			t.Errorf("status %d: Temporary = %v, want %v", status, got, want)
		}
	}
	if !(&pipelines.APIError{Err: errors.New("connection reset")}).Temporary() {
		t.Error("a transport error is temporary")
	}
}
