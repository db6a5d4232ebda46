package gitlab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/apiclient"
)

// ProviderType is the provider `type` in gatebot's configuration.
const ProviderType = "gitlab"

// RefProject is the Run.Ref key holding the project's numeric id (or the
// configured path when GitLab did not say), which Status and Cancel need.
const RefProject = "project"

// Option adjusts a Client built by New.
type Option = apiclient.Option

// WithHTTPClient sets the HTTP client (it is copied; set its Timeout).
func WithHTTPClient(hc *http.Client) Option { return apiclient.WithHTTPClient("gitlab", hc) }

// WithLogger sets the logger; nil discards.
func WithLogger(l *slog.Logger) Option { return apiclient.WithLogger(l) }

// WithNow replaces the clock (Retry-After dates), for tests.
func WithNow(now func() time.Time) Option { return apiclient.WithNow("gitlab", now) }

// Client is a GitLab provider. It is safe for concurrent use.
type Client struct {
	cfg Config
	api *apiclient.Client
}

var (
	_ pipelines.Provider = (*Client)(nil)
	_ pipelines.Canceler = (*Client)(nil)
	_ pipelines.Checker  = (*Client)(nil)
)

// New validates cfg and returns a Client.
func New(cfg Config, opts ...Option) (*Client, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("gitlab: config: %w", errors.Join(errs...))
	}
	o, err := apiclient.ApplyOptions(opts)
	if err != nil {
		return nil, err
	}
	api, err := apiclient.New(apiclient.Options{
		Provider:   ProviderType,
		BaseURL:    cfg.BaseURL,
		HTTPClient: o.HTTPClient,
		Logger:     o.Logger,
		Now:        o.Now,
		Authorize: func(r *http.Request) error {
			// The trigger call authenticates with its form's token alone.
			if cfg.Token != "" && !strings.HasSuffix(r.URL.Path, "/trigger/pipeline") {
				r.Header.Set("PRIVATE-TOKEN", cfg.Token.Reveal())
			}
			return nil
		},
		Secrets:    func() []apiclient.Secret { return []apiclient.Secret{cfg.Token, cfg.TriggerToken} },
		ParseError: parseError,
	})
	if err != nil {
		return nil, fmt.Errorf("gitlab: %w", err)
	}
	return &Client{cfg: cfg, api: api}, nil
}

// parseError reads GitLab's {"message": string | object | array} and
// OAuth-style {"error", "error_description"} bodies.
func parseError(body []byte) (code, message string) {
	var e struct {
		Message          json.RawMessage `json:"message"`
		Error            string          `json:"error"`
		ErrorDescription string          `json:"error_description"`
	}
	if json.Unmarshal(body, &e) != nil {
		return "", ""
	}
	if len(e.Message) > 0 {
		return "", flatten(e.Message)
	}
	if e.ErrorDescription != "" {
		return e.Error, e.ErrorDescription
	}
	return "", e.Error
}

// flatten renders {"base":["Reference not found"],"ref":["is empty"]} as
// "base: Reference not found; ref: is empty".
func flatten(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) == nil {
		parts := make([]string, 0, len(list))
		for _, x := range list {
			parts = append(parts, flatten(x))
		}
		return strings.Join(parts, ", ")
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) == nil {
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, k+": "+flatten(obj[k]))
		}
		return strings.Join(parts, "; ")
	}
	return string(raw)
}

type variable struct {
	Key          string `json:"key"`
	Value        string `json:"value"`
	VariableType string `json:"variable_type"`
}

type createRequest struct {
	Ref       string         `json:"ref"`
	Variables []variable     `json:"variables,omitempty"`
	Inputs    map[string]any `json:"inputs,omitempty"`
}

type pipeline struct {
	ID        int64  `json:"id"`
	ProjectID int64  `json:"project_id"`
	Status    string `json:"status"`
	WebURL    string `json:"web_url"`
}

// Trigger creates a pipeline on the target's ref.
//
// GitLab API docs: https://docs.gitlab.com/api/pipelines/#create-a-new-pipeline
// and https://docs.gitlab.com/api/pipeline_triggers/#trigger-a-pipeline-with-a-token
func (c *Client) Trigger(ctx context.Context, req pipelines.Request) (pipelines.Run, error) {
	t, errs := parseTarget(req.Target)
	if len(errs) > 0 {
		return pipelines.Run{}, fmt.Errorf("gitlab: %w", errors.Join(errs...))
	}
	if req.GateID == "" {
		return pipelines.Run{}, errors.New("gitlab: trigger run: empty gate id")
	}
	// Inputs mode sends no pipeline variables at all: many projects
	// forbid them (Minimum role to use pipeline variables), and spec:inputs
	// are not gated by that setting. The gate id then travels as an input,
	// when the pipeline declares one (target.gate_id_input).
	vars := map[string]string{}
	if t.InputsAs == InputsAsVariables {
		vars = pipelines.StringInputs(req.Inputs)
		vars[GateIDVariable] = req.GateID
	}

	var p string
	var body any
	var err error
	if c.cfg.TriggerToken != "" {
		if t.InputsAs == InputsAsInputs {
			return pipelines.Run{}, errors.New("gitlab: trigger run: inputs_as: inputs is not available with trigger_token")
		}
		p, err = apiclient.Path("/api/v4/projects/{id}/trigger/pipeline", t.Project)
		form := url.Values{"token": {c.cfg.TriggerToken.Reveal()}, "ref": {t.Ref}}
		for k, v := range vars {
			form.Set("variables["+k+"]", v)
		}
		body = form
	} else {
		p, err = apiclient.Path("/api/v4/projects/{id}/pipeline", t.Project)
		cr := createRequest{Ref: t.Ref}
		keys := make([]string, 0, len(vars))
		for k := range vars {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			cr.Variables = append(cr.Variables, variable{Key: k, Value: vars[k], VariableType: "env_var"})
		}
		if t.InputsAs == InputsAsInputs {
			cr.Inputs = maps.Clone(req.Inputs)
			if t.GateIDInput != "" {
				if cr.Inputs == nil {
					cr.Inputs = map[string]any{}
				}
				cr.Inputs[t.GateIDInput] = req.GateID
			}
		}
		body = cr
	}
	if err != nil {
		return pipelines.Run{}, fmt.Errorf("gitlab: %w", err)
	}
	var pl pipeline
	if err := c.do(ctx, http.MethodPost, p, body, "trigger run", &pl); err != nil {
		return pipelines.Run{}, explainTriggerError(err, t)
	}
	if pl.ID == 0 {
		return pipelines.Run{}, c.api.Error("trigger run", http.StatusCreated, "", "GitLab answered without a pipeline id")
	}
	project := t.Project
	if pl.ProjectID != 0 {
		project = strconv.FormatInt(pl.ProjectID, 10) // survives project renames
	}
	return toRun(pl, map[string]string{RefProject: project}), nil
}

