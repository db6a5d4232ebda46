package jenkins

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/apiclient"
)

// ProviderType is the provider `type` in gatebot's configuration.
const ProviderType = "jenkins"

// Keys of Run.Ref.
const (
	RefJob         = "job"      // folder path, "a/b"
	RefQueueID     = "queue_id" // queue item number
	RefBuild       = "build"    // build number, once known
	RefGateID      = "gate_id"  // for finding the build when the queue item expired
	RefGateIDParam = "gate_id_param"
)

// lookupDepth is how many of a job's latest builds Trigger and Status
// search for a gate's build.
const lookupDepth = 50

// ErrRunNotFound reports a run whose queue item expired before its build
// was seen, and whose build could not be found by gate id.
var ErrRunNotFound = fmt.Errorf("jenkins: build not found: %w", pipelines.ErrRunLost)

// Option adjusts a Client built by New.
type Option = apiclient.Option

// WithHTTPClient sets the HTTP client (it is copied; set its Timeout).
func WithHTTPClient(hc *http.Client) Option { return apiclient.WithHTTPClient("jenkins", hc) }

// WithLogger sets the logger; nil discards.
func WithLogger(l *slog.Logger) Option { return apiclient.WithLogger(l) }

// WithNow replaces the clock (Retry-After dates), for tests.
func WithNow(now func() time.Time) Option { return apiclient.WithNow("jenkins", now) }

// Client is a Jenkins provider. It is safe for concurrent use.
type Client struct {
	cfg  Config
	api  *apiclient.Client
	log  *slog.Logger
	now  func() time.Time
	base string // BaseURL without its trailing slash, for job page links

	mu     sync.Mutex
	params map[string]paramCheck // job path → does it define the gate parameter
}

// paramCheck is one cached answer to "does this job define parameter p".
type paramCheck struct {
	param   string
	defined bool
	at      time.Time
}

var (
	_ pipelines.Provider = (*Client)(nil)
	_ pipelines.Canceler = (*Client)(nil)
	_ pipelines.Checker  = (*Client)(nil)
)

// New validates cfg and returns a Client.
func New(cfg Config, opts ...Option) (*Client, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("jenkins: config: %w", errors.Join(errs...))
	}
	o, err := apiclient.ApplyOptions(opts)
	if err != nil {
		return nil, err
	}
	// Jenkins answers stop and cancelItem with redirects to pages gatebot
	// does not need, often to its configured root URL rather than
	// base_url; the redirect itself says the POST was accepted.
	hc := &http.Client{Timeout: apiclient.DefaultTimeout}
	if o.HTTPClient != nil {
		cp := *o.HTTPClient
		hc = &cp
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	basic := apiclient.Secret(base64.StdEncoding.EncodeToString([]byte(cfg.User + ":" + cfg.APIToken.Reveal())))
	api, err := apiclient.New(apiclient.Options{
		Provider:   ProviderType,
		BaseURL:    cfg.BaseURL,
		HTTPClient: hc,
		Logger:     o.Logger,
		Now:        o.Now,
		Authorize: func(r *http.Request) error {
			r.SetBasicAuth(cfg.User, cfg.APIToken.Reveal())
			return nil
		},
		// The encoded credentials are a secret too: they decode to the token.
		Secrets: func() []apiclient.Secret { return []apiclient.Secret{cfg.APIToken, basic} },
	})
	if err != nil {
		return nil, fmt.Errorf("jenkins: %w", err)
	}
	return &Client{cfg: cfg, api: api, log: o.Logger.With("provider", ProviderType), now: o.Now,
		base: strings.TrimRight(cfg.BaseURL, "/"), params: map[string]paramCheck{}}, nil
}

// jobPath renders "/job/a/job/b" + suffix with every name escaped.
func jobPath(job []string, suffix string, params ...string) (string, error) {
	tmpl := strings.Repeat("/job/{name}", len(job)) + suffix
	p, err := apiclient.Path(tmpl, append(append([]string(nil), job...), params...)...)
	if err != nil {
		return "", fmt.Errorf("jenkins: %w", err)
	}
	return p, nil
}

type build struct {
	Number   int64  `json:"number"`
	URL      string `json:"url"`
	Building bool   `json:"building"`
	Result   string `json:"result"`
	Actions  []struct {
		Parameters []struct {
			Name  string `json:"name"`
			Value any    `json:"value"`
		} `json:"parameters"`
	} `json:"actions"`
}

func (b build) param(name string) (string, bool) {
	for _, a := range b.Actions {
		for _, p := range a.Parameters {
			if p.Name == name {
				s, ok := p.Value.(string)
				return s, ok
			}
		}
	}
	return "", false
}

