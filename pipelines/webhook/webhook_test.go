package webhook_test

import (
	"bytes"
	"context"
	"errors"
	"github.com/gatebot/gatebot/standardwebhooks"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/apiclient"
	"github.com/gatebot/gatebot/pipelines/pipelinestest"
	"github.com/gatebot/gatebot/pipelines/webhook"
	"github.com/google/go-cmp/cmp"
)

// secret signs the provider's requests in these tests.
const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func secretKey(t *testing.T) []byte {
	t.Helper()
	k, err := standardwebhooks.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

type env struct {
	c    *webhook.Client
	logs *bytes.Buffer
}

func newClient(t *testing.T, cfg webhook.Config, now func() time.Time) env {
	t.Helper()
	if cfg.Secret == "" {
		cfg.Secret = secret
	}
	if now == nil {
		now = func() time.Time { return t0 }
	}
	var logs bytes.Buffer
	c, err := webhook.New(cfg,
		webhook.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		webhook.WithNow(now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if strings.Contains(logs.String(), strings.TrimPrefix(string(cfg.Secret), "whsec_")) {
			t.Errorf("secret in logs:\n%s", logs.String())
		}
	})
	return env{c: c, logs: &logs}
}

func request() pipelines.Request {
	return pipelines.Request{
		GateID:    "g-123",
		Pipeline:  "deploy-api",
		Target:    map[string]any{"service": "api", "region": "eu"},
		Inputs:    map[string]any{"version": "1.4.2", "replicas": float64(3), "dry_run": false},
		Message:   "ship it <now> & then",
		Requester: "Ada Lovelace",
		Approvers: []string{"Grace Hopper", "Alan Turing"},
	}
}

func TestTrigger(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		header  http.Header
		body    string
		want    func(base string) pipelines.Run
		wantErr func(*testing.T, error)
	}{
		{
			name: "204 without details", status: 204,
			want: func(string) pipelines.Run {
				return pipelines.Run{Status: pipelines.StatusQueued, Detail: "webhook: accepted", Ref: map[string]string{"gate_id": "g-123"}}
			},
		},
		{
			name: "202 with a text body", status: 202, body: "OK",
			want: func(string) pipelines.Run {
				return pipelines.Run{Status: pipelines.StatusQueued, Detail: "webhook: accepted", Ref: map[string]string{"gate_id": "g-123"}}
			},
		},
		{
			name: "200 with run id, status and URLs", status: 200, header: http.Header{"Content-Type": {"application/json"}},
			body: `{"run_id":"r-77","status":"running","url":"https://deploy.example.com/ui/r-77","status_url":"` + pipelinestest.BaseURL + `/runs/r-77","cancel_url":"` + pipelinestest.BaseURL + `/runs/r-77/cancel"}`,
			want: func(base string) pipelines.Run {
				return pipelines.Run{ID: "r-77", URL: "https://deploy.example.com/ui/r-77", Status: pipelines.StatusRunning, Detail: "webhook: running",
					Ref: map[string]string{"gate_id": "g-123", "status_url": base + "/runs/r-77", "cancel_url": base + "/runs/r-77/cancel"}}
			},
		},
		{
			name: "unknown status and a detail", status: 201,
			body: `{"run_id":"r-78","status":"accepted","detail":"scheduled for 10:05"}`,
			want: func(string) pipelines.Run {
				return pipelines.Run{ID: "r-78", Status: pipelines.StatusQueued, Detail: "webhook: scheduled for 10:05", Ref: map[string]string{"gate_id": "g-123"}}
			},
		},
		{
			name: "status_url on a host not allowed is dropped", status: 200,
			body: `{"run_id":"r-79","status_url":"https://evil.example.net/steal","cancel_url":"` + pipelinestest.BaseURL + `/../admin"}`,
			want: func(string) pipelines.Run {
				return pipelines.Run{ID: "r-79", Status: pipelines.StatusQueued,
					Detail: "webhook: accepted; status_url refused: not under status_url_allowed; cancel_url refused: not under status_url_allowed",
					Ref:    map[string]string{"gate_id": "g-123"}}
			},
		},
		{
			name: "malformed JSON object", status: 200, body: `{"run_id":`,
			wantErr: func(t *testing.T, err error) {
				if !errors.Is(err, apiclient.ErrMalformedResponse) {
					t.Errorf("err = %v", err)
				}
			},
		},
		{name: "400 is permanent", status: 400, body: `{"error":"unknown pipeline deploy-api"}`, wantErr: apiErr(400, "unknown pipeline deploy-api", false, 0)},
		{name: "503 is temporary", status: 503, body: ``, wantErr: apiErr(503, "Service Unavailable", true, 0)},
		{name: "429 with Retry-After", status: 429, header: http.Header{"Retry-After": {"12"}}, body: `{"message":"slow down"}`, wantErr: apiErr(429, "slow down", true, 12*time.Second)},
		{name: "an echoed secret is redacted", status: 401, body: `{"message":"bad secret ` + secret + `"}`, wantErr: apiErr(401, "bad secret [REDACTED]", false, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := pipelinestest.NewServer(t, pipelinestest.Exchange{Golden: "trigger", Status: tt.status, Header: tt.header, Body: tt.body}).URL
			e := newClient(t, webhook.Config{URL: base + "/hooks/gatebot?tenant=acme"}, nil)
			got, err := e.c.Trigger(t.Context(), request())
			if tt.wantErr != nil {
				if err != nil && strings.Contains(err.Error(), "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") {
					t.Errorf("secret in error %q", err)
				}
				tt.wantErr(t, err)
				return
			}
			if err != nil {
				t.Fatalf("Trigger: %v", err)
			}
			if d := cmp.Diff(tt.want(base), got); d != "" {
				t.Errorf("run (-want +got):\n%s", d)
			}
		})
	}
}

