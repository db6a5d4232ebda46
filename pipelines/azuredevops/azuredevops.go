package azuredevops

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/apiclient"
)

// ProviderType is the provider `type` in gatebot's configuration.
const ProviderType = "azure_devops"

// APIVersion is the REST API version every call pins.
const APIVersion = "7.1"

// RefPipelineID is the Run.Ref key holding the pipeline id Status needs.
const RefPipelineID = "pipeline_id"

// Option adjusts a Client built by New.
type Option = apiclient.Option

// WithHTTPClient sets the HTTP client (it is copied; set its Timeout).
func WithHTTPClient(hc *http.Client) Option { return apiclient.WithHTTPClient("azuredevops", hc) }

// WithLogger sets the logger; nil discards.
func WithLogger(l *slog.Logger) Option { return apiclient.WithLogger(l) }

// WithNow replaces the clock (Retry-After dates), for tests.
func WithNow(now func() time.Time) Option { return apiclient.WithNow("azuredevops", now) }

// Client is an Azure DevOps provider. It is safe for concurrent use.
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
		return nil, fmt.Errorf("azuredevops: config: %w", errors.Join(errs...))
	}
	o, err := apiclient.ApplyOptions(opts)
	if err != nil {
		return nil, err
	}
	basic := apiclient.Secret("Basic " + base64.StdEncoding.EncodeToString([]byte(":"+cfg.Token.Reveal())))
	api, err := apiclient.New(apiclient.Options{
		Provider:   ProviderType,
		BaseURL:    cfg.baseURL(),
		HTTPClient: o.HTTPClient,
		Logger:     o.Logger,
		Now:        o.Now,
		Authorize: func(r *http.Request) error {
			r.Header.Set("Authorization", basic.Reveal())
			return nil
		},
		// The encoded form is a secret too: it decodes to the PAT.
		Secrets:    func() []apiclient.Secret { return []apiclient.Secret{cfg.Token, basic[len("Basic "):]} },
		ParseError: parseError,
	})
	if err != nil {
		return nil, fmt.Errorf("azuredevops: %w", err)
	}
	return &Client{cfg: cfg, api: api}, nil
}

// parseError reads Azure DevOps' {"message","typeKey","errorCode",...}.
func parseError(body []byte) (code, message string) {
	var e struct {
		Message string `json:"message"`
		TypeKey string `json:"typeKey"`
	}
	if json.Unmarshal(body, &e) != nil {
		return "", ""
	}
	return e.TypeKey, e.Message
}

type variable struct {
	Value    string `json:"value"`
	IsSecret bool   `json:"isSecret"`
}

type runRequest struct {
	Resources struct {
		Repositories struct {
			Self struct {
				RefName string `json:"refName"`
			} `json:"self"`
		} `json:"repositories"`
	} `json:"resources"`
	TemplateParameters map[string]string   `json:"templateParameters,omitempty"`
	Variables          map[string]variable `json:"variables,omitempty"`
}

type run struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	State  string `json:"state"`
	Result string `json:"result"`
	Links  struct {
		Web struct {
			Href string `json:"href"`
		} `json:"web"`
	} `json:"_links"`
}

// Trigger queues a run of the target pipeline on the target ref.
//
// Azure DevOps REST API docs: https://learn.microsoft.com/rest/api/azure/devops/pipelines/runs/run-pipeline?view=azure-devops-rest-7.1
func (c *Client) Trigger(ctx context.Context, req pipelines.Request) (pipelines.Run, error) {
	t, errs := parseTarget(req.Target)
	if len(errs) > 0 {
		return pipelines.Run{}, fmt.Errorf("azuredevops: %w", errors.Join(errs...))
	}
	if req.GateID == "" {
		return pipelines.Run{}, errors.New("azuredevops: trigger run: empty gate id")
	}
	var body runRequest
	body.Resources.Repositories.Self.RefName = t.Ref
	inputs := pipelines.StringInputs(req.Inputs)
	vars := map[string]variable{}
	if t.InputsAs == InputsAsVariables {
		for k, v := range inputs {
			vars[k] = variable{Value: v}
		}
	} else if len(inputs) > 0 {
		body.TemplateParameters = inputs
	}
	if t.GateIDVariable != "" {
		vars[t.GateIDVariable] = variable{Value: req.GateID}
	}
	if len(vars) > 0 {
		body.Variables = vars
	}
	p, err := c.path("/{organization}/{project}/_apis/pipelines/{pipelineId}/runs", t.PipelineID)
	if err != nil {
		return pipelines.Run{}, err
	}
	var r run
	if err := c.do(ctx, http.MethodPost, p, body, "trigger run", &r); err != nil {
		return pipelines.Run{}, explainTriggerError(err)
	}
	if r.ID == 0 {
		return pipelines.Run{}, c.api.Error("trigger run", http.StatusOK, "", "Azure DevOps answered without a run id")
	}
	return toRun(r, map[string]string{RefPipelineID: t.PipelineID}), nil
}

