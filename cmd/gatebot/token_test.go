package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/gatebot/gatebot/apitoken"
)

// tokenBackend is a Redis the CLI and the test share.
type tokenBackend struct {
	url, prefix string
	rdb         *redis.Client
}

func tokenBackends(t *testing.T) map[string]tokenBackend {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	prefix := "{gbtest-cli-" + hex.EncodeToString(b[:]) + "}:"
	mr := miniredis.RunT(t)
	out := map[string]tokenBackend{"miniredis": {url: "redis://" + mr.Addr() + "/0", prefix: prefix, rdb: redis.NewClient(&redis.Options{Addr: mr.Addr()})}}
	url := os.Getenv("GATEBOT_TEST_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("GATEBOT_TEST_REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if rdb.Ping(ctx).Err() != nil {
		t.Logf("real Redis at %s does not answer: running against miniredis only", url)
		return out
	}
	out["redis"] = tokenBackend{url: url, prefix: prefix, rdb: rdb}
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
		rdb.Close()
	})
	return out
}

const tokenTestConfig = `listen: "127.0.0.1:0"
bot:
  insecure_skip_auth: true
redis:
  url: "%s"
  prefix: "%s"
channels:
  releases: {service_url: "%s", conversation_id: "19:releases@thread.tacv2", tenant_id: "tenant-1"}
providers:
  sim: {type: simulated, queued_for: 1s, run_for: 1s}
pipelines:
  deploy-api:
    provider: sim
    channel: releases
    id: "62690bfb122768ed"
    approval: {step_id: "6269103a122768ee"}
  deploy-web:
    provider: sim
    channel: releases
api:
  callback_hosts: ["hooks.example.com"]
  callback_secret: "%s"
  rate_limit: 50
  rate_burst: 100
`

func writeTokenConfig(t *testing.T, b tokenBackend, serviceURL string) string {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	if serviceURL == "" {
		serviceURL = "http://127.0.0.1:1/_connector"
	}
	path := filepath.Join(t.TempDir(), "gatebot.yaml")
	yaml := fmt.Sprintf(tokenTestConfig, b.url, b.prefix, serviceURL, "whsec_"+base64.StdEncoding.EncodeToString(key))
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// cli runs gatebot with args and returns stdout, stderr and the error.
func cli(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, env(map[string]string{"USER": "alice"}), &out, &errb)
	return out.String(), errb.String(), err
}

func TestTokenCommands(t *testing.T) {
	for name, b := range tokenBackends(t) {
		t.Run(name, func(t *testing.T) {
			cfg := writeTokenConfig(t, b, "")
			ctx := context.Background()
			out, errOut, err := cli(t, "token", "create", "--config", cfg, "--name", "ci-prod",
				"--scopes", "gates:write,gates:read", "--pipelines", "62690bfb122768ed,deploy-web", "--expires", "90d", "--owner", "alice@example.com")
			if err != nil {
				t.Fatalf("create: %v\n%s", err, errOut)
			}
			secret := strings.TrimSpace(out)
			if strings.Count(out, "\n") != 1 || !apitoken.WellFormed(secret) {
				t.Fatalf("stdout should be the token alone: %q", out)
			}
			for _, w := range []string{"ci-prod", "tok_", "gates:read,gates:write", "deploy-api, deploy-web", "owner alice@example.com", "expires " + time.Now().UTC().Add(90*24*time.Hour).Format("2006-01-02"), "only time"} {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q: %s", w, errOut)
				}
			}
			if strings.Contains(errOut, secret) {
				t.Error("the token is printed twice")
			}
			store, _ := apitoken.NewStore(b.rdb, apitoken.Options{Prefix: b.prefix})
			tok, err := store.Authenticate(ctx, secret)
			if err != nil || tok.Creator != "alice" || tok.Owner != "alice@example.com" || tok.OwnerUPN() != "alice@example.com" || !tok.MayAccess("deploy-api") || !tok.Has(apitoken.ScopeWrite) || tok.MayAccess("other") {
				t.Fatalf("created token: %+v %v", tok, err)
			}

			if _, _, err := cli(t, "token", "create", "--config", cfg, "--name", "ci-prod", "--pipelines", "*"); !errors.Is(err, apitoken.ErrNameTaken) {
				t.Errorf("duplicate name: %v", err)
			}
			out, errOut, err = cli(t, "token", "create", "--config", cfg, "--name", "reader", "--pipelines", "*", "--expires", "never")
			if err != nil || !strings.Contains(errOut, "no owner") {
				t.Fatal(err, errOut)
			}
			readerTok, _ := store.Authenticate(ctx, strings.TrimSpace(out))

			out, _, err = cli(t, "token", "list", "--config", cfg)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], "ci-prod") || !strings.Contains(lines[1], "active") ||
				!strings.Contains(lines[0], "OWNER") || !strings.Contains(lines[1], "alice@example.com") || strings.Contains(lines[2], "@") ||
				!strings.Contains(lines[2], "reader") || !strings.Contains(lines[2], "never") || strings.Contains(out, "gbt_") {
				t.Errorf("list:\n%s", out)
			}

			// Flags may follow the name.
			out, _, err = cli(t, "token", "revoke", "ci-prod", "--config", cfg, "--by", "bob")
			if err != nil || !strings.Contains(out, "Revoked token ci-prod") {
				t.Fatalf("revoke: %v %s", err, out)
			}
			if _, err := store.Authenticate(ctx, secret); !errors.Is(err, apitoken.ErrRevoked) {
				t.Errorf("after revoke: %v", err)
			}
			if _, _, err := cli(t, "token", "revoke", "--config", cfg, readerTok.ID); err != nil {
				t.Errorf("revoke by id: %v", err)
			}
			if _, _, err := cli(t, "token", "revoke", "--config", cfg, "nobody"); !errors.Is(err, apitoken.ErrNotFound) {
				t.Errorf("revoke unknown: %v", err)
			}
			out, _, err = cli(t, "token", "list", "--config", cfg, "--json")
			if err != nil {
				t.Fatal(err)
			}
			var entries []tokenListEntry
			dec := json.NewDecoder(strings.NewReader(out))
			for dec.More() {
				var e tokenListEntry
				if err := dec.Decode(&e); err != nil {
					t.Fatal(err)
				}
				entries = append(entries, e)
			}
			if len(entries) != 2 || entries[0].Status != "revoked" || entries[0].RevokedBy != "bob" || entries[0].Owner != "alice@example.com" || entries[1].Owner != "" || entries[1].Status != "revoked" || entries[0].LastUsed.IsZero() {
				t.Errorf("list --json: %+v", entries)
			}
		})
	}
}

