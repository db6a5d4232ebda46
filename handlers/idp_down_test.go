package handlers_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/bot"
	"github.com/gatebot/gatebot/handlers"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMessagesColdKeysIdPDown: gatebot started while the Bot Framework
// identity provider answers 503 has no signing keys. Every turn is a bare
// 401 with a warn log line giving the reason, nothing is processed; once
// the IdP answers again, turns are served within the cold retry interval
// (a few seconds on gatebot's clock; a fake clock here).
func TestMessagesColdKeysIdPDown(t *testing.T) {
	t.Parallel()
	signer := newTestIdP(t) // for its key and token signing only
	var down atomic.Bool
	down.Store(true)
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/metadata":
			json.NewEncoder(w).Encode(map[string]any{"issuer": "https://api.botframework.com", "jwks_uri": "http://" + r.Host + "/keys"})
		case "/keys":
			json.NewEncoder(w).Encode(map[string]any{"keys": []any{map[string]any{
				"kty": "RSA", "use": "sig", "kid": "k1", "endorsements": []string{"msteams"},
				"n": base64.RawURLEncoding.EncodeToString(signer.key.N.Bytes()),
				"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(signer.key.E)).Bytes()),
			}}})
		default:
			http.NotFound(w, r)
		}
	}))
	defer idp.Close()
	var (
		clockMu sync.Mutex
		now     = time.Now()
	)
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	auth, err := bot.NewAuthenticator(bot.AuthConfig{AppID: benchAppID, OpenIDMetadataURL: idp.URL + "/metadata",
		Issuer: "https://api.botframework.com", HTTPClient: idp.Client(), Now: clock, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.Warm(t.Context()); err == nil {
		t.Fatal("Warm succeeded with the IdP down")
	}
	store, err := approvals.NewStore(redisClients(t)["miniredis"], approvals.Options{Prefix: "idpdown:"})
	if err != nil {
		t.Fatal(err)
	}
	var connectorCalls atomic.Int32
	connector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		connectorCalls.Add(1)
		w.Write([]byte(`{"id":"r1"}`))
	}))
	defer connector.Close()
	trust := bot.ServiceURLPolicy{TrustedHosts: []string{"smba.trafficmanager.net"}}
	conn, _ := bot.NewConnector(bot.ConnectorConfig{Trust: trust, HTTPClient: connector.Client()})
	h, err := handlers.New(handlers.Options{Auth: auth, Trust: trust, Tenants: bot.TenantPolicy{Allowed: []string{"tenant-1"}},
		Connector: conn, Store: store, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	header := "Bearer " + signer.token(t, nil)
	turn := func(id string) int {
		body, _ := json.Marshal(map[string]any{
			"type": "typing", "id": id, "channelId": "msteams", "serviceUrl": benchServiceURL,
			"from": map[string]any{"id": "29:x"}, "recipient": map[string]any{"id": "28:" + benchAppID},
			"conversation": map[string]any{"id": "19:c@thread.tacv2", "tenantId": "tenant-1"},
		})
		req := httptest.NewRequest(http.MethodPost, "/api/messages", bytes.NewReader(body))
		req.Header.Set("Authorization", header)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == http.StatusUnauthorized && rec.Body.Len() != 0 {
			t.Errorf("a 401 must carry no detail, got %q", rec.Body)
		}
		return rec.Code
	}
	for i := range 3 {
		if code := turn("a" + string(rune('0'+i))); code != http.StatusUnauthorized {
			t.Fatalf("turn %d with no signing keys: status %d, want 401", i, code)
		}
	}
	line := ""
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `"msg":"inbound auth failed"`) {
			line = l
			break
		}
	}
	if !strings.Contains(line, "signing keys") || !strings.Contains(line, "status 503") {
		t.Fatalf("no log line saying why the turn was refused; logs:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), strings.TrimPrefix(header, "Bearer ")) {
		t.Fatal("the token was logged")
	}

	down.Store(false)
	clockMu.Lock()
	now = now.Add(10 * time.Second) // past the cold retry interval (5 s)
	clockMu.Unlock()
	if code := turn("b1"); code != http.StatusOK {
		t.Fatalf("turn after the IdP recovered: status %d, want 200; logs:\n%s", code, logs.String())
	}
	if n := connectorCalls.Load(); n != 0 {
		t.Fatalf("refused turns reached the connector %d times", n)
	}
}
