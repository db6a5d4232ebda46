package approvals

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatebot/gatebot/pipelines"
)

// State is where a gate is in its life.
type State string

// Gate states. Pending is the only state that accepts votes.
const (
	StatePending       State = "pending"
	StateApproved      State = "approved"   // quorum reached, trigger enqueued
	StateTriggering    State = "triggering" // a worker is calling the provider
	StateRunning       State = "running"    // the provider returned a run
	StateSucceeded     State = "succeeded"
	StateFailed        State = "failed"
	StateRejected      State = "rejected"
	StateExpired       State = "expired"
	StateCancelled     State = "cancelled"
	StateTriggerFailed State = "trigger_failed" // retryable by an authorised user
)

// transitions lists every allowed state change, in one place.
var transitions = map[State][]State{
	StatePending:  {StateApproved, StateRejected, StateExpired, StateCancelled},
	StateApproved: {StateTriggering, StateCancelled},
	// Not cancelled: the provider call may already have started a run,
	// which a cancelled gate would no longer track.
	StateTriggering:    {StateRunning, StateTriggerFailed, StateSucceeded, StateFailed},
	StateRunning:       {StateSucceeded, StateFailed, StateCancelled},
	StateTriggerFailed: {StateApproved, StateCancelled},
}

// CanTransition reports whether from → to is an allowed change.
func CanTransition(from, to State) bool {
	return slices.Contains(transitions[from], to)
}

// Final reports whether the gate will never change again.
func (s State) Final() bool { return len(transitions[s]) == 0 }

// Person is someone acting on a gate, as authenticated by the channel the
// action came through. ID is the channel's user id (Teams `29:…`), AADObjectID
// the Entra object id, UPN the user principal name when it is known.
type Person struct {
	ID          string `json:"id,omitempty"`
	AADObjectID string `json:"aad,omitempty"`
	UPN         string `json:"upn,omitempty"`
	Name        string `json:"name,omitempty"`
}

// Display is a human name for cards and messages.
func (p Person) Display() string {
	switch {
	case p.Name != "":
		return p.Name
	case p.UPN != "":
		return p.UPN
	case p.AADObjectID != "":
		return "aad:" + p.AADObjectID
	}
	return p.ID
}

// Same reports whether p and q are the same person: true when ANY strong
// identifier both carry is equal (AAD object id and UPN case-insensitively,
// channel user id exactly). One person is often known by different
// identifiers on different sides: a gate opened over the API has the
// requester {ID: "api:<token>", UPN: <token owner>} while its owner clicks in
// Teams as {ID: "29:…", AADObjectID: …, UPN: …}; deciding on the first pair
// both carry (the IDs, which differ) would let that owner approve their own
// gate. Matching on any pair errs towards "same", which is the safe side
// for the self-approval and duplicate-vote checks. Names never count.
func (p Person) Same(q Person) bool {
	return (p.AADObjectID != "" && q.AADObjectID != "" && strings.EqualFold(p.AADObjectID, q.AADObjectID)) ||
		(p.ID != "" && q.ID != "" && p.ID == q.ID) ||
		(p.UPN != "" && q.UPN != "" && strings.EqualFold(p.UPN, q.UPN))
}

// Matches reports whether p is named by an allow-list entry: a UPN
// (case-insensitive) or `aad:<object id>`.
func (p Person) Matches(entry string) bool {
	entry = strings.TrimSpace(entry)
	if id, ok := strings.CutPrefix(entry, "aad:"); ok {
		return p.AADObjectID != "" && strings.EqualFold(p.AADObjectID, id)
	}
	return p.UPN != "" && strings.EqualFold(p.UPN, entry)
}

// Policy is who may decide a gate and how many must approve.
type Policy struct {
	Required          int           `json:"req"`
	Approvers         []string      `json:"apv,omitempty"` // UPNs or aad:<id>; empty = anyone
	AllowSelfApproval bool          `json:"self,omitempty"`
	Timeout           time.Duration `json:"ttl"`
	// RemindBefore, when set and shorter than Timeout, reminds the
	// approvers once this long before the deadline of a gate still pending.
	RemindBefore time.Duration `json:"rmd,omitempty"`
}

// NeedsUPN reports whether checking eligibility needs a person's UPN.
func (p Policy) NeedsUPN() bool {
	for _, a := range p.Approvers {
		if !strings.HasPrefix(a, "aad:") {
			return true
		}
	}
	return false
}

