package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// manyProblems is a config a new user might write: typos, British
// spellings, English durations and values that parse but make no sense.
// `config check` must list every one of them in one run.
const manyProblems = `listen: "127.0.0.1:3978"
bot:
  insecure_skip_auth: yes please
redis:
  url: redis://127.0.0.1:6379/0
  prefx: "gb:"
approvals:
  retention: 0s
  audit_max_len: -5
providers:
  demo: {type: simulated, run_for: soon}
  hum:
    type: humanitec
    tokn: x
    org: acme
pipelines:
  deploy:
    provider: demo
    poll_every: 0s
    runners: [ops-team]
    approval:
      required: 3
      approvers: [alice@example.com, bob, "aad:not-a-guid", ALICE@example.com]
      timeout: 1 hour
      allow_self_approval: maybe
  web:
    provider: demo
    pol_every: 5s
    inputs:
      version: {type: string, requird: true}
    approval: {timeout: -30m, requried: 2}
  db:
    provider: demo
    approval:
      required: 0
      approvers: alice@example.com
api:
  rate_limit: -1
`

func TestConfigCheckListsEveryProblem(t *testing.T) {
	t.Parallel()
	err := checkConfig(t, manyProblems, env(nil))
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("want a *ConfigError, got %v", err)
	}
	want := []string{
		`bot.insecure_skip_auth: "yes please" is not true or false`,
		`redis.prefx: unknown field (line 6); did you mean prefx → prefix?`,
		`approvals.retention: 0s must be greater than zero`,
		`approvals.audit_max_len: -5 must be greater than zero`,
		`pipelines.db.approval.required: 0 must be greater than zero`,
		`pipelines.db.approval.approvers: must be a list, got "alice@example.com"`,
		`pipelines.deploy.approval.allow_self_approval: "maybe" is not true or false`,
		`pipelines.deploy.approval.timeout: "1 hour" is not a duration (use 1h)`,
		`pipelines.deploy.poll_every: 0s must be greater than zero`,
		`pipelines.web.approval.requried: unknown field (line 31); did you mean requried → required?`,
		`pipelines.web.approval.timeout: "-30m" must not be negative`,
		`pipelines.web.inputs.version.requird: unknown field (line 30); did you mean requird → required?`,
		`pipelines.web.pol_every: unknown field (line 28); did you mean pol_every → poll_every?`,
		`api.rate_limit: -1 must not be negative`,
		// insecure_skip_auth did not decode, so gatebot would start with
		// auth on: that it then lacks an app id is worth saying too.
		`bot.app_id: is required`,
		`bot.allowed_tenants: is required for a multi-tenant bot`,
		`providers.demo.run_for: "soon" is not a duration such as 90s or 5m`,
		`providers.hum.tokn: unknown field (line 14); did you mean tokn → token?`,
		`pipelines.deploy.approval.approvers[1]: "bob" is neither a UPN (name@example.com) nor aad:<object id>`,
		`pipelines.deploy.approval.approvers[2]: "aad:not-a-guid": the Entra object id after aad: must be a GUID`,
		`pipelines.deploy.approval.approvers[3]: "ALICE@example.com" is listed twice`,
		`pipelines.deploy.approval.required: is 3 but only 1 distinct approvers are listed`,
		`pipelines.deploy.runners[0]: "ops-team" is neither a UPN (name@example.com) nor aad:<object id>`,
	}
	got := strings.Join(ce.Problems, "\n")
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("problems lack %q", w)
		}
	}
	if len(ce.Problems) != len(want) {
		t.Errorf("got %d problems, want %d:\n%s", len(ce.Problems), len(want), got)
	}
	// No Go internals reach the user.
	for _, leak := range []string{"main.", "not found in type", "unmarshal", "!!"} {
		if strings.Contains(got, leak) {
			t.Errorf("problems mention %q:\n%s", leak, got)
		}
	}
}

