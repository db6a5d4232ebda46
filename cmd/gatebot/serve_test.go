package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestServeDevModeWithoutConfig is the README's first command: no config,
// embedded Redis, dev mode. A Playground-shaped /run gets an approval card.
func TestServeDevModeWithoutConfig(t *testing.T) {
	var mu sync.Mutex
	var posted []string
	connector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Errorf("dev mode must not send tokens, got %q", r.Header.Get("Authorization"))
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		posted = append(posted, r.Method+" "+r.URL.Path+" "+string(b))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"id":"1700000000000"}`)
	}))
	defer connector.Close()
	// The Playground's serviceUrl names "localhost", not 127.0.0.1.
	serviceURL := strings.Replace(connector.URL, "127.0.0.1", "localhost", 1) + "/_connector"

	ctx, cancel := context.WithCancel(t.Context())
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	var logs syncBuffer
	go func() {
		errc <- serve(ctx, nil, env(nil), io.Discard, &logs, &serveHooks{listen: "127.0.0.1:0", ready: func(a string) { addrc <- a }})
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-errc:
		t.Fatalf("serve exited: %v\n%s", err, logs.String())
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start")
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp, err = http.Get("http://" + addr + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", resp, err)
	}
	act := map[string]any{
		"type": "message", "id": "m1", "text": "/run demo version=1.2.3", "textFormat": "plain", "channelId": "msteams",
		"serviceUrl":   serviceURL,
		"from":         map[string]any{"id": "user-id-0", "name": "Alex Wilber", "aadObjectId": "00000000-0000-0000-0000-0000000000020"},
		"recipient":    map[string]any{"id": "00000000-0000-0000-0000-00000000000011", "name": "Test Bot"},
		"conversation": map[string]any{"id": "c0ffee", "conversationType": "personal", "tenantId": "t"},
	}
	b, _ := json.Marshal(act)
	resp, err = http.Post("http://"+addr+"/api/messages", "application/json", bytes.NewReader(b))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("message: %v %v", resp, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(posted)
		var first string
		if n > 0 {
			first = posted[0]
		}
		mu.Unlock()
		if n > 0 {
			if !strings.HasPrefix(first, "POST /_connector/v3/conversations/c0ffee/activities") || !strings.Contains(first, "Approval needed") {
				t.Fatalf("unexpected connector call: %s", first)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no card posted; logs:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("serve returned %v", err)
	}
	for _, w := range []string{"EMBEDDED IN-MEMORY REDIS", "BOT FRAMEWORK AUTH IS OFF"} {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("logs lack the loud warning %q", w)
		}
	}
}

func TestServeRefusesInsecureOffLoopback(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gatebot.yaml")
	os.WriteFile(cfg, []byte(strings.Replace(string(exampleConfig), `listen: "127.0.0.1:3978"`, `listen: "0.0.0.0:3978"`, 1)), 0o600)
	var logs syncBuffer
	err := serve(t.Context(), []string{"--config", cfg}, env(nil), io.Discard, &logs, nil)
	if err == nil || !strings.Contains(err.Error(), "insecure_skip_auth: is allowed only while listening on a loopback address") {
		t.Fatalf("want a refusal naming why, got %v", err)
	}
}

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
