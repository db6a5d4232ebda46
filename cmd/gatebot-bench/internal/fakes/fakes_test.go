package fakes

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/gatebot/gatebot/standardwebhooks"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatebot/gatebot/bot"
)

const (
	testAppID = "00000000-0000-0000-0000-00000000b0b0"
	testPW    = "bench-password"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type rig struct {
	idp  *IdP
	conn *Connector
	srv  *httptest.Server
	tok  bot.TokenSource
}

func newRig(t *testing.T, now func() time.Time) *rig {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	idp, err := NewIdP(IdPConfig{AppID: testAppID, AppPassword: testPW, BaseURL: srv.URL + "/idp", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	conn := NewConnector(ConnectorConfig{Tokens: idp, Now: now})
	mux.Handle("/idp/", http.StripPrefix("/idp", idp))
	mux.Handle("/teams/", http.StripPrefix("/teams", conn))
	tok, err := bot.NewClientCredentials(bot.CredentialsConfig{TokenURL: idp.TokenURL(), ClientID: testAppID, ClientSecret: testPW, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{idp: idp, conn: conn, srv: srv, tok: tok}
}

func (r *rig) post(t *testing.T, conv string) *http.Response {
	t.Helper()
	tok, err := r.tok.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	body := `{"type":"message","attachments":[{"contentType":"application/vnd.microsoft.card.adaptive","content":{"type":"AdaptiveCard"}}]}`
	req, _ := http.NewRequest(http.MethodPost, r.srv.URL+"/teams/v3/conversations/"+url.PathEscape(conv)+"/activities", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestConnectorPacing: Teams allows 7 sends per second per conversation;
// the 8th within the second is answered 429 with Retry-After, other
// conversations are unaffected, and the window frees up after a second.
func TestConnectorPacing(t *testing.T) {
	t.Parallel()
	c := &clock{now: time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)}
	r := newRig(t, c.Now)
	for i := 1; i <= 7; i++ {
		if resp := r.post(t, "a:conv"); resp.StatusCode != http.StatusOK {
			t.Fatalf("send %d: status %d, want 200", i, resp.StatusCode)
		}
		c.Advance(100 * time.Millisecond)
	}
	resp := r.post(t, "a:conv")
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("8th send in 1 s: status %d, want 429", resp.StatusCode)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "1" {
		t.Fatalf("Retry-After = %q, want 1", ra)
	}
	if resp := r.post(t, "b:other"); resp.StatusCode != http.StatusOK {
		t.Fatalf("another conversation: status %d, want 200", resp.StatusCode)
	}
	// 8 per 2 s: one second on, the 1 s window has room but the 2 s one
	// holds 7 of 8, so one more goes through, then 429 again.
	c.Advance(400 * time.Millisecond)
	if resp := r.post(t, "a:conv"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the 1 s window: status %d, want 200", resp.StatusCode)
	}
	if resp := r.post(t, "a:conv"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("9th send in 2 s: status %d, want 429", resp.StatusCode)
	}
	st := r.conn.Stats()
	if st.Throttled != 2 || st.ByStatus[200] != 9 || st.Unauthorized != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestConnectorRefusesBadTokenAndModes(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	req, _ := http.NewRequest(http.MethodPost, r.srv.URL+"/teams/v3/conversations/x/activities", strings.NewReader(`{"type":"message"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer not.a.token")
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad token: status %d, want 401", resp.StatusCode)
	}
	r.conn.SetMode("down", ModeDown)
	r.conn.SetMode("refuse", ModeRefuse)
	r.conn.SetMode("throttle", ModeThrottle)
	r.conn.SetMode("badgw", ModeBadGateway)
	for conv, want := range map[string]int{"down": 503, "refuse": 403, "fine": 200, "throttle": 429, "badgw": 502} {
		resp := r.post(t, conv)
		if resp.StatusCode != want {
			t.Errorf("%s: status %d, want %d", conv, resp.StatusCode, want)
		}
		if ra := resp.Header.Get("Retry-After"); (want == 429) != (ra == fmt.Sprint(ThrottleRetryAfter)) {
			t.Errorf("%s: Retry-After %q", conv, ra)
		}
	}
}

// TestConnectorUnreachable: ModeUnreachable closes the connection without
// an answer, records the call with status 0, and ModeOK recovers.
func TestConnectorUnreachable(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	r.conn.SetMode("gone", ModeUnreachable)
	tok, err := r.tok.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	send := func() (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodPost, r.srv.URL+"/teams/v3/conversations/gone/activities", strings.NewReader(`{"type":"message","text":"hi"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		return r.srv.Client().Do(req)
	}
	if resp, err := send(); err == nil {
		resp.Body.Close()
		t.Fatalf("unreachable: got HTTP %d, want a closed connection", resp.StatusCode)
	}
	r.conn.SetMode("gone", ModeOK)
	resp, err := send()
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	calls := r.conn.Calls("gone")
	if resp.StatusCode != 200 || len(calls) != 2 || calls[0].Status != 0 || calls[0].OK() || !calls[1].OK() {
		t.Fatalf("after recovery: HTTP %d, calls %+v", resp.StatusCode, calls)
	}
}

// TestConnectorMarksIdenticalUpdates: an update repeating the previous
// card of an activity is flagged; a changed one is not.
func TestConnectorMarksIdenticalUpdates(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	r.post(t, "c")
	first := r.conn.Calls("c")[0]
	put := func(text string) {
		tok, _ := r.tok.Token(t.Context())
		req, _ := http.NewRequest(http.MethodPut, r.srv.URL+"/teams/v3/conversations/c/activities/"+first.ActivityID,
			strings.NewReader(fmt.Sprintf(`{"type":"message","attachments":[{"content":{"text":%q}}]}`, text)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := r.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	put("a")
	put("a")
	put("b")
	var got []bool
	for _, c := range r.conn.Calls("c")[1:] {
		got = append(got, c.Identical)
	}
	if fmt.Sprint(got) != "[false true false]" {
		t.Fatalf("identical flags = %v", got)
	}
}

// TestChannelTokenAcceptedByGatebot: the IdP's channel tokens pass
// gatebot's own validator (bot.Authenticator) fetching metadata and keys
// from the IdP, including the serviceurl and endorsement checks.
func TestChannelTokenAcceptedByGatebot(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	auth, err := bot.NewAuthenticator(bot.AuthConfig{AppID: testAppID, OpenIDMetadataURL: r.idp.MetadataURL(), HTTPClient: r.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	serviceURL := r.srv.URL + "/teams/"
	tok, err := r.idp.ChannelToken(serviceURL)
	if err != nil {
		t.Fatal(err)
	}
	id, err := auth.Authenticate(t.Context(), "Bearer "+tok)
	if err != nil {
		t.Fatalf("gatebot refused the bench's channel token: %v", err)
	}
	if err := id.Check(serviceURL, "msteams"); err != nil {
		t.Fatalf("token not bound to the activity: %v", err)
	}
	if err := id.Check(serviceURL, "webchat"); err == nil {
		t.Fatal("the key is endorsed for msteams only")
	}
	if err := id.Check("http://127.0.0.1:1/other/", "msteams"); err == nil {
		t.Fatal("the serviceurl claim must bind the token")
	}
	other, _ := bot.NewAuthenticator(bot.AuthConfig{AppID: "someone-else", OpenIDMetadataURL: r.idp.MetadataURL(), HTTPClient: r.srv.Client()})
	if _, err := other.Authenticate(t.Context(), "Bearer "+tok); err == nil {
		t.Fatal("a token for another app id must be refused")
	}
	if st := r.idp.Stats(); st.MetadataFetches == 0 || st.KeyFetches == 0 {
		t.Fatalf("validator did not use the IdP: %+v", st)
	}
}

// TestBotTokenEndpoint: the client-credentials grant gives a token the
// connector accepts; a wrong secret is refused.
func TestBotTokenEndpoint(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	tok, err := r.tok.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.idp.CheckBotToken("Bearer " + tok); err != nil {
		t.Fatal(err)
	}
	bad, _ := bot.NewClientCredentials(bot.CredentialsConfig{TokenURL: r.idp.TokenURL(), ClientID: testAppID, ClientSecret: "wrong", HTTPClient: r.srv.Client()})
	if _, err := bad.Token(context.Background()); err == nil {
		t.Fatal("a wrong client secret must be refused")
	}
	if r.idp.Stats().TokensRefused != 1 {
		t.Fatalf("stats = %+v", r.idp.Stats())
	}
}

// testSecret signs the test provider's webhooks.
const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// newTestProvider serves a fake provider checking testSecret until the
// test ends.
func newTestProvider(t *testing.T) *Provider {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p, err := NewProvider(ProviderConfig{Secret: testSecret, BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/", p)
	return p
}

func TestProviderCountsSignedTriggers(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t)
	body, _ := json.Marshal(map[string]any{"type": "gate.approved", "gate_id": "g_1"})
	send := func(sign bool) int {
		req, _ := http.NewRequest(http.MethodPost, p.HookURL("fast"), bytes.NewReader(body))
		if sign {
			now := time.Now()
			req.Header.Set("webhook-id", "gatebot-g_1")
			req.Header.Set("webhook-timestamp", fmt.Sprint(now.Unix()))
			key, _ := standardwebhooks.ParseSecret(testSecret)
			req.Header.Set("webhook-signature", standardwebhooks.Sign(key, "gatebot-g_1", now, body))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := send(false); got != http.StatusUnauthorized {
		t.Fatalf("unsigned: %d", got)
	}
	if got := send(true); got != http.StatusOK {
		t.Fatalf("signed: %d", got)
	}
	send(true)
	if n := len(p.Triggers()["g_1"]); n != 2 || p.BadSignatures() != 1 {
		t.Fatalf("triggers = %d, bad signatures = %d", n, p.BadSignatures())
	}
}

// TestProviderFailsThenThrottlesThenServes: FailFirst 503s, then
// ThrottleFirst 429s with Retry-After, then 200s, counted per gate.
func TestProviderFailsThenThrottlesThenServes(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t)
	p.SetBehaviour("x", Behaviour{FailFirst: 1, ThrottleFirst: 2, RetryAfter: 3 * time.Second})
	key, _ := standardwebhooks.ParseSecret(testSecret)
	send := func(gate string) (int, string) {
		body, _ := json.Marshal(map[string]any{"type": "gate.approved", "gate_id": gate})
		req, _ := http.NewRequest(http.MethodPost, p.HookURL("x"), bytes.NewReader(body))
		now := time.Now()
		req.Header.Set("webhook-id", "gatebot-"+gate)
		req.Header.Set("webhook-timestamp", fmt.Sprint(now.Unix()))
		req.Header.Set("webhook-signature", standardwebhooks.Sign(key, "gatebot-"+gate, now, body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	want := []struct {
		status int
		ra     string
	}{{503, ""}, {429, "3"}, {429, "3"}, {200, ""}, {200, ""}}
	for i, w := range want {
		if st, ra := send("g_a"); st != w.status || ra != w.ra {
			t.Errorf("call %d: %d Retry-After %q, want %d %q", i+1, st, ra, w.status, w.ra)
		}
	}
	if st, _ := send("g_b"); st != 503 {
		t.Errorf("another gate's first call: %d, want 503 (counted per gate)", st)
	}
}
