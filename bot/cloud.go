package bot

import (
	"fmt"
	"net/url"
	"strings"
)

// Cloud holds the endpoints of one Bot Framework cloud. Every field can be
// overridden after taking a preset (CloudPreset); AuthConfig fields override
// the cloud's again.
type Cloud struct {
	// Name is the preset name ("public", "usgov", "usgov-dod", "china").
	Name string
	// OpenIDMetadataURL is the channel's OpenID metadata document (inbound).
	OpenIDMetadataURL string
	// Issuer is the iss claim of channel tokens (inbound).
	Issuer string
	// TokenURL is the multi-tenant token endpoint (outbound). For a
	// single-tenant bot use SingleTenantTokenURL.
	TokenURL string
	// Scope is the client-credentials scope of outbound tokens.
	Scope string
	// TrustedServiceHosts are the exact serviceUrl hosts the bearer token
	// may be sent to.
	TrustedServiceHosts []string
	// EmulatorMetadataURL is the OpenID metadata used for Emulator tokens.
	EmulatorMetadataURL string
}

// CloudPreset returns the endpoints of a named cloud: "public" (also for
// ""), "usgov" (GCC High), "usgov-dod" or "china" (21Vianet). GCC moderate
// is "public": it shares the public endpoints and its service host is in the
// public trusted list.
func CloudPreset(name string) (Cloud, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "", "public":
		return Cloud{
			Name:              "public",
			OpenIDMetadataURL: "https://login.botframework.com/v1/.well-known/openidconfiguration",
			Issuer:            "https://api.botframework.com",
			TokenURL:          "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token",
			Scope:             "https://api.botframework.com/.default",
			TrustedServiceHosts: []string{
				"smba.trafficmanager.net",
				"smba.onyx.prod.teams.trafficmanager.net",
				"smba.infra.gcc.teams.microsoft.com",
			},
			EmulatorMetadataURL: "https://login.microsoftonline.com/botframework.com/v2.0/.well-known/openid-configuration",
		}, nil
	case "usgov":
		return usGov("usgov", "smba.infra.gov.teams.microsoft.us"), nil
	case "usgov-dod":
		return usGov("usgov-dod", "smba.infra.dod.teams.microsoft.us"), nil
	case "china":
		return Cloud{
			Name:                "china",
			OpenIDMetadataURL:   "https://login.botframework.azure.cn/v1/.well-known/openidconfiguration",
			Issuer:              "https://api.botframework.azure.cn",
			TokenURL:            "https://login.partner.microsoftonline.cn/microsoftservices.partner.onmschina.cn/oauth2/v2.0/token",
			Scope:               "https://api.botframework.azure.cn/.default",
			TrustedServiceHosts: []string{"frontend.botapi.msg.infra.teams.microsoftonline.cn"},
			EmulatorMetadataURL: "https://login.partner.microsoftonline.cn/a55a4d5b-9241-49b1-b4ff-befa8db00269/v2.0/.well-known/openid-configuration",
		}, nil
	}
	return Cloud{}, fmt.Errorf("bot: unknown cloud %q (want public, usgov, usgov-dod or china)", name)
}

func usGov(name, host string) Cloud {
	return Cloud{
		Name:                name,
		OpenIDMetadataURL:   "https://login.botframework.azure.us/v1/.well-known/openidconfiguration",
		Issuer:              "https://api.botframework.us",
		TokenURL:            "https://login.microsoftonline.us/MicrosoftServices.onmicrosoft.us/oauth2/v2.0/token",
		Scope:               "https://api.botframework.us/.default",
		TrustedServiceHosts: []string{host},
		EmulatorMetadataURL: "https://login.microsoftonline.us/cab8a31a-1906-4287-a0d8-4eef66b95f6e/v2.0/.well-known/openid-configuration",
	}
}

// SingleTenantTokenURL returns the token endpoint of a single-tenant bot:
// the login host of TokenURL with the tenant in place of the multi-tenant
// authority.
func (c Cloud) SingleTenantTokenURL(tenantID string) (string, error) {
	u, err := url.Parse(c.TokenURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("bot: cloud %q has no usable token URL", c.Name)
	}
	if tenantID == "" || strings.ContainsAny(tenantID, "/?#%") {
		return "", fmt.Errorf("bot: invalid tenant id %q", tenantID)
	}
	return u.Scheme + "://" + u.Host + "/" + tenantID + "/oauth2/v2.0/token", nil
}

// Resource returns the managed-identity resource for outbound tokens: the
// scope without its "/.default" suffix.
func (c Cloud) Resource() string {
	return strings.TrimSuffix(c.Scope, "/.default")
}
