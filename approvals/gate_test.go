package approvals

import (
	"errors"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	type vote struct {
		p       Person
		approve bool
		at      time.Duration // after t0
		want    Outcome
		wantErr error
	}
	tests := []struct {
		name      string
		policy    Policy
		votes     []vote
		wantState State
		wantVotes int
	}{
		{
			name:   "quorum of two",
			policy: Policy{Required: 2},
			votes: []vote{
				{p: bob, approve: true, want: OutcomeRecorded},
				{p: carol, approve: true, want: OutcomeApproved},
			},
			wantState: StateApproved, wantVotes: 2,
		},
		{
			name:      "required zero means one",
			policy:    Policy{},
			votes:     []vote{{p: bob, approve: true, want: OutcomeApproved}},
			wantState: StateApproved, wantVotes: 1,
		},
		{
			name:   "repeated click is refused and not counted",
			policy: Policy{Required: 2},
			votes: []vote{
				{p: bob, approve: true, want: OutcomeRecorded},
				{p: bob, approve: true, wantErr: ErrAlreadyVoted},
				{p: Person{AADObjectID: "BBBB-2222", ID: "29:other-channel-id"}, approve: true, wantErr: ErrAlreadyVoted},
				{p: bob, approve: false, wantErr: ErrAlreadyVoted},
			},
			wantState: StatePending, wantVotes: 1,
		},
		{
			name:   "allow-list by UPN is case-insensitive",
			policy: Policy{Required: 1, Approvers: []string{"BOB@example.com"}},
			votes: []vote{
				{p: carol, approve: true, wantErr: ErrNotEligible},
				{p: bob, approve: true, want: OutcomeApproved},
			},
			wantState: StateApproved, wantVotes: 1,
		},
		{
			name:   "allow-list by aad object id",
			policy: Policy{Required: 1, Approvers: []string{"aad:cccc-3333"}},
			votes: []vote{
				{p: Person{ID: "29:x", UPN: "cccc-3333"}, approve: true, wantErr: ErrNotEligible},
				{p: bob, approve: true, wantErr: ErrNotEligible},
				{p: carol, approve: true, want: OutcomeApproved},
			},
			wantState: StateApproved, wantVotes: 1,
		},
		{
			name:   "UPN entry needs the person's UPN",
			policy: Policy{Required: 1, Approvers: []string{"bob@example.com"}},
			votes: []vote{
				{p: Person{ID: bob.ID, AADObjectID: bob.AADObjectID}, approve: true, wantErr: ErrNotEligible},
			},
			wantState: StatePending,
		},
		{
			name:   "self-approval blocked",
			policy: Policy{Required: 1},
			votes: []vote{
				{p: alice, approve: true, wantErr: ErrSelfApproval},
				{p: Person{AADObjectID: "AAAA-1111"}, approve: true, wantErr: ErrSelfApproval},
			},
			wantState: StatePending,
		},
		{
			name:      "self-approval allowed by policy",
			policy:    Policy{Required: 1, AllowSelfApproval: true},
			votes:     []vote{{p: alice, approve: true, want: OutcomeApproved}},
			wantState: StateApproved, wantVotes: 1,
		},
		{
			name:      "requester may withdraw even when not on the allow-list",
			policy:    Policy{Required: 1, Approvers: []string{"bob@example.com"}},
			votes:     []vote{{p: alice, approve: false, want: OutcomeRejected}},
			wantState: StateRejected, wantVotes: 1,
		},
		{
			name:   "one reject by an eligible approver rejects",
			policy: Policy{Required: 3, Approvers: []string{"bob@example.com", "aad:cccc-3333", "dave@example.com"}},
			votes: []vote{
				{p: bob, approve: true, want: OutcomeRecorded},
				{p: erin, approve: false, wantErr: ErrNotEligible},
				{p: carol, approve: false, want: OutcomeRejected},
				{p: dave, approve: true, wantErr: ErrNotPending},
			},
			wantState: StateRejected, wantVotes: 2,
		},
		{
			name:   "expired at the deadline fails closed",
			policy: Policy{Required: 1, Timeout: time.Hour},
			votes: []vote{
				{p: bob, approve: true, at: time.Hour, wantErr: ErrExpired},
				{p: bob, approve: true, at: time.Hour - time.Millisecond, want: OutcomeApproved},
			},
			wantState: StateApproved, wantVotes: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &Gate{Pipeline: "deploy", Requester: alice, Policy: tt.policy, State: StatePending, CreatedAt: t0}
			if tt.policy.Timeout > 0 {
				g.Deadline = t0.Add(tt.policy.Timeout)
			}
			for i, v := range tt.votes {
				got, err := g.Decide(v.p, v.approve, "why", t0.Add(v.at))
				if !errors.Is(err, v.wantErr) {
					t.Fatalf("vote %d: err = %v, want %v", i, err, v.wantErr)
				}
				if got != v.want {
					t.Fatalf("vote %d: outcome = %q, want %q", i, got, v.want)
				}
			}
			if g.State != tt.wantState {
				t.Errorf("state = %s, want %s", g.State, tt.wantState)
			}
			if len(g.Votes) != tt.wantVotes {
				t.Errorf("votes = %d, want %d", len(g.Votes), tt.wantVotes)
			}
			if g.State == StateRejected && (g.DecidedBy == nil || g.Reason != "why") {
				t.Errorf("rejected gate lacks DecidedBy/Reason: %+v %q", g.DecidedBy, g.Reason)
			}
		})
	}
}

func TestTransitions(t *testing.T) {
	all := []State{StatePending, StateApproved, StateTriggering, StateRunning, StateSucceeded, StateFailed,
		StateRejected, StateExpired, StateCancelled, StateTriggerFailed}
	allowed := map[[2]State]bool{
		{StatePending, StateApproved}: true, {StatePending, StateRejected}: true,
		{StatePending, StateExpired}: true, {StatePending, StateCancelled}: true,
		{StateApproved, StateTriggering}: true, {StateApproved, StateCancelled}: true,
		{StateTriggering, StateRunning}: true, {StateTriggering, StateTriggerFailed}: true,
		{StateTriggering, StateSucceeded}: true, {StateTriggering, StateFailed}: true,
		{StateRunning, StateSucceeded}: true, {StateRunning, StateFailed}: true, {StateRunning, StateCancelled}: true,
		{StateTriggerFailed, StateApproved}: true, {StateTriggerFailed, StateCancelled}: true,
	}
	final := map[State]bool{StateSucceeded: true, StateFailed: true, StateRejected: true, StateExpired: true, StateCancelled: true}
	now := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	for _, from := range all {
		if from.Final() != final[from] {
			t.Errorf("%s.Final() = %v", from, from.Final())
		}
		for _, to := range all {
			g := &Gate{State: from}
			err := g.Transition(to, now)
			if allowed[[2]State{from, to}] {
				if err != nil || g.State != to || !g.UpdatedAt.Equal(now) {
					t.Errorf("%s→%s: err=%v state=%s", from, to, err, g.State)
				}
				continue
			}
			var te *TransitionError
			if !errors.As(err, &te) || te.From != from || te.To != to || g.State != from {
				t.Errorf("%s→%s: want *TransitionError, got %v (state %s)", from, to, err, g.State)
			}
		}
	}
}
