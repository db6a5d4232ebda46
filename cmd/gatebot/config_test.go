package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func checkConfig(t *testing.T, yaml string, getenv func(string) string) error {
	t.Helper()
	c, err := parseConfig([]byte(yaml), getenv)
	var shape *ConfigError
	if c == nil || (err != nil && !errors.As(err, &shape)) {
		return err
	}
	c.applyDefaults()
	_, err = c.validateAll(shape, providerRegistry(nil, nil))
	return err
}

func TestExampleConfigIsValid(t *testing.T) {
	if err := checkConfig(t, string(exampleConfig), env(nil)); err != nil {
		t.Fatalf("the bundled example config must be valid: %v", err)
	}
}

func TestConfigProblemsAllAtOnce(t *testing.T) {
	const doc = `
listen: "0.0.0.0:3978"
bot:
  insecure_skip_auth: true
providers:
  demo: {type: simulated}
  odd: {type: nosuch}
pipelines:
  deploy:
    provider: missing
    channel: nowhere
    inputs:
      version: {type: strnig}
      tag: {type: string, pattern: "("}
    approval:
      required: 3
      approvers: [a@example.com, b@example.com]
`
	err := checkConfig(t, doc, env(nil))
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("want a *ConfigError, got %v", err)
	}
	want := []string{
		"bot.insecure_skip_auth: is allowed only while listening on a loopback address",
		`providers.odd.type: "nosuch" is not a provider type`,
		`pipelines.deploy.provider: "missing" is not a configured provider`,
		`pipelines.deploy.channel: "nowhere" is not a configured channel`,
		"pipelines.deploy.approval.required: is 3 but only 2 distinct approvers are listed",
		`pipelines.deploy: inputs.version.type: "strnig" is not one of string, number, boolean`,
		"pipelines.deploy: inputs.tag.pattern:",
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("problems lack %q:\n%v", w, err)
		}
	}
	if len(ce.Problems) != len(want) {
		t.Errorf("got %d problems, want %d:\n%v", len(ce.Problems), len(want), err)
	}
}

func TestConfigRequiresAuthOutsideDevMode(t *testing.T) {
	const doc = `
providers: {demo: {type: simulated}}
pipelines: {demo: {provider: demo}}
`
	err := checkConfig(t, doc, env(nil))
	for _, w := range []string{"bot.app_id: is required", "redis.url: is required outside dev mode"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("want problem %q, got %v", w, err)
		}
	}
}

func TestConfigUnknownFieldsRefused(t *testing.T) {
	const doc = `
bot: {insecure_skip_auth: true}
providers: {demo: {type: simulated, quued_for: 2s}}
pipelines: {demo: {provider: demo, aproval: {required: 1}}}
`
	err := checkConfig(t, doc, env(nil))
	if err == nil || !strings.Contains(err.Error(), "aproval") {
		t.Fatalf("a misspelt pipeline field must be refused, got %v", err)
	}
	const doc2 = `
bot: {insecure_skip_auth: true}
providers: {demo: {type: simulated, quued_for: 2s}}
pipelines: {demo: {provider: demo}}
`
	err = checkConfig(t, doc2, env(nil))
	if err == nil || !strings.Contains(err.Error(), "quued_for") {
		t.Fatalf("a misspelt provider field must be refused, got %v", err)
	}
}

func TestConfigEnvExpansion(t *testing.T) {
	const doc = `
listen: "${LISTEN:-127.0.0.1:4000}"
bot:
  app_id: ${APP_ID}
  app_password: "${APP_PASSWORD}"
redis: {url: "${REDIS_URL}"}
providers: {demo: {type: simulated}}
pipelines: {demo: {provider: demo, approval: {timeout: 2d}}}
`
	// A secret with YAML syntax in it must stay a plain value.
	c, err := parseConfig([]byte(doc), env(map[string]string{"APP_ID": "abc", "APP_PASSWORD": "p: #x\n- y", "REDIS_URL": "redis://r:6379/1"}))
	if err != nil {
		t.Fatal(err)
	}
	c.applyDefaults()
	if c.Listen != "127.0.0.1:4000" || c.Bot.AppID != "abc" || c.Bot.AppPassword.Reveal() != "p: #x\n- y" || c.Redis.URL != "redis://r:6379/1" {
		t.Fatalf("expansion wrong: %+v", c)
	}
	if got := time.Duration(c.Pipelines["demo"].Approval.Timeout); got != 48*time.Hour {
		t.Errorf("timeout 2d = %v", got)
	}
	if s := c.Bot.AppPassword.String(); strings.Contains(s, "p:") {
		t.Errorf("Secret.String leaks the value: %q", s)
	}
}

func TestConfigCheckCommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, exampleConfig, 0o600)
	var out bytes.Buffer
	if err := run(t.Context(), []string{"config", "check", good}, env(nil), &out, &out); err != nil {
		t.Fatalf("config check of the example: %v", err)
	}
	if !strings.Contains(out.String(), "ok (1 pipelines") {
		t.Errorf("output: %q", out.String())
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("pipelines: {x: {provider: y}}\n"), 0o600)
	err := run(t.Context(), []string{"config", "check", bad}, env(nil), &out, &out)
	if err == nil || !strings.Contains(err.Error(), `pipelines.x.provider: "y" is not a configured provider`) {
		t.Fatalf("want the problem named, got %v", err)
	}
	if err := run(t.Context(), []string{"config"}, env(nil), &out, &out); !errors.As(err, new(usageError)) {
		t.Errorf("missing subcommand should be a usage error, got %v", err)
	}
}

func TestEveryProviderTypeConfigures(t *testing.T) {
	data, err := os.ReadFile("testdata/all-providers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tokens := env(map[string]string{"HUMANITEC_TOKEN": "h", "NF_TOKEN": "n", "YUNXIAO_TOKEN": "pt-y", "HUAWEI_TOKEN": "c", "HUAWEI_IAM_PASSWORD": "pw",
		"OPSERA_TOKEN": "o", "GITHUB_TOKEN": "g", "GITLAB_TOKEN": "l", "AZURE_DEVOPS_PAT": "a", "JENKINS_API_TOKEN": "j"})
	c, err := parseConfig(data, tokens)
	if err != nil {
		t.Fatal(err)
	}
	c.applyDefaults()
	reg := providerRegistry(nil, nil)
	built, err := c.validate(reg)
	if err != nil {
		t.Fatalf("the documented provider examples must be valid: %v", err)
	}
	seen := map[string]bool{}
	for _, p := range c.Providers {
		seen[p.Type] = true
	}
	for _, typ := range reg.types() {
		if !seen[typ] {
			t.Errorf("provider type %s has no example in testdata/all-providers.yaml", typ)
		}
	}
	if len(built) != len(c.Providers) {
		t.Errorf("built %d of %d providers", len(built), len(c.Providers))
	}
}

func TestManifestCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "app.zip")
	var buf bytes.Buffer
	err := run(t.Context(), []string{"manifest", "--out", out, "--app-id", "00000000-0000-0000-0000-0000000000a1",
		"--website-url", "https://gatebot.example.com"}, env(nil), &buf, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
		t.Fatalf("no package written: %v", err)
	}
	err = run(t.Context(), []string{"manifest", "--out", filepath.Join(t.TempDir(), "x.zip")}, env(nil), &buf, &buf)
	if err == nil || !strings.Contains(err.Error(), "--app-id") {
		t.Fatalf("a missing app id must be named, got %v", err)
	}
}

// TestCodeArtsV3ActionNamesServiceStage: the release task API that older
// configs reached with `type: codearts, api: v3-action` is ServiceStage's,
// and config check says which provider type to use instead.
func TestCodeArtsV3ActionNamesServiceStage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.yaml")
	os.WriteFile(path, []byte(`bot: {insecure_skip_auth: true}
providers:
  ca: {type: codearts, base_url: https://cloudpipeline-ext.cn-north-4.myhuaweicloud.com, token: t0ken, project_id: "0a1b2c3d", api: v3-action}
pipelines:
  release: {provider: ca, target: {pipeline_id: caf409b1-10df-483a-b14d-7b05f7e12c88, approval_task: prod-approval}}
`), 0o600)
	var out bytes.Buffer
	err := run(t.Context(), []string{"config", "check", path}, env(nil), &out, &out)
	if err == nil {
		t.Fatal("config check accepted type: codearts with api: v3-action")
	}
	for _, want := range []string{"providers.ca: api v3-action is ServiceStage's release task API", "type: servicestage"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("config check error lacks %q:\n%v", want, err)
		}
	}
	// The same config as a servicestage provider passes.
	os.WriteFile(path, []byte(`bot: {insecure_skip_auth: true}
providers:
  ss: {type: servicestage, base_url: https://servicestage.cn-north-4.myhuaweicloud.com, token: t0ken, project_id: "0a1b2c3d"}
pipelines:
  release: {provider: ss, target: {pipeline_id: caf409b1-10df-483a-b14d-7b05f7e12c88, approval_task: prod-approval}}
`), 0o600)
	if err := run(t.Context(), []string{"config", "check", path}, env(nil), &out, &out); err != nil {
		t.Errorf("servicestage config: %v", err)
	}
}