type queueItem struct {
	ID         int64  `json:"id"`
	Why        string `json:"why"`
	Cancelled  bool   `json:"cancelled"`
	Executable *struct {
		Number int64  `json:"number"`
		URL    string `json:"url"`
	} `json:"executable"`
}

var queueLocation = regexp.MustCompile(`/queue/item/([0-9]+)/?$`)

// Trigger queues a build with the inputs and the gate id as parameters,
// unless one of the job's latest builds already carries the gate id.
//
// Jenkins docs: https://www.jenkins.io/doc/book/using/remote-access-api/
// (POST /job/NAME/buildWithParameters → 201, Location: /queue/item/N/).
func (c *Client) Trigger(ctx context.Context, req pipelines.Request) (pipelines.Run, error) {
	t, errs := parseTarget(req.Target)
	if len(errs) > 0 {
		return pipelines.Run{}, fmt.Errorf("jenkins: %w", errors.Join(errs...))
	}
	if req.GateID == "" {
		return pipelines.Run{}, errors.New("jenkins: trigger run: empty gate id")
	}
	ref := map[string]string{RefJob: strings.Join(t.Job, "/"), RefGateID: req.GateID, RefGateIDParam: t.GateIDParam}
	if t.GateIDParam != "" {
		b, ok, err := c.findBuild(ctx, t.Job, t.GateIDParam, req.GateID)
		if err != nil {
			return pipelines.Run{}, err
		}
		if ok {
			c.log.InfoContext(ctx, "build for this gate already exists; not queueing again", "gate_id", req.GateID, "build", b.Number)
			ref[RefBuild] = strconv.FormatInt(b.Number, 10)
			return c.toRun(b, ref), nil
		}
	}
	form := url.Values{}
	for k, v := range pipelines.StringInputs(req.Inputs) {
		form.Set(k, v)
	}
	if t.GateIDParam != "" {
		form.Set(t.GateIDParam, req.GateID)
	}
	p, err := jobPath(t.Job, "/buildWithParameters")
	if err != nil {
		return pipelines.Run{}, err
	}
	resp, err := c.do(ctx, http.MethodPost, p, form, "trigger run", nil)
	if err != nil {
		return pipelines.Run{}, err
	}
	m := queueLocation.FindStringSubmatch(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusCreated || m == nil {
		return pipelines.Run{}, c.api.Error("trigger run", resp.StatusCode, "",
			"Jenkins accepted the request but named no queue item (is the job parameterized, and Jenkins 2.x?)")
	}
	ref[RefQueueID] = m[1]
	return pipelines.Run{ID: "queue-" + m[1], URL: c.jobURL(t.Job), Status: pipelines.StatusQueued, Detail: "jenkins: queued", Ref: ref}, nil
}

func (c *Client) do(ctx context.Context, method, ref string, body any, op string, v any) (*apiclient.Response, error) {
	req, err := c.api.NewRequest(ctx, method, ref, body)
	if err != nil {
		return nil, err
	}
	return c.api.Do(req, op, v)
}

// findBuild searches the job's latest builds for one whose parameter
// param is gateID.
func (c *Client) findBuild(ctx context.Context, job []string, param, gateID string) (build, bool, error) {
	p, err := jobPath(job, "/api/json")
	if err != nil {
		return build{}, false, err
	}
	q := url.Values{"tree": {"builds[number,url,building,result,actions[parameters[name,value]]]{0," + strconv.Itoa(lookupDepth) + "}"}}
	var out struct {
		Builds []build `json:"builds"`
	}
	if _, err := c.do(ctx, http.MethodGet, p+"?"+q.Encode(), nil, "find build", &out); err != nil {
		return build{}, false, err
	}
	for _, b := range out.Builds {
		if v, ok := b.param(param); ok && v == gateID {
			return b, true, nil
		}
	}
	return build{}, false, nil
}

// Status follows the queue item until it names its build, then the build.
//
// Jenkins docs: https://www.jenkins.io/doc/book/using/remote-access-api/
// (GET /queue/item/N/api/json, GET /job/NAME/NUMBER/api/json).
func (c *Client) Status(ctx context.Context, run pipelines.Run) (pipelines.Run, error) {
	job := splitJob(run.Ref[RefJob])
	if job == nil {
		return run, fmt.Errorf("jenkins: run %q: ref lacks the job", run.ID)
	}
	ref := maps.Clone(run.Ref)
	if ref[RefBuild] == "" {
		qi, err := c.queueItem(ctx, ref[RefQueueID])
		var ae *pipelines.APIError
		switch {
		case errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound:
			// Jenkins forgets queue items a few minutes after their build
			// starts; find the build by its gate id instead.
			b, ok, ferr := c.findBuildFor(ctx, job, ref)
			if ferr != nil {
				return run, ferr
			}
			if !ok {
				return run, fmt.Errorf("%w: queue item %s expired and no recent build of %s carries %s=%s",
					ErrRunNotFound, ref[RefQueueID], ref[RefJob], ref[RefGateIDParam], ref[RefGateID])
			}
			ref[RefBuild] = strconv.FormatInt(b.Number, 10)
			return c.toRun(b, ref), nil
		case err != nil:
			return run, err
		case qi.Cancelled:
			return pipelines.Run{ID: run.ID, URL: c.jobURL(job), Status: pipelines.StatusCancelled, Detail: "jenkins: cancelled while queued", Ref: ref}, nil
		case qi.Executable == nil || qi.Executable.Number == 0:
			detail := "jenkins: queued"
			if qi.Why != "" {
				detail += " (" + apiclient.Truncate(qi.Why, 200) + ")"
			}
			return pipelines.Run{ID: run.ID, URL: c.jobURL(job), Status: pipelines.StatusQueued, Detail: detail, Ref: ref}, nil
		}
		ref[RefBuild] = strconv.FormatInt(qi.Executable.Number, 10)
	}
	p, err := jobPath(job, "/{number}/api/json", ref[RefBuild])
	if err != nil {
		return run, err
	}
	var b build
	if _, err := c.do(ctx, http.MethodGet, p+"?tree=number,url,building,result", nil, "run status", &b); err != nil {
		return run, err
	}
	return c.toRun(b, ref), nil
}

func (c *Client) queueItem(ctx context.Context, id string) (queueItem, error) {
	if id == "" {
		return queueItem{}, errors.New("jenkins: run ref has neither build nor queue item")
	}
	p, err := apiclient.Path("/queue/item/{id}/api/json", id)
	if err != nil {
		return queueItem{}, fmt.Errorf("jenkins: %w", err)
	}
	var qi queueItem
	_, err = c.do(ctx, http.MethodGet, p, nil, "queue item", &qi)
	return qi, err
}

func (c *Client) findBuildFor(ctx context.Context, job []string, ref map[string]string) (build, bool, error) {
	if ref[RefGateIDParam] == "" || ref[RefGateID] == "" {
		return build{}, false, nil
	}
	return c.findBuild(ctx, job, ref[RefGateIDParam], ref[RefGateID])
}

func splitJob(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "/")
}

