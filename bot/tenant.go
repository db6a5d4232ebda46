package bot

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrTenantNotAllowed marks an activity from a tenant gatebot does not
// serve, or one whose tenant is missing or contradicts itself.
var ErrTenantNotAllowed = errors.New("tenant not allowed")

// AnyTenant in TenantPolicy.Allowed serves every tenant (a multi-tenant
// bot that means it).
const AnyTenant = "*"

// TenantPolicy decides which Microsoft Entra tenants' activities gatebot
// acts on. Teams puts the tenant in channelData.tenant.id and
// conversation.tenantId; an app id alone does not stop a user of another
// tenant from sideloading an app that carries it, so the tenant is checked
// above authentication.
type TenantPolicy struct {
	// Allowed lists tenant ids, or AnyTenant.
	Allowed []string
	// AllowMissing serves activities that carry no tenant at all (the
	// Bot Framework Emulator, local dev mode). Teams always sends one.
	AllowMissing bool
}

// Tenant returns the activity's tenant id: conversation.tenantId and
// channelData.tenant.id, which must agree when both are present. ok is
// false when they disagree.
func (a *Activity) Tenant() (id string, ok bool) {
	conv := strings.TrimSpace(a.Conversation.TenantID)
	data := strings.TrimSpace(a.TeamsChannelData().Tenant.ID)
	switch {
	case conv == "":
		return data, true
	case data == "" || strings.EqualFold(conv, data):
		return conv, true
	}
	return "", false
}

// Check returns the activity's tenant when the policy serves it, else an
// error wrapping ErrTenantNotAllowed that names the tenant.
func (p TenantPolicy) Check(a *Activity) (string, error) {
	tenant, ok := a.Tenant()
	switch {
	case !ok:
		return "", fmt.Errorf("%w: conversation.tenantId %q and channelData.tenant.id %q disagree",
			ErrTenantNotAllowed, a.Conversation.TenantID, a.TeamsChannelData().Tenant.ID)
	case tenant == "" && p.AllowMissing:
		return "", nil
	case tenant == "":
		return "", fmt.Errorf("%w: the activity carries no tenant", ErrTenantNotAllowed)
	case p.Allows(tenant):
		return tenant, nil
	}
	return tenant, fmt.Errorf("%w: %s", ErrTenantNotAllowed, tenant)
}

// Allows reports whether tenant is served.
func (p TenantPolicy) Allows(tenant string) bool {
	return slices.ContainsFunc(p.Allowed, func(t string) bool { return t == AnyTenant || strings.EqualFold(t, tenant) })
}

// ConversationKey is the conversation a card belongs to, for binding a
// click to it: a channel thread (19:…@thread.tacv2;messageid=…) is known
// by its channel id, since its replies and the root post are one place.
func ConversationKey(id string) string {
	root, _, _ := strings.Cut(id, ";messageid=")
	return root
}