// Vote is one person's decision.
type Vote struct {
	By      Person    `json:"by"`
	Approve bool      `json:"ok"`
	Reason  string    `json:"why,omitempty"`
	At      time.Time `json:"at"`
}

// Post is where a gate's card lives, opaque to this package: the channel
// layer's conversation reference and the card's activity id. PostedAt is
// set once the card is up (SetPost), even when the channel returned no
// activity id; until then the gate is on the unposted schedule.
type Post struct {
	Conversation json.RawMessage `json:"conv,omitempty"`
	ActivityID   string          `json:"act,omitempty"`
	PostedAt     time.Time       `json:"pat,omitzero"`
}

// Gate is one request to run a pipeline, waiting for or past its approval.
type Gate struct {
	ID        string         `json:"id"`
	Pipeline  string         `json:"pl"`
	Inputs    map[string]any `json:"in,omitempty"`
	Message   string         `json:"msg,omitempty"`
	Requester Person         `json:"rq"`
	Origin    string         `json:"org,omitempty"` // "teams" or "api:<token name>"
	// TokenID is the id of the API token that opened the gate, when one
	// did: token names can be reused after a revoke, ids cannot.
	TokenID string `json:"tok,omitempty"`
	// Tenant is the Microsoft Entra tenant the gate belongs to, and
	// Conversations every conversation its card was posted in (channel
	// threads by their channel id): a click acts on the gate only from
	// one of those, in that tenant (see PostedIn).
	Tenant        string         `json:"tn,omitempty"`
	Conversations []string       `json:"cv,omitempty"`
	Policy        Policy         `json:"pol"`
	State         State          `json:"st"`
	Votes         []Vote         `json:"v,omitempty"`
	CreatedAt     time.Time      `json:"ca"`
	Deadline      time.Time      `json:"dl"`
	UpdatedAt     time.Time      `json:"ua"`
	DecidedBy     *Person        `json:"db,omitempty"` // who rejected, cancelled or retried last
	Reason        string         `json:"why,omitempty"`
	Run           *pipelines.Run `json:"run,omitempty"`
	Error         string         `json:"err,omitempty"` // last trigger error, user-safe
	Attempts      int            `json:"att,omitempty"` // trigger attempts
	// TriggerLease is when the consumer that began the trigger is presumed
	// dead: until then no other consumer calls the provider for this gate.
	// Set while triggering only.
	TriggerLease time.Time `json:"tl,omitzero"`
	Post         Post      `json:"post,omitempty"`
	// Copies are the gate's card as also sent to people personally
	// (approval.notify: dm); each copy's chat is in Conversations.
	Copies      []Copy            `json:"cp,omitempty"`
	CallbackURL string            `json:"cb,omitempty"`
	Labels      map[string]string `json:"lbl,omitempty"`
	// IdempotencyKey is the key Create was called with, so that its record
	// can be given the retention TTL when the gate ends.
	IdempotencyKey string `json:"ik,omitempty"`
	Version        int64  `json:"ver"`
}

// PostedIn reports whether a click or command from conversation (as the
// channel layer normalises it) in tenant may act on g: the gate's card was
// posted there, and the tenant is the gate's. A gate with no recorded
// conversation belongs to none.
func (g *Gate) PostedIn(tenant, conversation string) bool {
	if conversation == "" || !strings.EqualFold(g.Tenant, tenant) {
		return false
	}
	return slices.Contains(g.Conversations, conversation)
}

// Approvals returns the approving votes in order.
func (g *Gate) Approvals() []Vote {
	var out []Vote
	for _, v := range g.Votes {
		if v.Approve {
			out = append(out, v)
		}
	}
	return out
}

// Approvers returns the display names of those who approved.
func (g *Gate) Approvers() []string {
	var names []string
	for _, v := range g.Approvals() {
		names = append(names, v.By.Display())
	}
	return names
}