func (c *Client) toRun(b build, ref map[string]string) pipelines.Run {
	st := MapBuild(b.Building, b.Result, c.cfg.unstableIsFailure())
	detail := "jenkins: building"
	if !b.Building {
		detail = "jenkins: " + strings.ToLower(b.Result)
		if b.Result == "" {
			detail = "jenkins: starting"
		}
	}
	return pipelines.Run{ID: strconv.FormatInt(b.Number, 10), URL: b.URL, Status: st, Detail: detail, Ref: ref}
}

// MapBuild maps a build's building flag and result onto gatebot's states
// (providers.md §9). A build that is not building and has no result yet is
// just starting or finishing, so running.
func MapBuild(building bool, result string, unstableIsFailure bool) pipelines.Status {
	if building {
		return pipelines.StatusRunning
	}
	switch result {
	case "SUCCESS":
		return pipelines.StatusSucceeded
	case "UNSTABLE":
		if unstableIsFailure {
			return pipelines.StatusFailed
		}
		return pipelines.StatusSucceeded
	case "FAILURE", "NOT_BUILT":
		return pipelines.StatusFailed
	case "ABORTED":
		return pipelines.StatusCancelled
	case "":
		return pipelines.StatusRunning
	default:
		return pipelines.StatusFailed
	}
}

// Cancel stops the build, or cancels the queue item if the build has not
// started. It first refreshes the run, because a queued item may have
// become a build since the last poll; and when cancelItem answers 404 (the
// item left the queue between the refresh and the cancel: Jenkins answers
// "Provided id (N) not found" for an item that is no longer queued) it
// refreshes again and stops the build the item became.
//
// Jenkins docs: https://www.jenkins.io/doc/book/using/aborting-a-build/
// (POST /job/NAME/NUMBER/stop) and POST /queue/cancelItem?id=N (204, or 404
// for an id no longer in the queue: hudson.model.Queue#doCancelItem).
func (c *Client) Cancel(ctx context.Context, run pipelines.Run) error {
	cur, err := c.Status(ctx, run)
	if err != nil {
		return err
	}
	if cur.Status.Terminal() {
		return nil // nothing left to stop
	}
	if cur.Ref[RefBuild] != "" {
		return c.stop(ctx, cur)
	}
	p := "/queue/cancelItem?" + url.Values{"id": {cur.Ref[RefQueueID]}}.Encode()
	err = c.post(ctx, p)
	var ae *pipelines.APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusNotFound {
		return err
	}
	again, serr := c.Status(ctx, cur)
	switch {
	case serr != nil:
		return fmt.Errorf("jenkins: queue item %s left the queue before it could be cancelled, and reading it again failed: %w", cur.Ref[RefQueueID], serr)
	case again.Status.Terminal():
		return nil
	case again.Ref[RefBuild] != "":
		c.log.InfoContext(ctx, "queue item became a build while cancelling; stopping the build", "build", again.Ref[RefBuild])
		return c.stop(ctx, again)
	}
	return err
}

