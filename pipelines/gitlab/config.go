package gitlab

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/apiclient"
)

// GateIDVariable is the CI/CD variable that carries the gate id.
const GateIDVariable = "GATEBOT_GATE_ID"

// Config is a gitlab provider section.
//
//	providers:
//	  gl:  {type: gitlab, base_url: https://gitlab.com, token: ${GITLAB_TOKEN}}
//	  glt: {type: gitlab, base_url: https://gitlab.example.com, trigger_token: ${GITLAB_TRIGGER_TOKEN}, token: ${GITLAB_READ_TOKEN}}
type Config struct {
	// BaseURL is the instance root, e.g. https://gitlab.com (gatebot
	// appends /api/v4/…).
	BaseURL string `yaml:"base_url"`
	// Token is an access token with the api scope (read_api is enough
	// when trigger_token starts the pipelines and nothing is cancelled).
	Token apiclient.Secret `yaml:"token"`
	// TriggerToken, when set, starts pipelines through the trigger API. A
	// trigger token belongs to one project.
	TriggerToken apiclient.Secret `yaml:"trigger_token"`
}

// Validate reports every problem with the configuration.
func (c Config) Validate() []error {
	var errs []error
	if _, err := apiclient.ParseBaseURL(c.BaseURL); err != nil {
		errs = append(errs, err)
	}
	if c.Token == "" && c.TriggerToken == "" {
		errs = append(errs, errors.New("token or trigger_token is required"))
	}
	return errs
}

// Where pipeline inputs go.
const (
	InputsAsVariables = "variables" // CI/CD variables (default)
	InputsAsInputs    = "inputs"    // spec:inputs, typed (recent GitLab)
)

// target is a pipeline's target section:
//
//	target: {project: group/sub/api, ref: main, inputs_as: variables}
type target struct {
	Project  string // numeric id or full path
	Ref      string
	InputsAs string
	// GateIDInput, in inputs mode, is the spec:inputs entry that carries
	// the gate id; "" sends the gate id nowhere (inputs mode sends no
	// pipeline variables at all).
	GateIDInput string
}

var targetKeys = []string{"project", "ref", "inputs_as", "gate_id_input"}

var (
	variableKey = regexp.MustCompile(`^[A-Za-z0-9_]{1,255}$`)
	inputKey    = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)
)

func parseTarget(m map[string]any) (target, []error) {
	var t target
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(targetKeys, k) {
			errs = append(errs, fmt.Errorf("target.%s: unknown key (known: %s)", k, strings.Join(targetKeys, ", ")))
		}
	}
	req := func(key string, dst *string) {
		v, ok, err := apiclient.Target(m).Lookup(key)
		switch {
		case err != nil:
			errs = append(errs, err)
		case !ok || v == "":
			errs = append(errs, fmt.Errorf("target.%s is required", key))
		default:
			*dst = v
		}
	}
	req("project", &t.Project)
	req("ref", &t.Ref)
	t.InputsAs = InputsAsVariables
	if v, ok, err := apiclient.Target(m).Lookup("inputs_as"); err != nil {
		errs = append(errs, err)
	} else if ok {
		switch v {
		case InputsAsVariables, InputsAsInputs:
			t.InputsAs = v
		default:
			errs = append(errs, fmt.Errorf("target.inputs_as: %q is not one of variables, inputs", v))
		}
	}
	if v, ok, err := apiclient.Target(m).Lookup("gate_id_input"); err != nil {
		errs = append(errs, err)
	} else if ok && v != "" {
		t.GateIDInput = v
		switch {
		case !inputKey.MatchString(v):
			errs = append(errs, fmt.Errorf("target.gate_id_input: %q is not a valid spec:inputs name", v))
		case t.InputsAs != InputsAsInputs:
			errs = append(errs, errors.New("target.gate_id_input: only with inputs_as: inputs (in variables mode the gate id is the "+GateIDVariable+" variable)"))
		}
	}
	return t, errs
}

// CheckPipeline validates a pipeline's target and input names against
// what GitLab accepts.
func (c *Client) CheckPipeline(def pipelines.Definition) []error {
	t, errs := parseTarget(def.Target)
	if t.InputsAs == InputsAsInputs && c.cfg.TriggerToken != "" {
		errs = append(errs, errors.New("target.inputs_as: inputs needs the create-pipeline API; this provider uses trigger_token, which sends variables"))
	}
	for _, name := range def.InputNames() {
		switch {
		case name == GateIDVariable && t.InputsAs != InputsAsInputs, name == t.GateIDInput:
			errs = append(errs, fmt.Errorf("inputs.%s: reserved for the gate id", name))
		case t.InputsAs == InputsAsInputs && !inputKey.MatchString(name):
			errs = append(errs, fmt.Errorf("inputs.%s: not a valid spec:inputs name", name))
		case t.InputsAs != InputsAsInputs && !variableKey.MatchString(name):
			errs = append(errs, fmt.Errorf("inputs.%s: a CI/CD variable key takes only letters, digits and _", name))
		}
	}
	return errs
}
