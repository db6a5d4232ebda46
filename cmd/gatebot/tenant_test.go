package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigTenants: a multi-tenant bot must say which tenants it serves
// outside dev mode; a single-tenant bot serves its own by default; API
// channels must be in an allowed tenant.
func TestConfigTenants(t *testing.T) {
	t.Parallel()
	const t1, t2 = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
	base := func(bot string) string {
		return "bot: {app_id: app, app_password: pw" + bot + "}\nredis: {url: redis://127.0.0.1:6379}\n" +
			"providers: {demo: {type: simulated}}\npipelines: {demo: {provider: demo}}\n"
	}
	cases := []struct {
		name string
		doc  string
		want []string // problems; none means valid
	}{
		{"multi-tenant without allowed_tenants", base(""), []string{"bot.allowed_tenants: is required for a multi-tenant bot"}},
		{"multi-tenant serving any tenant", base(`, allowed_tenants: ["*"]`), nil},
		{"multi-tenant with a list", base(", allowed_tenants: [" + t1 + ", " + t2 + "]"), nil},
		{"single tenant", base(", tenant_id: " + t1), nil},
		{"star mixed with ids", base(`, allowed_tenants: ["*", "` + t1 + `"]`), []string{`bot.allowed_tenants: "*" serves every tenant`}},
		{"not a tenant id", base(", allowed_tenants: [contoso]"), []string{`bot.allowed_tenants: "contoso" is not a tenant id`}},
		{"dev mode needs none", "bot: {insecure_skip_auth: true}\nproviders: {demo: {type: simulated}}\npipelines: {demo: {provider: demo}}\n", nil},
		{"channel in another tenant", base(", tenant_id: "+t1) +
			"channels: {ops: {service_url: 'https://smba.trafficmanager.net/amer/', conversation_id: '19:a@thread.tacv2', tenant_id: " + t2 + "}}\n",
			[]string{`channels.ops.tenant_id: "` + t2 + `" is not in bot.allowed_tenants`}},
		{"channel without a tenant", base(", tenant_id: "+t1) +
			"channels: {ops: {service_url: 'https://smba.trafficmanager.net/amer/', conversation_id: '19:a@thread.tacv2'}}\n",
			[]string{"channels.ops.tenant_id: is required"}},
		{"channel registered from Teams", base(", tenant_id: "+t1) + "channels: {ops: {tenant_id: " + t1 + "}}\n", nil},
		{"registered channel still needs its tenant", base(", tenant_id: "+t1) + "channels: {ops: {}}\n",
			[]string{"channels.ops.tenant_id: is required"}},
		{"service_url without conversation_id", base(", tenant_id: "+t1) +
			"channels: {ops: {service_url: 'https://smba.trafficmanager.net/amer/', tenant_id: " + t1 + "}}\n",
			[]string{"channels.ops.conversation_id: is required with service_url"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := checkConfig(t, c.doc, env(nil))
			if len(c.want) == 0 && err != nil {
				t.Fatalf("want valid, got %v", err)
			}
			for _, w := range c.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("want problem %q, got %v", w, err)
				}
			}
		})
	}
}

// TestTenantPolicyDefaults: what each config serves.
func TestTenantPolicyDefaults(t *testing.T) {
	t.Parallel()
	const t1 = "11111111-1111-1111-1111-111111111111"
	cases := []struct {
		name        string
		cfg         BotConfig
		serves      []string
		refuses     []string
		missingOkay bool
	}{
		{"single tenant", BotConfig{TenantID: t1}, []string{t1}, []string{"other"}, false},
		{"explicit list wins", BotConfig{TenantID: t1, AllowedTenants: []string{"other"}}, []string{"other"}, []string{t1}, false},
		{"dev mode", BotConfig{InsecureSkipAuth: true}, []string{t1, "other"}, nil, true},
		{"dev mode with a list", BotConfig{InsecureSkipAuth: true, AllowedTenants: []string{t1}}, []string{t1}, []string{"other"}, true},
		{"multi-tenant unconfigured", BotConfig{}, nil, []string{t1}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := c.cfg.tenantPolicy()
			for _, s := range c.serves {
				if !p.Allows(s) {
					t.Errorf("does not serve %q", s)
				}
			}
			for _, s := range c.refuses {
				if p.Allows(s) {
					t.Errorf("serves %q", s)
				}
			}
			if p.AllowMissing != c.missingOkay {
				t.Errorf("AllowMissing = %v", p.AllowMissing)
			}
		})
	}
}

// TestConfigCheckNamesAllowedTenants runs `gatebot config check` on a
// multi-tenant config without allowed_tenants.
func TestConfigCheckNamesAllowedTenants(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "multi.yaml")
	os.WriteFile(path, []byte("bot: {app_id: app, app_password: pw}\nredis: {url: redis://127.0.0.1:6379}\n"+
		"providers: {demo: {type: simulated}}\npipelines: {demo: {provider: demo}}\n"), 0o600)
	var out strings.Builder
	err := run(t.Context(), []string{"config", "check", path}, env(nil), &out, &out)
	if err == nil || !strings.Contains(err.Error(), "bot.allowed_tenants") {
		t.Fatalf("config check: %v (output %q)", err, out.String())
	}
}