// explainTriggerError names the project setting behind GitLab's
// "Insufficient permissions to set pipeline variables": the project's
// Minimum role to use pipeline variables
// (ci_pipeline_variables_minimum_override_role; no_one_allowed by default
// for new gitlab.com projects since 17.7) is above the token's role.
//
// GitLab docs: https://docs.gitlab.com/ci/variables/#restrict-pipeline-variables
func explainTriggerError(err error, t target) error {
	var ae *pipelines.APIError
	if !errors.As(err, &ae) || !strings.Contains(ae.Message, "Insufficient permissions to set pipeline variables") {
		return err
	}
	return fmt.Errorf("gitlab: project %s refuses pipeline variables (Settings > CI/CD > Variables > Minimum role to use pipeline variables, "+
		"ci_pipeline_variables_minimum_override_role): allow the token's role, or declare spec:inputs and set target.inputs_as: inputs: %w", t.Project, err)
}

func (c *Client) do(ctx context.Context, method, ref string, body any, op string, v any) error {
	req, err := c.api.NewRequest(ctx, method, ref, body)
	if err != nil {
		return err
	}
	_, err = c.api.Do(req, op, v)
	return err
}

// Status fetches the pipeline.
//
// GitLab API docs: https://docs.gitlab.com/api/pipelines/#get-a-single-pipeline
func (c *Client) Status(ctx context.Context, run pipelines.Run) (pipelines.Run, error) {
	p, err := pipelinePath(run, "/api/v4/projects/{id}/pipelines/{pipeline_id}")
	if err != nil {
		return run, err
	}
	var pl pipeline
	if err := c.do(ctx, http.MethodGet, p, nil, "run status", &pl); err != nil {
		return run, err
	}
	if pl.Status == "" {
		return run, c.api.Error("run status", http.StatusOK, "", "GitLab answered without a pipeline status")
	}
	return toRun(pl, run.Ref), nil
}

// Cancel cancels the pipeline's jobs.
//
// GitLab API docs: https://docs.gitlab.com/api/pipelines/#cancel-a-pipelines-jobs
func (c *Client) Cancel(ctx context.Context, run pipelines.Run) error {
	if c.cfg.Token == "" {
		return fmt.Errorf("gitlab: cancelling needs token, not only trigger_token: %w", pipelines.ErrNotSupported)
	}
	p, err := pipelinePath(run, "/api/v4/projects/{id}/pipelines/{pipeline_id}/cancel")
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, p, nil, "cancel run", nil)
}

func pipelinePath(run pipelines.Run, tmpl string) (string, error) {
	project := run.Ref[RefProject]
	if project == "" || run.ID == "" {
		return "", fmt.Errorf("gitlab: run %q: ref lacks the project or the run its id", run.ID)
	}
	p, err := apiclient.Path(tmpl, project, run.ID)
	if err != nil {
		return "", fmt.Errorf("gitlab: %w", err)
	}
	return p, nil
}

func toRun(pl pipeline, ref map[string]string) pipelines.Run {
	return pipelines.Run{
		ID:     strconv.FormatInt(pl.ID, 10),
		URL:    pl.WebURL,
		Status: MapStatus(pl.Status),
		Detail: "gitlab: " + pl.Status,
		Ref:    ref,
	}
}

// MapStatus maps a pipeline status onto gatebot's states (providers.md §7).
// manual counts as running: the pipeline waits for a person, as a gate
// would. Unknown values count as running until GitLab reports an end.
func MapStatus(status string) pipelines.Status {
	st, _ := mapKnown(status)
	return st
}

// mapKnown maps the documented pipeline statuses; known is false for
// anything else, which counts as running.
func mapKnown(status string) (pipelines.Status, bool) {
	switch status {
	case "created", "waiting_for_resource", "preparing", "pending", "scheduled":
		return pipelines.StatusQueued, true
	case "running", "manual", "canceling":
		return pipelines.StatusRunning, true
	case "success":
		return pipelines.StatusSucceeded, true
	case "failed":
		return pipelines.StatusFailed, true
	case "canceled", "skipped":
		return pipelines.StatusCancelled, true
	default:
		return pipelines.StatusRunning, false
	}
}
