package jenkins

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

// DefaultGateIDParameter is the build parameter carrying the gate id.
const DefaultGateIDParameter = "GATE_ID"

// Config is a jenkins provider section.
//
//	providers:
//	  ci: {type: jenkins, base_url: https://ci.example.com, user: gatebot, api_token: ${JENKINS_API_TOKEN}}
type Config struct {
	// BaseURL is Jenkins' root URL, with its context path if any
	// (https://ci.example.com/jenkins).
	BaseURL string `yaml:"base_url"`
	// User and APIToken authenticate over HTTP Basic.
	User     string           `yaml:"user"`
	APIToken apiclient.Secret `yaml:"api_token"`
	// UnstableIsFailure reports UNSTABLE builds as failed (default true);
	// false reports them as succeeded.
	UnstableIsFailure *bool `yaml:"unstable_is_failure"`
}

// Validate reports every problem with the configuration.
func (c Config) Validate() []error {
	var errs []error
	if _, err := apiclient.ParseBaseURL(c.BaseURL); err != nil {
		errs = append(errs, err)
	}
	if c.User == "" {
		errs = append(errs, errors.New("user is required"))
	}
	if c.APIToken == "" {
		errs = append(errs, errors.New("api_token is required (a user API token, not a password)"))
	}
	return errs
}

func (c Config) unstableIsFailure() bool { return c.UnstableIsFailure == nil || *c.UnstableIsFailure }

// target is a pipeline's target section:
//
//	target: {job: folder/deploy-api}
type target struct {
	Job         []string // folder path segments
	GateIDParam string   // "" sends none
}

var targetKeys = []string{"job", "gate_id_parameter"}

var paramName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

func parseTarget(m map[string]any) (target, []error) {
	var t target
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(targetKeys, k) {
			errs = append(errs, fmt.Errorf("target.%s: unknown key (known: %s)", k, strings.Join(targetKeys, ", ")))
		}
	}
	job, err := targetString(m, "job")
	switch {
	case err != nil:
		errs = append(errs, err)
	case job == "":
		errs = append(errs, errors.New("target.job is required (a job name, or folder/job)"))
	default:
		t.Job = strings.Split(strings.Trim(job, "/"), "/")
		for _, seg := range t.Job {
			if seg == "" || seg == "." || seg == ".." {
				errs = append(errs, fmt.Errorf("target.job: %q has an empty, . or .. segment", job))
				break
			}
		}
	}
	t.GateIDParam = DefaultGateIDParameter
	if _, ok := m["gate_id_parameter"]; ok {
		v, err := targetString(m, "gate_id_parameter")
		if err != nil {
			errs = append(errs, err)
		}
		t.GateIDParam = v
		if v != "" && !paramName.MatchString(v) {
			errs = append(errs, fmt.Errorf("target.gate_id_parameter: %q is not a valid parameter name", v))
		}
	}
	return t, errs
}

func targetString(m map[string]any, key string) (string, error) {
	v, ok := m[key]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("target.%s: want a string, got %T", key, v)
	}
	return s, nil
}

// CheckPipeline validates a pipeline's target and input names.
func (c *Client) CheckPipeline(def pipelines.Definition) []error {
	t, errs := parseTarget(def.Target)
	for _, name := range def.InputNames() {
		if t.GateIDParam != "" && name == t.GateIDParam {
			errs = append(errs, fmt.Errorf("inputs.%s: reserved for the gate id (see target.gate_id_parameter)", name))
		}
		if !paramName.MatchString(name) {
			errs = append(errs, fmt.Errorf("inputs.%s: not a valid Jenkins parameter name", name))
		}
	}
	return errs
}