// Errors callers tell apart.
var (
	ErrNotFound       = errors.New("gate not found")
	ErrNotPending     = errors.New("gate is no longer pending")
	ErrNotEligible    = errors.New("not an eligible approver")
	ErrSelfApproval   = errors.New("the requester may not approve their own gate")
	ErrAlreadyVoted   = errors.New("already voted on this gate")
	ErrExpired        = errors.New("gate has expired")
	ErrNotAllowed     = errors.New("not allowed")
	ErrUnavailable    = errors.New("approval store unavailable")
	ErrConflict       = errors.New("gate changed concurrently")
	ErrIdempotencyKey = errors.New("idempotency key reused with a different request")
	// ErrTriggerBusy is BeginTrigger's answer for a gate another consumer
	// is triggering under a live lease: do not call the provider and do not
	// acknowledge the trigger (it comes back after the visibility timeout).
	ErrTriggerBusy = errors.New("trigger is being processed by another worker")
	// ErrRunAfterCancel is FinishTrigger's answer when a run was started for
	// a gate that is no longer triggering (cancelled or taken over
	// meanwhile): the run is recorded on the gate, and the caller should
	// cancel it at the provider.
	ErrRunAfterCancel = errors.New("pipeline run started for a gate that is no longer triggering")
)

// TransitionError is a refused state change.
type TransitionError struct {
	From, To State
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("gate cannot go from %s to %s", e.From, e.To)
}

// Transition moves g to state to, or refuses with a *TransitionError.
func (g *Gate) Transition(to State, now time.Time) error {
	if !CanTransition(g.State, to) {
		return &TransitionError{From: g.State, To: to}
	}
	g.State = to
	g.UpdatedAt = now
	return nil
}

// Outcome is what a vote did to a gate.
type Outcome string

// Vote outcomes.
const (
	OutcomeRecorded Outcome = "recorded" // counted, quorum not yet reached
	OutcomeApproved Outcome = "approved" // this vote completed the quorum
	OutcomeRejected Outcome = "rejected"
)

// Decide applies p's vote to the gate under its policy at time now. It
// returns ErrAlreadyVoted for a repeated vote (a no-op), ErrNotPending for a
// decided gate, ErrExpired past the deadline, ErrSelfApproval and
// ErrNotEligible for people the policy excludes.
func (g *Gate) Decide(p Person, approve bool, reason string, now time.Time) (Outcome, error) {
	if err := g.CanVote(p, approve, now); err != nil {
		return "", err
	}
	g.Votes = append(g.Votes, Vote{By: p, Approve: approve, Reason: reason, At: now})
	g.UpdatedAt = now
	if !approve {
		g.State = StateRejected
		g.DecidedBy = &p
		g.Reason = reason
		return OutcomeRejected, nil
	}
	if len(g.Approvals()) >= max(g.Policy.Required, 1) {
		g.State = StateApproved
		return OutcomeApproved, nil
	}
	return OutcomeRecorded, nil
}

// CanDecide reports whether p could approve g at time now, with the error
// Decide would give otherwise (ErrNotPending, ErrExpired, ErrAlreadyVoted,
// ErrSelfApproval, ErrNotEligible). It changes nothing: it answers "which
// gates are waiting for me" without a store round trip per gate.
func (g *Gate) CanDecide(p Person, now time.Time) error {
	return g.CanVote(p, true, now)
}

// CanVote reports why p's vote could not be recorded on g at now, or nil.
// Every refusal it gives is final (a gate never returns to pending, a vote
// is never withdrawn, the policy never changes, time only moves on), so a
// caller holding a gate read a moment ago may refuse a vote without
// writing anything; a nil answer is only a forecast, which Store.Decide
// settles under its transaction.
func (g *Gate) CanVote(p Person, approve bool, now time.Time) error {
	if g.State != StatePending {
		return ErrNotPending
	}
	if !g.Deadline.IsZero() && !now.Before(g.Deadline) {
		return ErrExpired
	}
	for _, v := range g.Votes {
		if v.By.Same(p) {
			return ErrAlreadyVoted
		}
	}
	return g.Policy.Eligible(p, g.Requester, approve)
}

// Eligible reports whether p may vote on a gate requested by requester.
// Self-approval is checked for approvals only: a requester may always
// reject (withdraw) their own request.
func (pol Policy) Eligible(p, requester Person, approve bool) error {
	if approve && !pol.AllowSelfApproval && p.Same(requester) {
		return ErrSelfApproval
	}
	if len(pol.Approvers) == 0 {
		return nil
	}
	for _, a := range pol.Approvers {
		if p.Matches(a) {
			return nil
		}
	}
	if !approve && p.Same(requester) {
		return nil
	}
	return ErrNotEligible
}