// TestConfigShapeProblems covers each kind of shape problem on its own.
func TestConfigShapeProblems(t *testing.T) {
	t.Parallel()
	const base = "bot: {insecure_skip_auth: true}\nproviders: {demo: {type: simulated}}\n"
	cases := []struct {
		name, doc, want string
	}{
		{"unknown top-level field", "pipelnes: {}\n", "pipelnes: unknown field (line 3); did you mean pipelnes → pipelines?"},
		{"no suggestion when nothing is close", "pipelines: {d: {provider: demo, zzzzzzzz: 1}}\n", "pipelines.d.zzzzzzzz: unknown field (line 3)\n"},
		{"dash for underscore", "pipelines: {d: {provider: demo, poll-every: 5s}}\n", "did you mean poll-every → poll_every?"},
		{"number where a word is wanted", "pipelines: {d: {provider: demo, approval: {required: many}}}\n", `pipelines.d.approval.required: "many" is not a whole number`},
		{"mapping where a value is wanted", "pipelines: {d: {provider: {name: demo}}}\n", "pipelines.d.provider: must be a single value, got a mapping"},
		{"days", "pipelines: {d: {provider: demo, approval: {timeout: 2 days}}}\n", `"2 days" is not a duration (use 2d)`},
		{"minutes", "pipelines: {d: {provider: demo, poll_every: 30 mins}}\n", `"30 mins" is not a duration (use 30m)`},
		{"gibberish duration", "pipelines: {d: {provider: demo, poll_every: often}}\n", `"often" is not a duration (e.g. 90s, 1h, 30d)`},
		{"set twice", "pipelines:\n  d:\n    provider: demo\n    provider: demo\n", "pipelines.d.provider: set twice (lines 5 and 6)"},
		{"list where a mapping is wanted", "pipelines: [deploy]\n", "pipelines: must be a mapping (name: value), got a list"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := checkConfig(t, base+c.doc, env(nil))
			if err == nil || !strings.Contains(err.Error()+"\n", c.want) {
				t.Errorf("want a problem %q, got %v", c.want, err)
			}
		})
	}
}

func TestConfigCheckCommandListsEverything(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "gatebot.yaml")
	if err := os.WriteFile(path, []byte(manyProblems), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	err := run(t.Context(), []string{"config", "check", path}, env(nil), &out, &errb)
	if err == nil || exitCode(err) != 1 {
		t.Fatalf("config check of a bad file: err = %v (exit %d), want exit 1", err, exitCode(err))
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, path+": config has 23 problem(s):") {
		t.Errorf("message does not start with the file and the count:\n%s", msg)
	}
	if out.Len() != 0 {
		t.Errorf("stdout = %q", out.String())
	}
}

func TestApproverEntries(t *testing.T) {
	t.Parallel()
	for entry, ok := range map[string]bool{
		"alice@example.com":                        true,
		"a.b@contoso.onmicrosoft.com":              true,
		"aad:3f2504e0-4f89-11d3-9a0c-0305e82c3301": true,
		"aad:3F2504E0-4F89-11D3-9A0C-0305E82C3301": true,
		"alice":                 false,
		"alice@localhost":       false,
		"aad:":                  false,
		"aad:alice@example.com": false,
		"@example.com":          false,
		"a b@example.com":       false,
	} {
		if got := personEntryProblem(entry) == ""; got != ok {
			t.Errorf("%q: accepted = %v, want %v (%s)", entry, got, ok, personEntryProblem(entry))
		}
	}
}

// TestConfigCheckNamesUnsetVariables: a required value that comes from an
// unset ${NAME} is reported with the variable's name.
func TestConfigCheckNamesUnsetVariables(t *testing.T) {
	t.Parallel()
	const doc = `listen: "0.0.0.0:3978"
bot: {app_id: "${APP_ID}", app_password: "${APP_PASSWORD:-}"}
redis: {url: "${REDIS_URL:-redis://r:6379/0}"}
providers: {demo: {type: simulated}}
pipelines: {demo: {provider: demo}}
`
	err := checkConfig(t, doc, env(map[string]string{"APP_PASSWORD": "x"}))
	var ce *ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "bot.app_id: is required") {
		t.Fatalf("want bot.app_id reported, got %v", err)
	}
	// REDIS_URL has a default and APP_PASSWORD is set: only APP_ID is unset.
	if len(ce.UnsetEnv) != 1 || ce.UnsetEnv[0] != "APP_ID" || !strings.Contains(err.Error(), "so empty: ${APP_ID})") {
		t.Errorf("unset = %v:\n%v", ce.UnsetEnv, err)
	}
}

// TestConfigCheckNotify: approval.notify is channel or dm, and dm needs
// approvers to write to.
func TestConfigCheckNotify(t *testing.T) {
	t.Parallel()
	const base = `listen: "127.0.0.1:3978"
bot: {insecure_skip_auth: true}
providers:
  demo: {type: simulated}
pipelines:
  deploy:
    provider: demo
    approval: {required: 1, timeout: 1h, %s}
`
	for _, tc := range []struct {
		approval, want string
	}{
		{`approvers: [alice@example.com], notify: dm`, ""},
		{`notify: channel`, ""},
		{`notify: dm`, "pipelines.deploy.approval.notify: is dm but no approvers are listed"},
		{`approvers: [alice@example.com], notify: email`, `pipelines.deploy.approval.notify: "email" is not a notify mode (use channel or dm)`},
	} {
		err := checkConfig(t, strings.Replace(base, "%s", tc.approval, 1), env(nil))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.approval, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.approval, err, tc.want)
		}
	}
}
