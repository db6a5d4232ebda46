package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/google/go-cmp/cmp"
)

const testBearer = "eyJ0eXAiOiJKV1QifQ.connector-token.sig"

// countingTokens is a TokenSource fake that counts calls.
type countingTokens struct {
	calls atomic.Int32
	token string
	err   error
}

func (c *countingTokens) Token(context.Context) (string, error) {
	c.calls.Add(1)
	return c.token, c.err
}

// wantRequest is what the fake connector expects for one request, and what
// it answers.
type wantRequest struct {
	method     string
	requestURI string // escaped, as sent on the wire
	body       string // JSON compared semantically; "" = no body
	golden     string // or a golden file for the body
	status     int
	header     map[string]string
	respBody   string
}

// fakeConnector serves a scripted sequence of requests over TLS and asserts
// each one's method, escaped path, bearer token and body.
type fakeConnector struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	script  []wantRequest
	n       int
	bearer  string // "" = no Authorization header expected
	baseURI string
}

func newFakeConnector(t *testing.T, script ...wantRequest) *fakeConnector {
	f := &fakeConnector{t: t, script: script, bearer: testBearer, baseURI: "/emea"}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		f.srv.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.n != len(f.script) {
			t.Errorf("fake connector: %d requests, script has %d", f.n, len(f.script))
		}
	})
	return f
}

func (f *fakeConnector) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	if f.n >= len(f.script) {
		f.mu.Unlock()
		f.t.Errorf("fake connector: unexpected request %s %s", r.Method, r.RequestURI)
		w.WriteHeader(http.StatusTeapot)
		return
	}
	want := f.script[f.n]
	f.n++
	f.mu.Unlock()
	if r.Method != want.method || r.RequestURI != f.baseURI+want.requestURI {
		f.t.Errorf("fake connector: got %s %s, want %s %s", r.Method, r.RequestURI, want.method, f.baseURI+want.requestURI)
	}
	wantAuth := ""
	if f.bearer != "" {
		wantAuth = "Bearer " + f.bearer
	}
	if got := r.Header.Get("Authorization"); got != wantAuth {
		f.t.Errorf("fake connector: Authorization %q, want %q", got, wantAuth)
	}
	body, _ := io.ReadAll(r.Body)
	switch {
	case want.golden != "":
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			f.t.Errorf("fake connector: body is not JSON: %s", body)
		}
		pretty, _ := json.MarshalIndent(v, "", "  ")
		golden(f.t, want.golden, append(pretty, '\n'))
	case want.body != "":
		if ct := r.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
			f.t.Errorf("fake connector: content type %q", ct)
		}
		if diff := cmp.Diff(decodeJSON(f.t, want.body), decodeJSON(f.t, string(body))); diff != "" {
			f.t.Errorf("fake connector: body (-want +got):\n%s", diff)
		}
	default:
		if len(body) != 0 {
			f.t.Errorf("fake connector: unexpected body %s", body)
		}
	}
	for k, v := range want.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(want.status)
	_, _ = io.WriteString(w, want.respBody)
}

func decodeJSON(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Errorf("invalid JSON %q: %v", s, err)
	}
	return v
}

func (f *fakeConnector) serviceURL() string { return f.srv.URL + f.baseURI + "/" }

