package githubactions

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

// DefaultBaseURL is github.com's REST API root. GitHub Enterprise Server
// uses https://HOST/api/v3.
const DefaultBaseURL = "https://api.github.com"

// DefaultGateIDInput is the conventional name of the workflow input that
// carries the gate id. It is sent only when a target names it in
// gate_id_input (the workflow must declare it: GitHub refuses undeclared
// inputs with 422 "Unexpected inputs provided").
const DefaultGateIDInput = "gatebot_gate_id"

// MaxInputs is the number of inputs a workflow_dispatch accepts (25 since
// 2025; older servers allow 10).
const MaxInputs = 25

// Config is a github_actions provider section.
//
//	providers:
//	  gh: {type: github_actions, token: ${GITHUB_TOKEN}}
//	  ghes: {type: github_actions, base_url: https://github.example.com/api/v3, token: ${GHES_TOKEN}, return_run_details: false}
type Config struct {
	// BaseURL is the REST API root (default https://api.github.com).
	BaseURL string `yaml:"base_url"`
	// Token is a fine-grained PAT or GitHub App installation token with
	// Actions: write on the repositories.
	Token apiclient.Secret `yaml:"token"`
	// ReturnRunDetails asks the dispatch to answer with the run id (default
	// true). Leave it on: the client falls back by itself when the server
	// refuses the field.
	ReturnRunDetails *bool `yaml:"return_run_details"`
}

// Validate reports every problem with the configuration.
func (c Config) Validate() []error {
	var errs []error
	if c.BaseURL != "" {
		if _, err := apiclient.ParseBaseURL(c.BaseURL); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Token == "" {
		errs = append(errs, errors.New("token is required (a token with Actions: write)"))
	}
	return errs
}

func (c Config) baseURL() string {
	if c.BaseURL == "" {
		return DefaultBaseURL
	}
	return c.BaseURL
}

func (c Config) returnRunDetails() bool { return c.ReturnRunDetails == nil || *c.ReturnRunDetails }

// target is a pipeline's target section:
//
//	target: {owner: acme, repo: api, workflow: deploy.yml, ref: main}
type target struct {
	Owner, Repo, Workflow, Ref string
	// GateIDInput is the input carrying the gate id; "" sends none.
	GateIDInput string
}

var targetKeys = []string{"owner", "repo", "workflow", "ref", "gate_id_input"}

// inputName is what GitHub accepts as a workflow_dispatch input id.
var inputName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

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
	req("owner", &t.Owner)
	req("repo", &t.Repo)
	req("workflow", &t.Workflow)
	req("ref", &t.Ref)
	// The gate id input is sent only when the target says the workflow
	// declares it: GitHub refuses undeclared inputs with 422.
	if v, ok, err := apiclient.Target(m).Lookup("gate_id_input"); err != nil {
		errs = append(errs, err)
	} else if ok {
		t.GateIDInput = v
		if v != "" && !inputName.MatchString(v) {
			errs = append(errs, fmt.Errorf("target.gate_id_input: %q is not a valid input name", v))
		}
	}
	return t, errs
}

// CheckPipeline validates a pipeline's target and inputs against what a
// workflow_dispatch accepts.
func (c *Client) CheckPipeline(def pipelines.Definition) []error {
	t, errs := parseTarget(def.Target)
	n := len(def.Inputs)
	if t.GateIDInput != "" {
		n++
		if _, clash := def.Inputs[t.GateIDInput]; clash {
			errs = append(errs, fmt.Errorf("inputs.%s: reserved for the gate id (see target.gate_id_input)", t.GateIDInput))
		}
	} else if !c.cfg.returnRunDetails() {
		errs = append(errs, errors.New("target.gate_id_input: must not be empty when return_run_details is off, or gatebot cannot find the run it started"))
	}
	if n > MaxInputs {
		errs = append(errs, fmt.Errorf("inputs: %d inputs (with the gate id) but workflow_dispatch accepts at most %d", n, MaxInputs))
	}
	for _, name := range def.InputNames() {
		if !inputName.MatchString(name) {
			errs = append(errs, fmt.Errorf("inputs.%s: not a valid workflow_dispatch input name", name))
		}
	}
	return errs
}
