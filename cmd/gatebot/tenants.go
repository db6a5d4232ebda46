package main

import (
	"regexp"

	"github.com/gatebot/gatebot/bot"
)

// tenantPolicy is which tenants gatebot serves: bot.allowed_tenants, else
// the single tenant of bot.tenant_id, else (local dev mode only) any.
func (b BotConfig) tenantPolicy() bot.TenantPolicy {
	switch {
	case len(b.AllowedTenants) > 0:
		return bot.TenantPolicy{Allowed: b.AllowedTenants, AllowMissing: b.InsecureSkipAuth}
	case b.TenantID != "":
		return bot.TenantPolicy{Allowed: []string{b.TenantID}, AllowMissing: b.InsecureSkipAuth}
	case b.InsecureSkipAuth:
		return bot.TenantPolicy{Allowed: []string{bot.AnyTenant}, AllowMissing: true}
	}
	return bot.TenantPolicy{}
}

// tenantIDPattern is a Microsoft Entra tenant id (a GUID).
var tenantIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// checkTenants requires an explicit tenant list for a multi-tenant bot:
// without one, a user of any tenant who sideloads an app carrying
// gatebot's app id could run and approve pipelines.
func (b BotConfig) checkTenants(ps *problems) {
	const f = "bot.allowed_tenants"
	if len(b.AllowedTenants) == 0 && b.TenantID == "" && !b.InsecureSkipAuth {
		ps.add(f, `is required for a multi-tenant bot (bot.tenant_id is empty): list the tenant ids gatebot serves, or ["*"] to serve any tenant`)
	}
	for _, t := range b.AllowedTenants {
		switch {
		case t == bot.AnyTenant && len(b.AllowedTenants) > 1:
			ps.add(f, `"*" serves every tenant and cannot be combined with tenant ids`)
		case t != bot.AnyTenant && !tenantIDPattern.MatchString(t):
			ps.add(f, "%q is not a tenant id (a GUID) or \"*\"", t)
		}
	}
	if b.TenantID != "" && !tenantIDPattern.MatchString(b.TenantID) {
		ps.add("bot.tenant_id", "%q is not a tenant id (a GUID)", b.TenantID)
	}
}
