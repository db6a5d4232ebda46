package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/gatebot/gatebot/replicas"
)

// readyChecks returns /readyz's status and its replicas check.
func readyChecks(t *testing.T, addr string) (int, string) {
	t.Helper()
	res, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var rep struct {
		Checks map[string]string `json:"checks"`
	}
	if err := json.NewDecoder(res.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, rep.Checks["replicas"]
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestServeReplicasOnOneRedis: three gatebots on one Redis prefix. Two
// with different configs (a rolling upgrade adding a pipeline) stay ready
// and say that they disagree, in /readyz and once in the log; when the old
// one stops they agree again. A gatebot of another bot registration is
// refused at start with a message naming the prefix setting.
func TestServeReplicasOnOneRedis(t *testing.T) {
	mr := miniredis.RunT(t)
	getenv := env(map[string]string{"REDIS_URL": "redis://" + mr.Addr() + "/0"})
	old := string(exampleConfig)
	next := old + `
  deploy-web:
    provider: demo
    description: The web front end
    approval: {required: 1, timeout: 1h}
`
	hooks := func() *serveHooks { return &serveHooks{heartbeat: 50 * time.Millisecond} }
	a, aLogs, stopA := startServeWith(t, old, getenv, hooks())
	if code, rep := readyChecks(t, a); code != http.StatusOK || !strings.HasPrefix(rep, "ok: 1 live") {
		t.Fatalf("one replica: /readyz %d, replicas %q", code, rep)
	}
	b, bLogs, _ := startServeWith(t, next, getenv, hooks())
	waitFor(t, "the replicas to see each other", func() bool {
		code, rep := readyChecks(t, b)
		return code == http.StatusOK && strings.Contains(rep, "2 live replicas disagree")
	})
	waitFor(t, "the old replica's /readyz to say they disagree", func() bool {
		code, rep := readyChecks(t, a)
		return code == http.StatusOK && strings.Contains(rep, "disagree")
	})
	if _, body := get(t, "http://"+b+"/metrics"); !strings.Contains(body, "gatebot_replicas 2") || !strings.Contains(body, "gatebot_replica_configs 2") {
		t.Errorf("/metrics does not show 2 replicas on 2 configs:\n%s", grepLines(body, "gatebot_replica"))
	}
	waitFor(t, "a log line on the new replica", func() bool { return strings.Contains(bLogs.String(), "replicas disagree") })
	time.Sleep(200 * time.Millisecond) // four more heartbeats: still one line
	if n := strings.Count(bLogs.String(), "replicas disagree"); n != 1 {
		t.Errorf("the disagreement was logged %d times, want once", n)
	}

	stopA()
	if !strings.Contains(aLogs.String(), "shutting down") {
		t.Fatalf("replica a did not shut down:\n%s", aLogs.String())
	}
	waitFor(t, "the new replica to be alone", func() bool {
		_, rep := readyChecks(t, b)
		return strings.HasPrefix(rep, "ok: 1 live")
	})
	if !strings.Contains(bLogs.String(), "replicas agree") {
		t.Errorf("no log line says the replicas agree again:\n%s", bLogs.String())
	}

	// Another bot registration on the same prefix: refused at start.
	foreign := strings.Replace(next, "  insecure_skip_auth: true", "  insecure_skip_auth: true\n  app_id: 11111111-2222-3333-4444-555555555555", 1)
	path := filepath.Join(t.TempDir(), "gatebot.yaml")
	if err := os.WriteFile(path, []byte(foreign), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err := serve(ctx, []string{"--config", path}, getenv, io.Discard, io.Discard, &serveHooks{listen: "127.0.0.1:0"})
	if !errors.Is(err, replicas.ErrForeignDeployment) || !strings.Contains(err.Error(), "redis.prefix") || !strings.Contains(err.Error(), `"local-dev"`) {
		t.Fatalf("serve of another deployment on the prefix = %v, want ErrForeignDeployment naming the other deployment and redis.prefix", err)
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
