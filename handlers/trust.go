package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/bot"
	"github.com/gatebot/gatebot/replicas"
)

// notInConversation answers a click or command naming a gate whose card
// was not posted in the conversation it came from: the same answer a
// gate that does not exist gets, as far as gate data goes.
const notInConversation = "This approval gate is not in this conversation."

// Refusals counts activities gatebot dropped at its trust boundaries.
type Refusals struct {
	// Tenant counts activities from a tenant that is not served, without
	// one, or with two that disagree.
	Tenant atomic.Int64
	// Conversation counts clicks and commands on a gate from a
	// conversation its card is not in.
	Conversation atomic.Int64
}

// Refusals returns the server's trust-boundary counters.
func (s *Server) Refusals() *Refusals { return &s.refusals }

// checkTenant reports whether the activity's tenant is served. A refused
// activity is logged once and counted; the caller answers 200 so Teams
// does not redeliver it, and does nothing else: no gate, no reply, no
// connector call with gatebot's token into that conversation.
func (s *Server) checkTenant(ctx context.Context, w http.ResponseWriter, act *bot.Activity, id *bot.Identity) bool {
	pol := s.opt.Tenants
	if id != nil && id.Emulator {
		pol.AllowMissing = true // the Emulator sends no tenant
	}
	tenant, err := pol.Check(act)
	if err == nil {
		return true
	}
	s.refusals.Tenant.Add(1)
	s.metrics.Refused("tenant")
	markTurn(ctx, outcomeRefused)
	loggerFrom(ctx).Warn("dropping an activity from a tenant that is not served", "tenant_id", tenant,
		"reason", err.Error())
	w.WriteHeader(http.StatusOK)
	return false
}

// tenantOf is the activity's tenant, already checked by checkTenant.
func tenantOf(act *bot.Activity) string {
	t, _ := act.Tenant()
	return t
}

// postedIn reports whether act comes from a conversation g's card was
// posted in, in g's tenant. Gates stored before conversations were
// recorded on them are bound to the conversation of their post.
func postedIn(g *approvals.Gate, act *bot.Activity) bool {
	conv, tenant := bot.ConversationKey(act.Conversation.ID), tenantOf(act)
	if len(g.Conversations) > 0 {
		return g.PostedIn(tenant, conv)
	}
	var ref bot.ConversationReference
	if len(g.Post.Conversation) == 0 || json.Unmarshal(g.Post.Conversation, &ref) != nil {
		return false
	}
	legacy := *g
	legacy.Tenant = ref.Conversation.TenantID
	legacy.Conversations = []string{bot.ConversationKey(ref.Conversation.ID)}
	return legacy.PostedIn(tenant, conv)
}

// foreignGate logs and counts a click or command on a gate from a
// conversation that is not the gate's.
func (s *Server) foreignGate(ctx context.Context, g *approvals.Gate, act *bot.Activity) {
	s.refusals.Conversation.Add(1)
	s.metrics.Refused("conversation")
	loggerFrom(ctx).Warn("refusing an action on a gate from another conversation",
		"gate_conversations", g.Conversations, "gate_tenant", g.Tenant, "tenant_id", tenantOf(act))
}

// postLease bounds how long one poster holds a gate's card post: longer
// than a paced, retried post takes.
const postLease = 2 * asyncBudget

// claimPost takes the right to post g's card; false when another live
// replica holds it or the store cannot tell (then nobody posts now and the
// sweep retries). A claim held by a replica that is gone (killed while
// posting: not in the replica registry any more) is taken over, so its
// card goes up at the next sweep rather than when the lease runs out.
func (s *Server) claimPost(ctx context.Context, g *approvals.Gate) bool {
	log := loggerFrom(ctx)
	ok, err := s.opt.Store.ClaimPost(ctx, g.ID, s.opt.Instance, postLease)
	if err != nil {
		log.Warn("could not claim the card post", "gate_id", g.ID, "err", err)
		return false
	}
	if ok || s.opt.Replicas == nil {
		return ok
	}
	holder, err := s.opt.Store.PostHolder(ctx, g.ID)
	if err != nil || holder == "" || holder == s.opt.Instance {
		return false
	}
	v := s.opt.Replicas.View()
	if !v.Fresh(s.opt.Now()) || slices.ContainsFunc(v.Live, func(in replicas.Info) bool { return in.Instance == holder }) {
		return false
	}
	if ok, err = s.opt.Store.TakeOverPost(ctx, g.ID, holder, s.opt.Instance, postLease); err != nil || !ok {
		return false
	}
	log.Warn("took over the card post of a replica that is gone", "gate_id", g.ID, "holder", holder)
	return true
}

// endPost ends this replica's part in posting g's card. A post cut short
// (shutdown cancelled it) gives its claim back and makes the gate due for
// the unposted sweep, so another replica posts the card within seconds.
func (s *Server) endPost(ctx context.Context, g *approvals.Gate, err error) {
	if err == nil || ctx.Err() == nil {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if rerr := s.opt.Store.ReleasePost(rctx, g.ID, s.opt.Instance); rerr != nil {
		loggerFrom(ctx).Warn("could not give back the card post; another replica posts it when the lease ends", "gate_id", g.ID, "err", rerr)
		return
	}
	loggerFrom(ctx).Info("card post cut short by shutdown; left to another replica", "gate_id", g.ID)
}
