package fakes

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/gatebot/gatebot/standardwebhooks"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/gatebot/gatebot/pipelines/webhook"
)

// Behaviour is how one hook of the Provider answers.
type Behaviour struct {
	// Latency delays every trigger answer.
	Latency time.Duration
	// ErrorRate is the share of triggers answered 503, in [0, 1].
	ErrorRate float64
	// Hang holds every trigger this long before answering (or until the
	// request ends), like a CI system that stopped answering.
	Hang time.Duration
	// RunFor is how long a run reports running before it succeeds.
	RunFor time.Duration
	// FailFirst answers the first FailFirst triggers of each gate 503
	// (no run started), the later ones as usual.
	FailFirst int
	// ThrottleFirst answers the first ThrottleFirst triggers of each gate
	// 429 with RetryAfter (no run started), the later ones as usual.
	ThrottleFirst int
	// RetryAfter is the Retry-After of throttled answers (whole seconds,
	// at least 1).
	RetryAfter time.Duration
}

// ProviderConfig configures the fake provider.
type ProviderConfig struct {
	// Secret is the Standard Webhooks secret (whsec_…) gatebot signs with.
	Secret string
	// BaseURL is where the provider is reachable (no trailing slash); run
	// and status URLs are built on it.
	BaseURL string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Trigger is one gate.approved delivery the provider received.
type Trigger struct {
	GateID    string    `json:"gate_id"`
	Hook      string    `json:"hook"`
	MessageID string    `json:"message_id"`
	At        time.Time `json:"at"`
	Status    int       `json:"status"`
	// Abandoned is set when the caller went away before the answer (a
	// gatebot killed mid-call, or its timeout), known only with Latency
	// or Hang.
	Abandoned bool `json:"abandoned,omitempty"`
}

type run struct {
	started time.Time
	runFor  time.Duration
}

// Provider is a Standard Webhooks receiver for gatebot's webhook
// provider: it verifies every signature, counts triggers per gate and
// serves a status_url. It is safe for concurrent use.
type Provider struct {
	cfg ProviderConfig
	key []byte
	mux *http.ServeMux

	mu        sync.Mutex
	behaviour map[string]Behaviour
	triggers  map[string][]Trigger
	runs      map[string]run
	badSig    int
	changed   chan struct{}
}

// NewProvider returns a Provider.
func NewProvider(cfg ProviderConfig) (*Provider, error) {
	key, err := standardwebhooks.ParseSecret(cfg.Secret)
	if err != nil {
		return nil, err
	}
	if cfg.BaseURL == "" {
		return nil, errors.New("fakes: provider needs a base URL")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := &Provider{cfg: cfg, key: key, mux: http.NewServeMux(), behaviour: map[string]Behaviour{},
		triggers: map[string][]Trigger{}, runs: map[string]run{}, changed: make(chan struct{})}
	p.mux.HandleFunc("POST /hooks/{hook}", p.serveTrigger)
	p.mux.HandleFunc("GET /runs/{gate}/status", p.serveStatus)
	return p, nil
}

// HookURL is the url for a webhook provider section named hook.
func (p *Provider) HookURL(hook string) string {
	return p.cfg.BaseURL + "/hooks/" + url.PathEscape(hook)
}

// SetBehaviour sets how hook answers from now on.
func (p *Provider) SetBehaviour(hook string, b Behaviour) {
	p.mu.Lock()
	p.behaviour[hook] = b
	p.mu.Unlock()
}

// ServeHTTP serves the hooks and the status URLs.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.mux.ServeHTTP(w, r) }

func (p *Provider) verify(r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || standardwebhooks.VerifyRequest(p.key, r.Header, body, p.cfg.Now()) != nil {
		p.mu.Lock()
		p.badSig++
		p.mu.Unlock()
		return nil, false
	}
	return body, true
}

func (p *Provider) serveTrigger(w http.ResponseWriter, r *http.Request) {
	hook := r.PathValue("hook")
	body, ok := p.verify(r)
	if !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "bad signature"})
		return
	}
	var ev webhook.Event
	if json.Unmarshal(body, &ev) != nil || ev.Type != webhook.EventGateApproved || ev.GateID == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "not a gate.approved event"})
		return
	}
	p.mu.Lock()
	b := p.behaviour[hook]
	status, seen := http.StatusOK, len(p.triggers[ev.GateID])
	switch {
	case seen < b.FailFirst:
		status = http.StatusServiceUnavailable
	case seen < b.FailFirst+b.ThrottleFirst:
		status = http.StatusTooManyRequests
	case b.ErrorRate > 0 && rand.Float64() < b.ErrorRate:
		status = http.StatusServiceUnavailable
	}
	p.triggers[ev.GateID] = append(p.triggers[ev.GateID], Trigger{GateID: ev.GateID, Hook: hook,
		MessageID: r.Header.Get(standardwebhooks.HeaderID), At: p.cfg.Now(), Status: status})
	n := len(p.triggers[ev.GateID]) - 1
	if status == http.StatusOK {
		if _, ok := p.runs[ev.GateID]; !ok {
			p.runs[ev.GateID] = run{started: p.cfg.Now(), runFor: b.RunFor}
		}
	}
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()

	if !sleepCtx(r.Context(), b.Latency+b.Hang) {
		p.mu.Lock()
		p.triggers[ev.GateID][n].Abandoned = true
		p.mu.Unlock()
		return
	}
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(b.RetryAfter.Round(time.Second).Seconds()))))
	}
	if status != http.StatusOK {
		writeJSON(w, status, map[string]string{"message": "injected failure"})
		return
	}
	runURL := p.cfg.BaseURL + "/runs/" + url.PathEscape(ev.GateID)
	writeJSON(w, http.StatusOK, webhook.Answer{RunID: "run-" + ev.GateID, Status: "running", URL: runURL, StatusURL: runURL + "/status"})
}

func (p *Provider) serveStatus(w http.ResponseWriter, r *http.Request) {
	if _, ok := p.verify(r); !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "bad signature"})
		return
	}
	gate := r.PathValue("gate")
	p.mu.Lock()
	rn, ok := p.runs[gate]
	p.mu.Unlock()
	switch {
	case !ok:
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "no such run"})
	case p.cfg.Now().Sub(rn.started) < rn.runFor:
		writeJSON(w, http.StatusOK, webhook.Answer{Status: "running"})
	default:
		writeJSON(w, http.StatusOK, webhook.Answer{Status: "succeeded"})
	}
}

// RunURL is the run link the provider gives gatebot for gate: the card
// shows it once gatebot has started the run.
func (p *Provider) RunURL(gate string) string { return p.cfg.BaseURL + "/runs/" + url.PathEscape(gate) }

// WaitTrigger blocks until gate has been triggered at least once and
// returns the first delivery.
func (p *Provider) WaitTrigger(ctx context.Context, gate string) (Trigger, error) {
	for {
		p.mu.Lock()
		if ts := p.triggers[gate]; len(ts) > 0 {
			p.mu.Unlock()
			return ts[0], nil
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return Trigger{}, ctx.Err()
		}
	}
}

// Triggers returns every delivery per gate id.
func (p *Provider) Triggers() map[string][]Trigger {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string][]Trigger, len(p.triggers))
	for k, v := range p.triggers {
		out[k] = append([]Trigger(nil), v...)
	}
	return out
}

// BadSignatures counts requests refused for a missing or wrong signature.
func (p *Provider) BadSignatures() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.badSig
}

// sleepCtx waits d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