// explainTriggerError names the settings behind Azure DevOps' 400 "You
// can't set the following variables (…)": the variable is not marked
// "Settable at queue time" in the pipeline, and the project (or
// organization) setting "Limit variables that can be set at queue time" is
// on.
//
// Azure DevOps docs: https://learn.microsoft.com/azure/devops/pipelines/process/set-variables-scripts
// and …/pipelines/security/inputs (Limit variables that can be set at queue time).
func explainTriggerError(err error) error {
	var ae *pipelines.APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest || !strings.Contains(ae.Message, "You can't set the following variables") {
		return err
	}
	return fmt.Errorf("azuredevops: the pipeline refuses a queue-time variable gatebot sent: mark it \"Settable at queue time\" on the pipeline's Variables tab, "+
		"or turn off \"Limit variables that can be set at queue time\" (Project settings > Pipelines > Settings), or drop it "+
		"(target.gate_id_variable unset, inputs_as: template_parameters): %w", err)
}

func (c *Client) path(tmpl string, params ...string) (string, error) {
	p, err := apiclient.Path(tmpl, append([]string{c.cfg.Organization, c.cfg.Project}, params...)...)
	if err != nil {
		return "", fmt.Errorf("azuredevops: %w", err)
	}
	return p + "?api-version=" + APIVersion, nil
}

func (c *Client) do(ctx context.Context, method, ref string, body any, op string, v any) error {
	req, err := c.api.NewRequest(ctx, method, ref, body)
	if err != nil {
		return err
	}
	resp, err := c.api.Do(req, op, v)
	if resp != nil && resp.StatusCode == http.StatusNonAuthoritativeInfo {
		// An unknown or expired PAT is redirected to a sign-in page that
		// the service then serves as 203.
		return c.api.Error(op, resp.StatusCode, "", "authentication failed (Azure DevOps answered with a sign-in page): check the token")
	}
	return err
}

// Status fetches the run.
//
// Azure DevOps REST API docs: https://learn.microsoft.com/rest/api/azure/devops/pipelines/runs/get?view=azure-devops-rest-7.1
func (c *Client) Status(ctx context.Context, pr pipelines.Run) (pipelines.Run, error) {
	pid := pr.Ref[RefPipelineID]
	if pid == "" || pr.ID == "" {
		return pr, fmt.Errorf("azuredevops: run %q: ref lacks the pipeline id or the run its id", pr.ID)
	}
	p, err := c.path("/{organization}/{project}/_apis/pipelines/{pipelineId}/runs/{runId}", pid, pr.ID)
	if err != nil {
		return pr, err
	}
	var r run
	if err := c.do(ctx, http.MethodGet, p, nil, "run status", &r); err != nil {
		return pr, err
	}
	if r.State == "" {
		return pr, c.api.Error("run status", http.StatusOK, "", "Azure DevOps answered without a run state")
	}
	return toRun(r, pr.Ref), nil
}

// Cancel asks the Builds API to cancel the run's build.
//
// Azure DevOps REST API docs: https://learn.microsoft.com/rest/api/azure/devops/build/builds/update-build?view=azure-devops-rest-7.1
func (c *Client) Cancel(ctx context.Context, pr pipelines.Run) error {
	if pr.ID == "" {
		return errors.New("azuredevops: cancel run: the run has no id")
	}
	p, err := c.path("/{organization}/{project}/_apis/build/builds/{buildId}", pr.ID)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPatch, p, map[string]string{"status": "cancelling"}, "cancel run", nil)
}

func toRun(r run, ref map[string]string) pipelines.Run {
	detail := "azure devops: " + r.State
	if r.Result != "" {
		detail += " (" + r.Result + ")"
	}
	return pipelines.Run{
		ID:     strconv.FormatInt(r.ID, 10),
		URL:    r.Links.Web.Href,
		Status: MapStatus(r.State, r.Result),
		Detail: detail,
		Ref:    ref,
	}
}

// MapStatus maps a run's state and result onto gatebot's states
// (providers.md §8). Environment approvals and runs waiting for an agent
// are inProgress, so running.
func MapStatus(state, result string) pipelines.Status {
	st, _ := mapKnown(state, result)
	return st
}

// mapKnown maps the documented RunState (unknown, inProgress, canceling,
// completed) and RunResult (unknown, succeeded, failed, canceled) values;
// known is false for others (an unknown state counts as running, an
// unknown result of a completed run as failed).
func mapKnown(state, result string) (pipelines.Status, bool) {
	switch state {
	case "inProgress", "canceling", "unknown":
		return pipelines.StatusRunning, true
	case "completed":
	default:
		return pipelines.StatusRunning, false
	}
	switch result {
	case "succeeded":
		return pipelines.StatusSucceeded, true
	case "failed", "unknown":
		return pipelines.StatusFailed, true
	case "canceled":
		return pipelines.StatusCancelled, true
	default:
		return pipelines.StatusFailed, false
	}
}
