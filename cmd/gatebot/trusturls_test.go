package main

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatebot/gatebot/bot"
)

// TestTrustedServiceURLsCheck: plain http entries are accepted only for a
// loopback host, so the bearer token never crosses the network in clear.
func TestTrustedServiceURLsCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url     string
		problem string // "" = accepted
	}{
		{"https://smba.trafficmanager.net/", ""},
		{"http://localhost:56150", ""},
		{"http://127.0.0.1:3978/_connector", ""},
		{"http://127.5.6.7", ""},
		{"http://[::1]:9000/", ""},
		{"http://10.0.0.5:8080", "plain http is allowed only for a loopback host"},
		{"http://smba.trafficmanager.net/", "plain http is allowed only for a loopback host"},
		{"http://localhost.evil.example/", "plain http is allowed only for a loopback host"},
		{"ftp://localhost/", "must be an https URL"},
		{"localhost:3978", "must be an https URL"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			doc := `
listen: "127.0.0.1:3978"
bot: {app_id: app, app_password: pw, tenant_id: 11111111-1111-1111-1111-111111111111, trusted_service_urls: ["` + tt.url + `"]}
redis: {url: "redis://127.0.0.1:6379/0"}
providers: {demo: {type: simulated}}
pipelines: {demo: {provider: demo}}
`
			err := checkConfig(t, doc, env(nil))
			switch {
			case tt.problem == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.problem != "" && (err == nil || !strings.Contains(err.Error(), "bot.trusted_service_urls: ") || !strings.Contains(err.Error(), tt.problem)):
				t.Fatalf("want problem %q, got %v", tt.problem, err)
			}
		})
	}
}

// TestBotSideTrustsLoopbackHTTP checks the policy serve builds with auth
// on: listed http loopback hosts, plus localhost and 127.0.0.1 when the
// Emulator is allowed, and nothing else over http.
func TestBotSideTrustsLoopbackHTTP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		urls     []string
		emulator bool
		url      string
		ok       bool
	}{
		{"listed local connector", []string{"http://127.0.0.1:4000"}, false, "http://127.0.0.1:5000/x", true},
		{"unlisted loopback", []string{"http://127.0.0.1:4000"}, false, "http://localhost:5000", false},
		{"emulator off", nil, false, "http://localhost:56150", false},
		{"emulator localhost", nil, true, "http://localhost:56150", true},
		{"emulator 127.0.0.1", nil, true, "http://127.0.0.1:56150", true},
		{"emulator other loopback", nil, true, "http://127.0.0.2:56150", false},
		{"emulator keeps teams", nil, true, "https://smba.trafficmanager.net/emea/", true},
		{"http entry is not https trust", []string{"http://localhost:1"}, false, "https://localhost:1", false},
		{"explicit list replaces cloud hosts", []string{"http://localhost:1"}, false, "https://smba.trafficmanager.net/emea/", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := BotConfig{AppID: "app", AppPassword: "pw", Cloud: "public", TrustedServiceURLs: tt.urls, AllowEmulator: tt.emulator,
				// Nothing listens there: Warm fails at once and is only logged.
				OpenIDMetadataURL: "http://127.0.0.1:1/meta", TokenURL: "http://127.0.0.1:1/token"}
			hc := &http.Client{Timeout: time.Second}
			_, _, trust, err := botSide(t.Context(), c, hc, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
			if err != nil {
				t.Fatal(err)
			}
			err = trust.Check(tt.url)
			if tt.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok && !errors.Is(err, bot.ErrUntrustedServiceURL) {
				t.Fatalf("err = %v, want ErrUntrustedServiceURL", err)
			}
		})
	}
}