func TestTokenCommandRefusals(t *testing.T) {
	b := tokenBackends(t)["miniredis"]
	cfg := writeTokenConfig(t, b, "")
	noRedis := filepath.Join(t.TempDir(), "dev.yaml")
	os.WriteFile(noRedis, exampleConfig, 0o600)
	cases := []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{"no subcommand", []string{"token"}, true, "no subcommand"},
		{"unknown subcommand", []string{"token", "rotate"}, true, "unknown subcommand"},
		{"no name", []string{"token", "create", "--config", cfg, "--pipelines", "*"}, true, "--name and --pipelines"},
		{"no pipelines", []string{"token", "create", "--config", cfg, "--name", "x"}, true, "--name and --pipelines"},
		{"bad expiry", []string{"token", "create", "--config", cfg, "--name", "x", "--pipelines", "*", "--expires", "soon"}, true, "--expires"},
		{"zero expiry", []string{"token", "create", "--config", cfg, "--name", "x", "--pipelines", "*", "--expires", "0d"}, true, "--expires"},
		{"unknown flag", []string{"token", "create", "--config", cfg, "--nmae", "x"}, true, "nmae"},
		{"stray argument", []string{"token", "list", "--config", cfg, "extra"}, true, "unexpected"},
		{"revoke without name", []string{"token", "revoke", "--config", cfg}, true, "the token (NAME"},
		{"unknown pipeline", []string{"token", "create", "--config", cfg, "--name", "x", "--pipelines", "deploy-ap"}, false, "known: deploy-api, deploy-web"},
		{"unknown scope", []string{"token", "create", "--config", cfg, "--name", "x", "--pipelines", "*", "--scopes", "admin"}, false, "admin"},
		{"bad name", []string{"token", "create", "--config", cfg, "--name", "ci prod", "--pipelines", "*"}, false, "name"},
		{"owner not a upn", []string{"token", "create", "--config", cfg, "--name", "x", "--pipelines", "*", "--owner", "alice"}, false, "owner: a user principal name"},
		{"owner aad without id", []string{"token", "create", "--config", cfg, "--name", "x", "--pipelines", "*", "--owner", "aad:"}, false, "owner: aad: needs"},
		{"embedded redis", []string{"token", "list", "--config", noRedis}, false, "need redis.url"},
	}
	for _, c := range cases {
		out, _, err := cli(t, c.args...)
		var ue usageError
		if err == nil || errors.As(err, &ue) != c.usage || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v (usage error: %v), want one mentioning %q", c.name, err, errors.As(err, &ue), c.want)
		}
		if out != "" {
			t.Errorf("%s: printed %q", c.name, out)
		}
	}
	if n, _ := b.rdb.Keys(context.Background(), b.prefix+"tok:h:*").Result(); len(n) != 0 {
		t.Errorf("refused commands stored %d tokens", len(n))
	}
}