func TestTriggerTimeout(t *testing.T) {
	base := pipelinestest.NewServer(t, pipelinestest.Exchange{Golden: "trigger", Hang: true}).URL
	e := newClient(t, webhook.Config{URL: base + "/hooks/gatebot?tenant=acme"}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := e.c.Trigger(ctx, request())
	var ae *pipelines.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 0 || !ae.Temporary() || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want a temporary transport APIError wrapping DeadlineExceeded", err)
	}
}

// Retries carry the same webhook-id with a fresh timestamp and signature,
// and a receiver using VerifyRequest accepts each of them.
func TestRetriesKeepTheMessageID(t *testing.T) {
	key := secretKey(t)
	var mu sync.Mutex
	var ids, stamps []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := standardwebhooks.VerifyRequest(key, r.Header, body, time.Unix(mustInt(t, r.Header.Get("webhook-timestamp")), 0)); err != nil {
			t.Errorf("receiver rejects the message: %v", err)
		}
		mu.Lock()
		ids = append(ids, r.Header.Get("webhook-id"))
		stamps = append(stamps, r.Header.Get("webhook-timestamp"))
		mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	now := t0
	e := newClient(t, webhook.Config{URL: srv.URL}, func() time.Time { return now })
	for range 2 {
		if _, err := e.c.Trigger(t.Context(), request()); !pipelines.IsTemporary(err) {
			t.Fatalf("err = %v", err)
		}
		now = now.Add(90 * time.Second)
	}
	if len(ids) != 2 || ids[0] != ids[1] || ids[0] != webhook.MessageID("g-123") {
		t.Errorf("webhook-ids = %v, want twice %q", ids, webhook.MessageID("g-123"))
	}
	if len(stamps) != 2 || stamps[0] == stamps[1] {
		t.Errorf("timestamps = %v, want fresh ones", stamps)
	}
}

