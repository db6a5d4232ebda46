package bot

import (
	"strings"
	"testing"
)

func TestCloudPreset(t *testing.T) {
	tests := []struct {
		name, wantName, wantIssuer, wantHost, wantTokenHost string
	}{
		{"", "public", "https://api.botframework.com", "smba.trafficmanager.net", "login.microsoftonline.com"},
		{"public", "public", "https://api.botframework.com", "smba.infra.gcc.teams.microsoft.com", "login.microsoftonline.com"},
		{"USGov", "usgov", "https://api.botframework.us", "smba.infra.gov.teams.microsoft.us", "login.microsoftonline.us"},
		{"usgov-dod", "usgov-dod", "https://api.botframework.us", "smba.infra.dod.teams.microsoft.us", "login.microsoftonline.us"},
		{"china", "china", "https://api.botframework.azure.cn", "frontend.botapi.msg.infra.teams.microsoftonline.cn", "login.partner.microsoftonline.cn"},
	}
	for _, tt := range tests {
		t.Run(tt.wantName+"/"+tt.name, func(t *testing.T) {
			c, err := CloudPreset(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if c.Name != tt.wantName || c.Issuer != tt.wantIssuer {
				t.Errorf("name/issuer = %q/%q", c.Name, c.Issuer)
			}
			found := false
			for _, h := range c.TrustedServiceHosts {
				found = found || h == tt.wantHost
			}
			if !found {
				t.Errorf("trusted hosts %v lack %q", c.TrustedServiceHosts, tt.wantHost)
			}
			for _, u := range []string{c.OpenIDMetadataURL, c.TokenURL, c.EmulatorMetadataURL} {
				if err := checkFetchURL(u); err != nil || !strings.HasPrefix(u, "https://") {
					t.Errorf("endpoint %q: %v", u, err)
				}
			}
			if !strings.HasPrefix(c.TokenURL, "https://"+tt.wantTokenHost+"/") || !strings.HasSuffix(c.Scope, "/.default") {
				t.Errorf("token URL %q scope %q", c.TokenURL, c.Scope)
			}
			st, err := c.SingleTenantTokenURL("11111111-2222-3333-4444-555555555555")
			if err != nil || st != "https://"+tt.wantTokenHost+"/11111111-2222-3333-4444-555555555555/oauth2/v2.0/token" {
				t.Errorf("SingleTenantTokenURL = %q, %v", st, err)
			}
			if strings.HasSuffix(c.Resource(), "/.default") || !strings.HasPrefix(c.Resource(), "https://api.botframework.") {
				t.Errorf("Resource = %q", c.Resource())
			}
		})
	}
	if _, err := CloudPreset("mars"); err == nil {
		t.Error("unknown cloud accepted")
	}
	c, _ := CloudPreset("public")
	for _, bad := range []string{"", "a/b", "x?y", "%2F"} {
		if _, err := c.SingleTenantTokenURL(bad); err == nil {
			t.Errorf("tenant %q accepted", bad)
		}
	}
}