func TestAPIConfigCheck(t *testing.T) {
	secret := "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 32))
	base := string(exampleConfig)
	cases := []struct {
		name, api, want string
	}{
		{"valid", "api:\n  callback_hosts: [hooks.example.com, '*.ci.example.org', 'http://10.0.0.5:8080']\n  callback_secret: " + secret + "\n  rate_limit: 5\n  rate_burst: 10\n", ""},
		{"bad secret", "api:\n  callback_secret: hunter2\n", "api.callback_secret"},
		{"hosts without secret", "api:\n  callback_hosts: [hooks.example.com]\n", "api.callback_hosts: callbacks also need"},
		{"bad host", "api:\n  callback_hosts: ['https://hooks.example.com/path']\n  callback_secret: " + secret + "\n", "api.callback_hosts: callback host"},
		{"negative rate", "api:\n  rate_limit: -1\n", "api.rate_limit"},
		{"unknown field", "api:\n  callback_secrte: x\n", "callback_secrte"},
	}
	for _, c := range cases {
		err := checkConfig(t, base+c.api, env(nil))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error shows the secret", c.name)
		}
	}
}

// TestServeWithAPI wires it all: a token made by the CLI opens a gate
// through a served gatebot, whose card goes to the configured channel, and
// revoking it with the CLI locks it out at once.
func TestServeWithAPI(t *testing.T) {
	b := tokenBackends(t)["miniredis"]
	var mu sync.Mutex
	var creates []string
	connector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost && r.URL.Path == "/_connector/v3/conversations" {
			mu.Lock()
			creates = append(creates, string(body))
			mu.Unlock()
			io.WriteString(w, `{"id":"19:releases@thread.tacv2;messageid=1","activityId":"1"}`)
			return
		}
		io.WriteString(w, `{"id":"2"}`)
	}))
	t.Cleanup(connector.Close)
	cfg := writeTokenConfig(t, b, connector.URL+"/_connector")
	out, errOut, err := cli(t, "token", "create", "--config", cfg, "--name", "release-tool", "--scopes", "gates:write,gates:read", "--pipelines", "deploy-api")
	if err != nil {
		t.Fatalf("%v %s", err, errOut)
	}
	secret := strings.TrimSpace(out)

	ctx, cancel := context.WithCancel(t.Context())
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	var logs syncBuffer
	go func() {
		errc <- serve(ctx, []string{"--config", cfg}, env(nil), io.Discard, &logs, &serveHooks{listen: "127.0.0.1:0", ready: func(a string) { addrc <- a }})
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-errc:
		t.Fatalf("serve exited: %v\n%s", err, logs.String())
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start")
	}
	call := func(method, path, token, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := call("GET", "/api/v1/openapi.yaml", "", ""); st != 200 || !strings.HasPrefix(body, "openapi: 3.1") {
		t.Errorf("openapi.yaml: %d", st)
	}
	if st, _ := call("GET", "/api/v1/gates", "", ""); st != 401 {
		t.Errorf("no token: %d", st)
	}
	st, body := call("POST", "/api/v1/pipeline/run/notification", secret,
		`{"pipelineId":"62690bfb122768ed","stepId":"6269103a122768ee","notificationMessage":"release 7"}`)
	if st != 201 || !strings.Contains(body, `"status":"success"`) {
		t.Fatalf("run notification: %d %s\n%s", st, body, logs.String())
	}
	mu.Lock()
	if len(creates) != 1 || !strings.Contains(creates[0], "19:releases@thread.tacv2") || !strings.Contains(creates[0], "release 7") {
		t.Errorf("card not posted to the channel: %v", creates)
	}
	mu.Unlock()
	if st, body := call("GET", "/api/v1/gates?pipeline=deploy-api", secret, ""); st != 200 || !strings.Contains(body, "release 7") {
		t.Errorf("list: %d %s", st, body)
	}
	if _, _, err := cli(t, "token", "revoke", "release-tool", "--config", cfg); err != nil {
		t.Fatal(err)
	}
	if st, _ := call("GET", "/api/v1/gates", secret, ""); st != 401 {
		t.Errorf("revoked token: %d, want 401 on the very next request", st)
	}
	if strings.Contains(logs.String(), secret) {
		t.Error("the token appears in the server's logs")
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("serve: %v", err)
	}
}
