package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// startServe runs serve with cfg (empty: the bundled example) until the
// test ends and returns the bot listener's address and the logs.
func startServe(t *testing.T, cfg string) (string, *syncBuffer) {
	t.Helper()
	addr, logs, _ := startServeWith(t, cfg, env(nil), &serveHooks{})
	return addr, logs
}

// startServeWith is startServe with an environment and hooks; stop ends
// that serve before the test does.
func startServeWith(t *testing.T, cfg string, getenv func(string) string, hooks *serveHooks) (addr string, logs *syncBuffer, stop func()) {
	t.Helper()
	var args []string
	if cfg != "" {
		path := filepath.Join(t.TempDir(), "gatebot.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		args = []string{"--config", path}
	}
	ctx, cancel := context.WithCancel(t.Context())
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	logs = &syncBuffer{}
	hooks.listen, hooks.ready = "127.0.0.1:0", func(a string) { addrc <- a }
	go func() {
		errc <- serve(ctx, args, getenv, io.Discard, logs, hooks)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("serve returned %v", err)
			}
		})
	}
	t.Cleanup(stop)
	select {
	case a := <-addrc:
		return a, logs, stop
	case err := <-errc:
		errc <- err
		t.Fatalf("serve exited: %v\n%s", err, logs.String())
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start")
	}
	return "", nil, nil
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestServeMetricsOnTheBotListener: without metrics.listen, /metrics is
// on the bot's port, with the build, open-gates and Go runtime series.
func TestServeMetricsOnTheBotListener(t *testing.T) {
	addr, _ := startServe(t, "")
	code, body := get(t, "http://"+addr+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{`gatebot_build_info{goversion="go`, `gatebot_open_gates{state="pending"} 0`, "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestServeMetricsListen: with metrics.listen, /metrics moves to its own
// listener and leaves the (often public) bot port.
func TestServeMetricsListen(t *testing.T) {
	port := freePort(t)
	cfg := string(exampleConfig) + fmt.Sprintf("\nmetrics:\n  listen: \"127.0.0.1:%d\"\n", port)
	addr, logs := startServe(t, cfg)
	if code, _ := get(t, "http://"+addr+"/metrics"); code != http.StatusNotFound {
		t.Errorf("bot listener /metrics = %d, want 404", code)
	}
	code, body := get(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if code != http.StatusOK || !strings.Contains(body, "gatebot_build_info") {
		t.Errorf("metrics listener /metrics = %d:\n%s", code, body)
	}
	if !strings.Contains(logs.String(), "metrics listening") {
		t.Errorf("no log line says where metrics listen:\n%s", logs.String())
	}
}

func TestLogFormatDefault(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		dev  bool
		want string
	}{{true, "text"}, {false, "json"}} {
		c := Config{Bot: BotConfig{InsecureSkipAuth: tt.dev}}
		c.applyDefaults()
		if c.Log.Format != tt.want {
			t.Errorf("dev mode %v: log.format = %q, want %q", tt.dev, c.Log.Format, tt.want)
		}
	}
}
