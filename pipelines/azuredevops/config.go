package azuredevops

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

// DefaultBaseURL is Azure DevOps Services' root. Azure DevOps Server uses
// its collection's host, e.g. https://ado.example.com/tfs with organization
// naming the collection.
const DefaultBaseURL = "https://dev.azure.com"

// DefaultGateIDVariable is the conventional name of a queue-time variable
// carrying the gate id. No gate variable is sent unless a target names one
// in gate_id_variable: where the project setting "Limit variables that can
// be set at queue time" is on, Azure DevOps refuses (400) every variable
// the pipeline does not mark "Settable at queue time".
const DefaultGateIDVariable = "GATEBOT_GATE_ID"

// Config is an azure_devops provider section.
//
//	providers:
//	  ado: {type: azure_devops, organization: acme, project: Platform, token: ${AZURE_DEVOPS_PAT}}
type Config struct {
	// BaseURL is the service root (default https://dev.azure.com).
	BaseURL string `yaml:"base_url"`
	// Organization and Project name where the pipelines live.
	Organization string `yaml:"organization"`
	Project      string `yaml:"project"`
	// Token is a PAT with the Build (Read & execute) scope.
	Token apiclient.Secret `yaml:"token"`
}

// Validate reports every problem with the configuration.
func (c Config) Validate() []error {
	var errs []error
	if c.BaseURL != "" {
		if _, err := apiclient.ParseBaseURL(c.BaseURL); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Organization == "" {
		errs = append(errs, errors.New("organization is required"))
	}
	if c.Project == "" {
		errs = append(errs, errors.New("project is required"))
	}
	if c.Token == "" {
		errs = append(errs, errors.New("token is required (a PAT with Build: Read & execute)"))
	}
	return errs
}

func (c Config) baseURL() string {
	if c.BaseURL == "" {
		return DefaultBaseURL
	}
	return c.BaseURL
}

// Where pipeline inputs go.
const (
	InputsAsTemplateParameters = "template_parameters" // runtime parameters (default)
	InputsAsVariables          = "variables"           // queue-time variables
)

// target is a pipeline's target section:
//
//	target: {pipeline_id: 42, ref: refs/heads/main}
type target struct {
	PipelineID     string
	Ref            string // full ref name
	InputsAs       string
	GateIDVariable string // "" (the default) sends none
}

var targetKeys = []string{"pipeline_id", "ref", "inputs_as", "gate_id_variable"}

var (
	numeric = regexp.MustCompile(`^[1-9][0-9]{0,9}$`)
	varName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,255}$`)
)

func parseTarget(m map[string]any) (target, []error) {
	var t target
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(targetKeys, k) {
			errs = append(errs, fmt.Errorf("target.%s: unknown key (known: %s)", k, strings.Join(targetKeys, ", ")))
		}
	}
	switch v, ok, err := apiclient.Target(m).Lookup("pipeline_id"); {
	case err != nil:
		errs = append(errs, err)
	case !ok || v == "":
		errs = append(errs, errors.New("target.pipeline_id is required (the pipeline's numeric id)"))
	case !numeric.MatchString(v):
		errs = append(errs, fmt.Errorf("target.pipeline_id: %q is not a pipeline id", v))
	default:
		t.PipelineID = v
	}
	switch v, ok, err := apiclient.Target(m).Lookup("ref"); {
	case err != nil:
		errs = append(errs, err)
	case !ok || v == "":
		errs = append(errs, errors.New("target.ref is required (e.g. refs/heads/main)"))
	case strings.HasPrefix(v, "refs/"):
		t.Ref = v
	default:
		t.Ref = "refs/heads/" + v // a bare branch name, as in the UI
	}
	t.InputsAs = InputsAsTemplateParameters
	if v, ok, err := apiclient.Target(m).Lookup("inputs_as"); err != nil {
		errs = append(errs, err)
	} else if ok {
		switch v {
		case InputsAsTemplateParameters, InputsAsVariables:
			t.InputsAs = v
		default:
			errs = append(errs, fmt.Errorf("target.inputs_as: %q is not one of template_parameters, variables", v))
		}
	}
	if v, ok, err := apiclient.Target(m).Lookup("gate_id_variable"); err != nil {
		errs = append(errs, err)
	} else if ok {
		t.GateIDVariable = v
		if v != "" && !varName.MatchString(v) {
			errs = append(errs, fmt.Errorf("target.gate_id_variable: %q is not a valid variable name", v))
		}
	}
	return t, errs
}

// CheckPipeline validates a pipeline's target and input names.
func (c *Client) CheckPipeline(def pipelines.Definition) []error {
	t, errs := parseTarget(def.Target)
	for _, name := range def.InputNames() {
		if t.InputsAs == InputsAsVariables && name == t.GateIDVariable {
			errs = append(errs, fmt.Errorf("inputs.%s: reserved for the gate id (see target.gate_id_variable)", name))
		}
		if !varName.MatchString(name) {
			errs = append(errs, fmt.Errorf("inputs.%s: not a valid parameter or variable name", name))
		}
	}
	return errs
}