func (f *fakeConnector) requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// connector returns a Connector trusting only the fake's host, with fast
// backoff.
func (f *fakeConnector) connector(t *testing.T, mutate func(*ConnectorConfig)) *Connector {
	t.Helper()
	u, _ := url.Parse(f.srv.URL)
	cfg := ConnectorConfig{
		Tokens:     &countingTokens{token: testBearer},
		Trust:      ServiceURLPolicy{TrustedHosts: []string{u.Hostname()}},
		HTTPClient: f.srv.Client(),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.newBackOff = func() backoff.BackOff { return backoff.NewConstantBackOff(time.Millisecond) }
	return c
}

const (
	threadID  = "19:abc123@thread.tacv2;messageid=1772446501123"
	threadURI = "/v3/conversations/19:abc123@thread.tacv2%3Bmessageid=1772446501123"
)

func cardActivity() *Activity {
	return &Activity{Type: TypeMessage, Attachments: []Attachment{AdaptiveCardAttachment(map[string]any{"type": "AdaptiveCard", "version": "1.5"})}}
}

func TestConnectorOperations(t *testing.T) {
	ctx := t.Context()
	const cardBody = `{"type":"message","conversation":{"id":"` + threadID + `"},"attachments":[{"contentType":"application/vnd.microsoft.card.adaptive","content":{"type":"AdaptiveCard","version":"1.5"}}]}`

	t.Run("send", func(t *testing.T) {
		f := newFakeConnector(t, wantRequest{method: "POST", requestURI: threadURI + "/activities", golden: "connector_send.golden.json", status: 201, respBody: `{"id":"1772446600000"}`})
		act := cardActivity()
		before, _ := json.Marshal(act)
		id, err := f.connector(t, nil).SendToConversation(ctx, f.serviceURL(), threadID, act)
		if err != nil || id != "1772446600000" {
			t.Fatalf("SendToConversation = %q, %v", id, err)
		}
		if after, _ := json.Marshal(act); !bytes.Equal(before, after) {
			t.Error("caller's activity was modified")
		}
	})
	t.Run("send 202 empty body", func(t *testing.T) {
		f := newFakeConnector(t, wantRequest{method: "POST", requestURI: threadURI + "/activities", body: cardBody, status: 202})
		id, err := f.connector(t, nil).SendToConversation(ctx, f.serviceURL(), threadID, cardActivity())
		if err != nil || id != "" {
			t.Fatalf("SendToConversation = %q, %v", id, err)
		}
	})
	t.Run("send undecodable 200 is not an error", func(t *testing.T) {
		f := newFakeConnector(t, wantRequest{method: "POST", requestURI: threadURI + "/activities", body: cardBody, status: 200, respBody: "<html>"})
		if id, err := f.connector(t, nil).SendToConversation(ctx, f.serviceURL(), threadID, cardActivity()); err != nil || id != "" {
			t.Fatalf("SendToConversation = %q, %v", id, err)
		}
	})
	t.Run("reply", func(t *testing.T) {
		f := newFakeConnector(t, wantRequest{method: "POST", requestURI: "/v3/conversations/a:1%2F2/activities/17%3B2",
			body: `{"type":"message","text":"hi","replyToId":"17;2","conversation":{"id":"a:1/2"}}`, status: 200, respBody: `{"id":"r1"}`})
		id, err := f.connector(t, nil).ReplyToActivity(ctx, f.serviceURL(), "a:1/2", "17;2", &Activity{Text: "hi"})
		if err != nil || id != "r1" {
			t.Fatalf("ReplyToActivity = %q, %v", id, err)
		}
	})
	t.Run("update", func(t *testing.T) {
		f := newFakeConnector(t, wantRequest{method: "PUT", requestURI: threadURI + "/activities/1772446600000",
			body:   `{"type":"message","id":"1772446600000","conversation":{"id":"` + threadID + `"},"attachments":[{"contentType":"application/vnd.microsoft.card.adaptive","content":{"type":"AdaptiveCard","version":"1.5"}}]}`,
			status: 200, respBody: `{"id":"1772446600000"}`})
		if err := f.connector(t, nil).UpdateActivity(ctx, f.serviceURL(), threadID, "1772446600000", cardActivity()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("delete", func(t *testing.T) {
		f := newFakeConnector(t, wantRequest{method: "DELETE", requestURI: threadURI + "/activities/1772446600000", status: 200})
		if err := f.connector(t, nil).DeleteActivity(ctx, f.serviceURL(), threadID, "1772446600000"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("create channel thread", func(t *testing.T) {
		f := newFakeConnector(t, wantRequest{method: "POST", requestURI: "/v3/conversations", golden: "connector_create_thread.golden.json",
			status: 201, respBody: `{"id":"19:abc123@thread.tacv2;messageid=1772446700000","activityId":"1772446700000"}`})
		res, err := f.connector(t, nil).CreateConversation(ctx, f.serviceURL(), ConversationParameters{
			IsGroup:     true,
			TenantID:    "tenant-1",
			Activity:    cardActivity(),
			ChannelData: map[string]any{"channel": map[string]string{"id": "19:abc123@thread.tacv2"}, "tenant": map[string]string{"id": "tenant-1"}},
		})
		want := ConversationResourceResponse{ID: "19:abc123@thread.tacv2;messageid=1772446700000", ActivityID: "1772446700000"}
		if err != nil || res != want {
			t.Fatalf("CreateConversation = %+v, %v", res, err)
		}
	})
	t.Run("create 1:1", func(t *testing.T) {
		f := newFakeConnector(t, wantRequest{method: "POST", requestURI: "/v3/conversations", golden: "connector_create_personal.golden.json",
			status: 201, respBody: `{"id":"a:1personal"}`})
		res, err := f.connector(t, nil).CreateConversation(ctx, f.serviceURL(), ConversationParameters{
			Bot:         ChannelAccount{ID: "28:" + testAppID},
			Members:     []ChannelAccount{{ID: "29:1abcDEF"}},
			TenantID:    "tenant-1",
			ChannelData: map[string]any{"tenant": map[string]string{"id": "tenant-1"}},
		})
		if err != nil || res.ID != "a:1personal" {
			t.Fatalf("CreateConversation = %+v, %v", res, err)
		}
	})
	t.Run("create without id", func(t *testing.T) {
		f := newFakeConnector(t, wantRequest{method: "POST", requestURI: "/v3/conversations", body: `{"isGroup":false,"tenantId":"t"}`, status: 201, respBody: `{}`})
		if _, err := f.connector(t, nil).CreateConversation(ctx, f.serviceURL(), ConversationParameters{TenantID: "t"}); err == nil {
			t.Fatal("accepted a create response without id")
		}
	})
	t.Run("get member", func(t *testing.T) {
		f := newFakeConnector(t, wantRequest{method: "GET", requestURI: threadURI + "/members/29:1abcDEF", status: 200,
			respBody: `{"id":"29:1abcDEF","name":"Ada Lovelace","aadObjectId":"6b1f","email":"ada@example.com","userPrincipalName":"ada@example.com","tenantId":"t1","userRole":"user"}`})
		m, err := f.connector(t, nil).GetMember(ctx, f.serviceURL(), threadID, "29:1abcDEF")
		want := Member{ID: "29:1abcDEF", Name: "Ada Lovelace", AADObjectID: "6b1f", Email: "ada@example.com", UserPrincipalName: "ada@example.com", TenantID: "t1"}
		if err != nil || m != want {
			t.Fatalf("GetMember = %+v, %v", m, err)
		}
	})
	t.Run("empty ids refused before sending", func(t *testing.T) {
		f := newFakeConnector(t)
		c := f.connector(t, nil)
		if _, err := c.SendToConversation(ctx, f.serviceURL(), "", cardActivity()); err == nil {
			t.Error("empty conversation id accepted")
		}
		if err := c.UpdateActivity(ctx, f.serviceURL(), threadID, "", cardActivity()); err == nil {
			t.Error("empty activity id accepted")
		}
	})
}

func TestConnectorErrorsAndRetries(t *testing.T) {
	errBody := func(code string) string {
		return `{"error":{"code":"` + code + `","message":"details for ` + code + `","innerHttpError":{"statusCode":1,"body":null}}}`
	}
	corr := map[string]string{"X-Correlating-OperationId": "op-123"}
	send := wantRequest{method: "POST", requestURI: threadURI + "/activities", body: `{"type":"message","text":"x","conversation":{"id":"` + threadID + `"}}`}
	with := func(status int, code string, header map[string]string) wantRequest {
		r := send
		r.status, r.header = status, header
		if code != "" {
			r.respBody = errBody(code)
		}
		return r
	}
	ok := send
	ok.status, ok.respBody = 201, `{"id":"done"}`

	tests := []struct {
		name       string
		script     []wantRequest
		maxRetries int
		wantID     string
		wantStatus int
		wantCode   string
	}{
		{"400 not retried", []wantRequest{with(400, "BadArgument", corr)}, 0, "", 400, "BadArgument"},
		{"401 not retried", []wantRequest{with(401, "BotNotRegistered", corr)}, 0, "", 401, "BotNotRegistered"},
		{"403 not retried", []wantRequest{with(403, "ConversationBlockedByUser", corr)}, 0, "", 403, "ConversationBlockedByUser"},
		{"404 not retried", []wantRequest{with(404, "ConversationNotFound", corr)}, 0, "", 404, "ConversationNotFound"},
		{"413 not retried", []wantRequest{with(413, "MessageSizeTooBig", corr)}, 0, "", 413, "MessageSizeTooBig"},
		{"500 not retried", []wantRequest{with(500, "ServiceError", corr)}, 0, "", 500, "ServiceError"},
		{"412 retried", []wantRequest{with(412, "PreconditionFailed", nil), ok}, 0, "done", 0, ""},
		// A POST that failed at a gateway may have been delivered:
		// resending could post a second card.
		{"502 not retried for a POST", []wantRequest{with(502, "BadGateway", corr)}, 0, "", 502, "BadGateway"},
		{"503 not retried for a POST", []wantRequest{with(503, "ServiceUnavailable", corr)}, 0, "", 503, "ServiceUnavailable"},
		{"504 not retried for a POST", []wantRequest{with(504, "GatewayTimeout", corr)}, 0, "", 504, "GatewayTimeout"},
		{"429 with Retry-After retried", []wantRequest{with(429, "Throttled", map[string]string{"Retry-After": "0"}), ok}, 0, "done", 0, ""},
		{"429 without Retry-After backs off", []wantRequest{with(429, "Throttled", nil), ok}, 0, "done", 0, ""},
		{"429 with long Retry-After returned", []wantRequest{with(429, "Throttled", map[string]string{"Retry-After": "3600", "X-Correlating-OperationId": "op-123"})}, 0, "", 429, "Throttled"},
		{"retries bounded", []wantRequest{with(412, "", nil), with(412, "", nil), with(412, "PreconditionFailed", corr)}, 2, "", 412, "PreconditionFailed"},
		{"no retries when disabled", []wantRequest{with(503, "ServiceUnavailable", corr)}, -1, "", 503, "ServiceUnavailable"},
		{"default is 3 retries", []wantRequest{with(412, "", nil), with(412, "", nil), with(412, "", nil), with(412, "PreconditionFailed", corr)}, 0, "", 412, "PreconditionFailed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeConnector(t, tt.script...)
			c := f.connector(t, func(cfg *ConnectorConfig) { cfg.MaxRetries = tt.maxRetries })
			id, err := c.SendToConversation(t.Context(), f.serviceURL(), threadID, &Activity{Type: TypeMessage, Text: "x"})
			if tt.wantStatus == 0 {
				if err != nil || id != tt.wantID {
					t.Fatalf("SendToConversation = %q, %v", id, err)
				}
				return
			}
			var apiErr *APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v, want *APIError", err)
			}
			want := APIError{StatusCode: tt.wantStatus, Code: tt.wantCode, Message: "details for " + tt.wantCode, CorrelationID: "op-123"}
			if *apiErr != want {
				t.Errorf("APIError = %+v, want %+v", *apiErr, want)
			}
			if strings.Contains(err.Error(), testBearer) {
				t.Errorf("error contains the token: %v", err)
			}
		})
	}
}

// TestConnectorRetriesIdempotent5xx: a PUT (card update) is safe to
// repeat, so 502/503/504 are retried as Microsoft's table says.
func TestConnectorRetriesIdempotent5xx(t *testing.T) {
	put := wantRequest{method: "PUT", requestURI: threadURI + "/activities/1", body: `{"type":"message","id":"1","conversation":{"id":"` + threadID + `"}}`}
	for _, status := range []int{502, 503, 504} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			fail, ok := put, put
			fail.status = status
			ok.status, ok.respBody = 200, `{"id":"1"}`
			f := newFakeConnector(t, fail, ok)
			if err := f.connector(t, nil).UpdateActivity(t.Context(), f.serviceURL(), threadID, "1", &Activity{Type: TypeMessage}); err != nil {
				t.Fatalf("UpdateActivity after a %d = %v, want it retried", status, err)
			}
		})
	}
}

func TestConnectorContextCancelledDuringBackoff(t *testing.T) {
	// 412 is retried for a POST too (a 5xx is not: it may have been delivered).
	f := newFakeConnector(t, wantRequest{method: "POST", requestURI: threadURI + "/activities", body: `{"type":"message","conversation":{"id":"` + threadID + `"}}`, status: 412})
	c := f.connector(t, nil)
	c.newBackOff = func() backoff.BackOff { return backoff.NewConstantBackOff(30 * time.Second) }
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		for f.requests() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := c.SendToConversation(ctx, f.serviceURL(), threadID, &Activity{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestConnectorRefusesUntrustedServiceURL(t *testing.T) {
	var evilHits atomic.Int32
	evil := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { evilHits.Add(1) }))
	t.Cleanup(evil.Close)
	tokens := &countingTokens{token: testBearer}
	var logs bytes.Buffer
	public, _ := CloudPreset("public")
	c, err := NewConnector(ConnectorConfig{
		Tokens: tokens, Trust: ServiceURLPolicy{TrustedHosts: public.TrustedServiceHosts},
		HTTPClient: evil.Client(), Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, su := range []string{evil.URL + "/", "http://smba.trafficmanager.net/emea/", "https://smba.trafficmanager.net.evil.example/", "http://localhost:3978/"} {
		_, err := c.SendToConversation(ctx, su, threadID, &Activity{Text: "x"})
		if !errors.Is(err, ErrUntrustedServiceURL) {
			t.Errorf("%s: err = %v", su, err)
		}
		if _, err := c.CreateConversation(ctx, su, ConversationParameters{}); !errors.Is(err, ErrUntrustedServiceURL) {
			t.Errorf("%s create: err = %v", su, err)
		}
		if _, err := c.GetMember(ctx, su, threadID, "29:x"); !errors.Is(err, ErrUntrustedServiceURL) {
			t.Errorf("%s get member: err = %v", su, err)
		}
	}
	if evilHits.Load() != 0 || tokens.calls.Load() != 0 {
		t.Errorf("untrusted host got %d requests; token fetched %d times", evilHits.Load(), tokens.calls.Load())
	}
	if !strings.Contains(logs.String(), "refusing to call untrusted serviceUrl") || strings.Contains(logs.String(), testBearer) {
		t.Errorf("log = %s", logs.String())
	}
}

func TestConnectorTokenFailureSendsNothing(t *testing.T) {
	tests := []struct {
		name   string
		tokens *countingTokens
	}{
		{"token error", &countingTokens{err: &TokenError{StatusCode: 401, Code: "invalid_client", ErrorCodes: []int{7000215}}}},
		{"empty token", &countingTokens{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeConnector(t) // no request expected
			c := f.connector(t, func(cfg *ConnectorConfig) { cfg.Tokens = tt.tokens })
			_, err := c.SendToConversation(t.Context(), f.serviceURL(), threadID, &Activity{Text: "x"})
			if err == nil {
				t.Fatal("sent without a token")
			}
			var te *TokenError
			if tt.tokens.err != nil && !errors.As(err, &te) {
				t.Errorf("err = %v, want the TokenError", err)
			}
		})
	}
}

func TestConnectorDevModeNoToken(t *testing.T) {
	f := newFakeConnector(t, wantRequest{method: "POST", requestURI: "/v3/conversations/c1/activities", body: `{"type":"message","text":"x","conversation":{"id":"c1"}}`, status: 200, respBody: `{"id":"1"}`})
	f.bearer = ""
	c, err := NewConnector(ConnectorConfig{Trust: ServiceURLPolicy{AllowLoopback: true}, HTTPClient: f.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if id, err := c.SendToConversation(t.Context(), f.serviceURL(), "c1", &Activity{Text: "x"}); err != nil || id != "1" {
		t.Fatalf("SendToConversation = %q, %v", id, err)
	}
	if _, err := NewConnector(ConnectorConfig{}); err == nil {
		t.Error("connector without any trusted host accepted")
	}
}

// failingTransport fails every request without sending it.
type failingTransport struct{ calls atomic.Int32 }

func (t *failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	t.calls.Add(1)
	return nil, errors.New("connection reset")
}

func TestConnectorTransportErrors(t *testing.T) {
	tests := []struct {
		name      string
		call      func(c *Connector) error
		wantCalls int32
	}{
		{"POST not retried (may have been delivered)", func(c *Connector) error {
			_, err := c.SendToConversation(t.Context(), "https://smba.trafficmanager.net/emea/", threadID, &Activity{})
			return err
		}, 1},
		{"PUT retried", func(c *Connector) error {
			return c.UpdateActivity(t.Context(), "https://smba.trafficmanager.net/emea/", threadID, "1", &Activity{})
		}, 4},
		{"DELETE retried", func(c *Connector) error {
			return c.DeleteActivity(t.Context(), "https://smba.trafficmanager.net/emea/", threadID, "1")
		}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &failingTransport{}
			c, err := NewConnector(ConnectorConfig{Tokens: &countingTokens{token: testBearer}, Trust: ServiceURLPolicy{TrustedHosts: []string{"smba.trafficmanager.net"}}, HTTPClient: &http.Client{Transport: tr}})
			if err != nil {
				t.Fatal(err)
			}
			c.newBackOff = func() backoff.BackOff { return backoff.NewConstantBackOff(time.Millisecond) }
			if err := tt.call(c); err == nil || strings.Contains(err.Error(), testBearer) {
				t.Fatalf("err = %v", err)
			}
			if got := tr.calls.Load(); got != tt.wantCalls {
				t.Errorf("%d attempts, want %d", got, tt.wantCalls)
			}
		})
	}
}

func TestConnectorLongErrorMessageTruncated(t *testing.T) {
	long := strings.Repeat("x", 100_000)
	f := newFakeConnector(t, wantRequest{method: "DELETE", requestURI: "/v3/conversations/c/activities/1", status: 400, respBody: `{"error":{"code":"BadArgument","message":"` + long + `"}}`})
	err := f.connector(t, nil).DeleteActivity(t.Context(), f.serviceURL(), "c", "1")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || len(apiErr.Message) > 400 {
		t.Fatalf("err = %.200v", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"3", 3 * time.Second, true},
		{" 0 ", 0, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{"Mon, 02 Mar 2026 10:00:30 GMT", 30 * time.Second, true},
		{"Mon, 02 Mar 2026 09:00:00 GMT", 0, true},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestConnectorDoesNotFollowRedirects: a redirect from a trusted host must
// not carry the token anywhere else.
func TestConnectorDoesNotFollowRedirects(t *testing.T) {
	var otherHits atomic.Int32
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherHits.Add(1)
		if r.Header.Get("Authorization") != "" {
			t.Error("token forwarded on redirect")
		}
	}))
	t.Cleanup(other.Close)
	f := newFakeConnector(t, wantRequest{method: "PUT", requestURI: "/v3/conversations/c/activities/1",
		body: `{"type":"message","id":"1","conversation":{"id":"c"}}`, status: http.StatusTemporaryRedirect,
		header: map[string]string{"Location": other.URL + "/steal"}})
	err := f.connector(t, nil).UpdateActivity(t.Context(), f.serviceURL(), "c", "1", &Activity{})
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("err = %v, want an APIError for the 307", err)
	}
	if otherHits.Load() != 0 {
		t.Error("redirect followed")
	}
}