func mustInt(t *testing.T, s string) int64 {
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("not a number: %q", s)
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

func TestStatus(t *testing.T) {
	t.Run("no status_url: the run as it is, no request", func(t *testing.T) {
		e := newClient(t, webhook.Config{URL: pipelinestest.NewServer(t).URL}, nil)
		run := pipelines.Run{ID: "r-1", Status: pipelines.StatusRunning, Detail: "webhook: running", Ref: map[string]string{"gate_id": "g-123"}}
		got, err := e.c.Status(t.Context(), run)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(run, got); d != "" {
			t.Errorf("(-want +got):\n%s", d)
		}
	})
	tests := []struct {
		name    string
		status  int
		body    string
		want    pipelines.Run
		wantErr func(*testing.T, error)
	}{
		{"running", 200, `{"status":"running"}`, pipelines.Run{ID: "r-1", Status: pipelines.StatusRunning, Detail: "webhook: running"}, nil},
		{"succeeded with URL and detail", 200, `{"status":"succeeded","url":"https://deploy.example.com/ui/r-1","detail":"deployed 1.4.2"}`,
			pipelines.Run{ID: "r-1", URL: "https://deploy.example.com/ui/r-1", Status: pipelines.StatusSucceeded, Detail: "webhook: deployed 1.4.2"}, nil},
		{"failed", 200, `{"status":"failed"}`, pipelines.Run{ID: "r-1", Status: pipelines.StatusFailed, Detail: "webhook: failed"}, nil},
		{"cancelled", 200, `{"status":"cancelled"}`, pipelines.Run{ID: "r-1", Status: pipelines.StatusCancelled, Detail: "webhook: cancelled"}, nil},
		{"queued", 200, `{"status":"queued"}`, pipelines.Run{ID: "r-1", Status: pipelines.StatusQueued, Detail: "webhook: queued"}, nil},
		{"unknown status keeps following", 200, `{"status":"deploying"}`, pipelines.Run{ID: "r-1", Status: pipelines.StatusRunning, Detail: "webhook: deploying"}, nil},
		{"no status", 200, `{}`, pipelines.Run{}, func(t *testing.T, err error) {
			if !errors.Is(err, apiclient.ErrMalformedResponse) {
				t.Errorf("err = %v", err)
			}
		}},
		{"not JSON", 200, `{"status":`, pipelines.Run{}, func(t *testing.T, err error) {
			if !errors.Is(err, apiclient.ErrMalformedResponse) {
				t.Errorf("err = %v", err)
			}
		}},
		{"404", 404, `{"message":"no such run"}`, pipelines.Run{}, apiErr(404, "no such run", false, 0)},
		{"500", 500, `oops`, pipelines.Run{}, apiErr(500, "oops", true, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := pipelinestest.NewServer(t, pipelinestest.Exchange{Golden: "status", Status: tt.status, Body: tt.body}).URL
			e := newClient(t, webhook.Config{URL: base + "/hooks/gatebot"}, nil)
			ref := map[string]string{"gate_id": "g-123", "status_url": base + "/runs/r-1?view=status"}
			got, err := e.c.Status(t.Context(), pipelines.Run{ID: "r-1", Status: pipelines.StatusQueued, Ref: ref})
			if tt.wantErr != nil {
				tt.wantErr(t, err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Ref = ref
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestAllowedURLs(t *testing.T) {
	var hits atomic.Int32
	answer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, `{"status":"running"}`)
	})
	s1, s2 := httptest.NewServer(answer), httptest.NewServer(answer)
	defer s1.Close()
	defer s2.Close()
	base, other := s1.URL, s2.URL
	tests := []struct {
		name    string
		allowed []string
		url     string
		ok      bool
	}{
		{"default: the webhook's origin", nil, base + "/anything", true},
		{"default: another host", nil, other + "/runs/1", false},
		{"listed prefix", []string{other + "/runs/"}, other + "/runs/1", true},
		{"listed prefix without slash", []string{other + "/runs"}, other + "/runs/1", true},
		{"outside the prefix", []string{other + "/runs/"}, other + "/admin", false},
		{"prefix as a word start only", []string{other + "/runs"}, other + "/runsx/1", false},
		{"dot segments", []string{other + "/runs/"}, other + "/runs/../admin", false},
		{"user info", []string{other + "/runs/"}, strings.Replace(other, "http://", "http://u:p@", 1) + "/runs/1", false},
		{"scheme differs", []string{other + "/runs/"}, strings.Replace(other, "http://", "https://", 1) + "/runs/1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newClient(t, webhook.Config{URL: base + "/hook", StatusURLAllowed: tt.allowed}, nil)
			run := pipelines.Run{Ref: map[string]string{"gate_id": "g-123", "status_url": tt.url}}
			before := hits.Load()
			got, err := e.c.Status(t.Context(), run)
			made := hits.Load() - before
			if !tt.ok {
				if !errors.Is(err, webhook.ErrURLNotAllowed) || made != 0 {
					t.Errorf("err = %v after %d requests, want ErrURLNotAllowed and none", err, made)
				}
				return
			}
			if err != nil || got.Status != pipelines.StatusRunning || made != 1 {
				t.Errorf("Status = %q, %v after %d requests; want running after 1", got.Status, err, made)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	t.Run("no cancel_url", func(t *testing.T) {
		e := newClient(t, webhook.Config{URL: pipelinestest.NewServer(t).URL}, nil)
		err := e.c.Cancel(t.Context(), pipelines.Run{ID: "r-1", Ref: map[string]string{"gate_id": "g-123"}})
		if !errors.Is(err, pipelines.ErrNotSupported) {
			t.Errorf("err = %v, want ErrNotSupported", err)
		}
	})
	t.Run("cancel_url", func(t *testing.T) {
		base := pipelinestest.NewServer(t, pipelinestest.Exchange{Golden: "cancel", Status: 202}).URL
		e := newClient(t, webhook.Config{URL: base + "/hook"}, nil)
		err := e.c.Cancel(t.Context(), pipelines.Run{ID: "r-1", Ref: map[string]string{"gate_id": "g-123", "cancel_url": base + "/runs/r-1/cancel"}})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("cancel refused", func(t *testing.T) {
		base := pipelinestest.NewServer(t, pipelinestest.Exchange{Golden: "cancel", Status: 409, Body: `{"message":"already finished"}`}).URL
		e := newClient(t, webhook.Config{URL: base + "/hook"}, nil)
		err := e.c.Cancel(t.Context(), pipelines.Run{ID: "r-1", Ref: map[string]string{"gate_id": "g-123", "cancel_url": base + "/runs/r-1/cancel"}})
		apiErr(409, "already finished", false, 0)(t, err)
	})
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  webhook.Config
		want []string
	}{
		{"ok", webhook.Config{URL: "https://x.example.com/h?k=v", Secret: secret, StatusURLAllowed: []string{"https://y.example.com/runs/"}}, nil},
		{"empty", webhook.Config{}, []string{"url is required", "secret is required"}},
		{"bad values", webhook.Config{URL: "ftp://x", Secret: "whsec_short", StatusURLAllowed: []string{"/relative"}}, []string{"url:", "secret:", "status_url_allowed[0]"}},
		{"user info", webhook.Config{URL: "https://u:p@x.example.com/", Secret: secret}, []string{"user info"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := tt.cfg.Validate()
			if len(errs) != len(tt.want) {
				t.Fatalf("Validate = %v, want %d errors", errs, len(tt.want))
			}
			for i, e := range errs {
				if !strings.Contains(e.Error(), tt.want[i]) {
					t.Errorf("error %d = %v, want %q", i, e, tt.want[i])
				}
				if strings.Contains(e.Error(), "short") {
					t.Errorf("error %d shows the secret: %v", i, e)
				}
			}
		})
	}
}

func apiErr(status int, msg string, temporary bool, retryAfter time.Duration) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var ae *pipelines.APIError
		if !errors.As(err, &ae) {
			t.Fatalf("err = %v (%T), want *pipelines.APIError", err, err)
		}
		if ae.Provider != "webhook" || ae.StatusCode != status || ae.Message != msg || ae.Temporary() != temporary || ae.RetryAfter != retryAfter {
			t.Errorf("APIError = {%s %d %q temporary=%v retry=%s}, want {webhook %d %q %v %s}",
				ae.Provider, ae.StatusCode, ae.Message, ae.Temporary(), ae.RetryAfter, status, msg, temporary, retryAfter)
		}
	}
}