// stop asks Jenkins to abort a started build.
func (c *Client) stop(ctx context.Context, run pipelines.Run) error {
	p, err := jobPath(splitJob(run.Ref[RefJob]), "/{number}/stop", run.Ref[RefBuild])
	if err != nil {
		return err
	}
	return c.post(ctx, p)
}

// post sends a bodiless POST that Jenkins answers with a redirect once
// done.
func (c *Client) post(ctx context.Context, p string) error {
	resp, err := c.do(ctx, http.MethodPost, p, nil, "cancel run", nil)
	switch {
	case resp != nil && resp.StatusCode >= 300 && resp.StatusCode < 400:
		return nil // Jenkins redirects to the build or queue page once done
	case errors.Is(err, apiclient.ErrForeignHost):
		return nil // the same redirect, to Jenkins' own root URL, refused unfollowed
	}
	return err
}

// paramTTL bounds how long a job's "defines the gate parameter" answer is
// trusted: long enough that a burst of gates asks once, short enough that
// removing the parameter from a job is noticed.
const paramTTL = 10 * time.Minute

// RepeatableTrigger reports whether Trigger can recognise an earlier call
// for the gate: only when the target sends a gate-id parameter AND the job
// defines it. Jenkins silently drops parameters a job does not define, so
// a build started without the parameter cannot be found again, and a
// repeat would queue a second build. The job's parameter definitions are
// read once through the job API and cached per job; a failed read answers
// false.
//
// Jenkins docs: https://www.jenkins.io/doc/book/using/remote-access-api/
// (GET /job/NAME/api/json, property[].parameterDefinitions[].name).
func (c *Client) RepeatableTrigger(ctx context.Context, req pipelines.Request) bool {
	t, errs := parseTarget(req.Target)
	if len(errs) > 0 || t.GateIDParam == "" {
		return false
	}
	ok, err := c.jobDefines(ctx, t.Job, t.GateIDParam)
	if err != nil {
		c.log.WarnContext(ctx, "cannot read the job's parameters; treating a repeated trigger as unsafe", "job", strings.Join(t.Job, "/"), "err", err)
		return false
	}
	if !ok {
		c.log.WarnContext(ctx, "job does not define the gate-id parameter; a repeated trigger would start a second build",
			"job", strings.Join(t.Job, "/"), "parameter", t.GateIDParam)
	}
	return ok
}

func (c *Client) jobDefines(ctx context.Context, job []string, param string) (bool, error) {
	key := strings.Join(job, "/")
	c.mu.Lock()
	pc, ok := c.params[key]
	c.mu.Unlock()
	if ok && pc.param == param && c.now().Sub(pc.at) < paramTTL {
		return pc.defined, nil
	}
	p, err := jobPath(job, "/api/json")
	if err != nil {
		return false, err
	}
	// Pipeline and freestyle jobs list definitions under property[];
	// older freestyle jobs also under actions[].
	type defs struct {
		ParameterDefinitions []struct {
			Name string `json:"name"`
		} `json:"parameterDefinitions"`
	}
	var out struct {
		Property []defs `json:"property"`
		Actions  []defs `json:"actions"`
	}
	q := url.Values{"tree": {"property[parameterDefinitions[name]],actions[parameterDefinitions[name]]"}}
	if _, err := c.do(ctx, http.MethodGet, p+"?"+q.Encode(), nil, "read job parameters", &out); err != nil {
		return false, err
	}
	defined := false
	for _, d := range append(out.Property, out.Actions...) {
		for _, pd := range d.ParameterDefinitions {
			defined = defined || pd.Name == param
		}
	}
	c.mu.Lock()
	c.params[key] = paramCheck{param: param, defined: defined, at: c.now()}
	c.mu.Unlock()
	return defined, nil
}

// jobURL is the job's page, the link shown while a run is still a queue
// item.
func (c *Client) jobURL(job []string) string {
	p, err := jobPath(job, "/")
	if err != nil {
		return ""
	}
	return c.base + p
}

var _ pipelines.Idempotent = (*Client)(nil)
