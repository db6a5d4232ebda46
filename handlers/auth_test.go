package handlers_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/bot"
	"github.com/gatebot/gatebot/handlers"
	"github.com/gatebot/gatebot/pipelines"
)

// TestMessagesEndpointAuth drives POST /api/messages with real Bot
// Framework tokens: every bad token is a bare 401 and nothing is processed
// (no gate, no connector call); a valid one is served.
func TestMessagesEndpointAuth(t *testing.T) {
	idp := newTestIdP(t)
	store, err := approvals.NewStore(redisClients(t)["miniredis"], approvals.Options{Prefix: "authtest:"})
	if err != nil {
		t.Fatal(err)
	}
	connectorCalls := 0
	connector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { connectorCalls++ }))
	defer connector.Close()
	trust := bot.ServiceURLPolicy{TrustedHosts: []string{"smba.trafficmanager.net"}}
	conn, _ := bot.NewConnector(bot.ConnectorConfig{Trust: trust, HTTPClient: connector.Client()})
	def := &pipelines.Definition{Name: "demo"}
	h, err := handlers.New(handlers.Options{Auth: idp.auth, Trust: trust, Tenants: bot.TenantPolicy{Allowed: []string{"tenant-1"}}, Connector: conn, Store: store,
		Pipelines: map[string]*handlers.Pipeline{"demo": {Def: def, Provider: &fakeProvider{}, Policy: approvals.Policy{Required: 1, Timeout: time.Hour}}}})
	if err != nil {
		t.Fatal(err)
	}
	activity := func(typ, channel, serviceURL string) []byte {
		b, _ := json.Marshal(map[string]any{
			"type": typ, "id": "a1", "channelId": channel, "serviceUrl": serviceURL, "text": "/run demo",
			"from": map[string]any{"id": "29:x"}, "recipient": map[string]any{"id": "28:" + benchAppID},
			"conversation": map[string]any{"id": "19:c@thread.tacv2"},
		})
		return b
	}
	valid := "Bearer " + idp.token(t, nil)
	cases := []struct {
		name   string
		header string
		body   []byte
		want   int
	}{
		{"no Authorization header", "", activity("message", "msteams", benchServiceURL), 401},
		{"wrong scheme", "Basic " + idp.token(t, nil), activity("message", "msteams", benchServiceURL), 401},
		{"garbage token", "Bearer not.a.jwt", activity("message", "msteams", benchServiceURL), 401},
		{"expired", "Bearer " + idp.token(t, jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix()}), activity("message", "msteams", benchServiceURL), 401},
		{"wrong audience", "Bearer " + idp.token(t, jwt.MapClaims{"aud": "someone-else"}), activity("message", "msteams", benchServiceURL), 401},
		{"wrong issuer", "Bearer " + idp.token(t, jwt.MapClaims{"iss": "https://evil.example.com"}), activity("message", "msteams", benchServiceURL), 401},
		{"serviceurl claim differs from the body", valid, activity("message", "msteams", "https://smba.trafficmanager.net/amer/"), 401},
		{"key not endorsed for the channel", valid, activity("message", "webchat", benchServiceURL), 401},
		{"valid token, ignored activity type", valid, activity("typing", "msteams", benchServiceURL), 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/api/messages", bytes.NewReader(c.body))
			if c.header != "" {
				req.Header.Set("Authorization", c.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != c.want {
				t.Fatalf("status %d, want %d", rec.Code, c.want)
			}
			if body, _ := io.ReadAll(rec.Body); c.want == 401 && len(body) != 0 {
				t.Errorf("a 401 must carry no detail, got %q", body)
			}
		})
	}
	gates, _, err := store.List(t.Context(), approvals.ListQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(gates) != 0 || connectorCalls != 0 {
		t.Fatalf("rejected requests were processed: %d gates, %d connector calls", len(gates), connectorCalls)
	}
}
