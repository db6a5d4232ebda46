package handlers

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/bot"
)

// Approvers are configured as UPNs or aad:<object id>. A card should show
// them by name, @mention them (which needs their Teams account) and list
// their Teams ids in refresh.userIds; the Bot Connector resolves an entry
// to the account (GET …/members/{upn or object id}). Lookups happen before
// a card is posted or synced, never on a click's answer, and are cached
// per tenant, misses included.

// resolveBudget bounds the lookups before one card.
const resolveBudget = 2 * time.Second

func approverKey(tenant, entry string) string {
	return tenant + "|" + strings.ToLower(strings.TrimSpace(entry))
}

// resolveApprovers looks up, in the gate's conversation, the allow-list
// entries not cached yet.
func (s *Server) resolveApprovers(ctx context.Context, g *approvals.Gate) {
	if len(g.Policy.Approvers) == 0 || len(g.Post.Conversation) == 0 {
		return
	}
	var ref bot.ConversationReference
	if err := json.Unmarshal(g.Post.Conversation, &ref); err != nil || ref.Conversation.ID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, resolveBudget)
	defer cancel()
	for _, entry := range g.Policy.Approvers {
		key := approverKey(g.Tenant, entry)
		if _, ok := s.approvers.get(key); ok {
			continue
		}
		id := strings.TrimPrefix(strings.TrimSpace(entry), "aad:")
		m, err := s.opt.Connector.GetMember(ctx, ref.ServiceURL, ref.Conversation.ID, id)
		if err != nil {
			if ctx.Err() != nil {
				return // out of budget: the next card tries the rest
			}
			loggerFrom(ctx).Debug("approver not resolved in this conversation", "gate_id", g.ID, "err", err)
			m = bot.Member{} // remembered as a miss
		}
		s.approvers.put(key, m)
	}
}

// approverAccounts is what the cache knows of g's approvers: the people
// (with their Teams ids when resolved) and their names by entry.
func (s *Server) approverAccounts(g *approvals.Gate) ([]approvals.Person, map[string]string) {
	people := eligible(g.Policy)
	names := map[string]string{}
	for i, entry := range g.Policy.Approvers {
		m, ok := s.approvers.get(approverKey(g.Tenant, entry))
		if !ok || m.ID == "" {
			continue
		}
		people[i] = approvals.Person{ID: m.ID, AADObjectID: m.AADObjectID, UPN: m.UserPrincipalName, Name: m.Name}
		if m.Name != "" {
			names[strings.TrimSpace(entry)] = m.Name
			if m.UserPrincipalName != "" {
				names[m.UserPrincipalName] = m.Name
			}
			if m.AADObjectID != "" {
				names["aad:"+m.AADObjectID] = m.Name
			}
		}
	}
	return people, names
}
