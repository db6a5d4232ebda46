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

func TestPersonSame(t *testing.T) {
	apiByUPN := Person{ID: "api:ci-prod", UPN: "Alice@Example.com", Name: "ci-prod"}
	apiByAAD := Person{ID: "api:ci-prod", AADObjectID: "AAAA-1111", Name: "ci-prod"}
	apiNoOwner := Person{ID: "api:ci-prod", Name: "ci-prod"}
	teamsAlice := Person{ID: "29:alice", AADObjectID: "aaaa-1111", Name: "Alice"}
	teamsAliceUPN := Person{ID: "29:alice", AADObjectID: "aaaa-1111", UPN: "alice@example.com", Name: "Alice"}
	teamsBobUPN := Person{ID: "29:bob", AADObjectID: "bbbb-2222", UPN: "bob@example.com", Name: "Bob"}
	tests := []struct {
		name string
		p, q Person
		want bool
	}{
		{"same teams user", teamsAlice, teamsAlice, true},
		{"aad ids differ in case", Person{AADObjectID: "AAAA-1111"}, Person{AADObjectID: "aaaa-1111"}, true},
		{"ids are exact", Person{ID: "29:Alice"}, Person{ID: "29:alice"}, false},
		{"upns differ in case", Person{UPN: "ALICE@example.com"}, Person{UPN: "alice@example.com"}, true},
		{"different people", teamsAliceUPN, teamsBobUPN, false},
		{"nothing in common", Person{ID: "29:alice"}, Person{AADObjectID: "aaaa-1111"}, false},
		{"names never count", Person{Name: "Alice"}, Person{Name: "Alice"}, false},
		{"empty people are not the same", Person{}, Person{}, false},
		{"empty identifiers are not equal", Person{ID: "29:x", UPN: ""}, Person{ID: "29:y", UPN: ""}, false},
		// The first pair both carry differs, a later one matches: still the same.
		{"same aad, channel ids differ", Person{ID: "29:a", AADObjectID: "aaaa-1111"}, Person{ID: "29:b", AADObjectID: "aaaa-1111"}, true},
		{"same id, aad ids differ", Person{ID: "29:a", AADObjectID: "x"}, Person{ID: "29:a", AADObjectID: "y"}, true},
		{"same upn, ids differ", Person{ID: "29:a", UPN: "a@x"}, Person{ID: "29:b", UPN: "A@X"}, true},
		// A gate opened over the API vs. the token's owner clicking in Teams.
		{"api requester owned by upn vs teams owner with upn", apiByUPN, teamsAliceUPN, true},
		{"api requester owned by upn vs teams owner without upn", apiByUPN, teamsAlice, false},
		{"api requester owned by aad vs teams owner", apiByAAD, teamsAlice, true},
		{"api requester owned by upn vs another teams user", apiByUPN, teamsBobUPN, false},
		{"api requester owned by aad vs another teams user", apiByAAD, teamsBobUPN, false},
		{"api requester without owner vs teams user", apiNoOwner, teamsAliceUPN, false},
		{"same token", apiNoOwner, apiByUPN, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Same(tt.q); got != tt.want {
				t.Errorf("%+v.Same(%+v) = %v, want %v", tt.p, tt.q, got, tt.want)
			}
			if got := tt.q.Same(tt.p); got != tt.want {
				t.Errorf("not symmetric: %+v.Same(%+v) = %v, want %v", tt.q, tt.p, got, tt.want)
			}
		})
	}
}

func TestEligibleAPIRequester(t *testing.T) {
	owner := Person{ID: "api:ci-prod", UPN: "alice@example.com", Name: "Release train"}
	tests := []struct {
		name    string
		pol     Policy
		p       Person
		approve bool
		want    error
	}{
		{"owner may not approve", Policy{}, alice, true, ErrSelfApproval},
		{"owner may not approve even if allow-listed", Policy{Approvers: []string{"alice@example.com"}}, alice, true, ErrSelfApproval},
		{"owner may approve when self-approval is allowed", Policy{AllowSelfApproval: true}, alice, true, nil},
		{"owner may withdraw", Policy{Approvers: []string{"bob@example.com"}}, alice, false, nil},
		{"another user may approve", Policy{}, bob, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.pol.Eligible(tt.p, owner, tt.approve); !errors.Is(err, tt.want) {
				t.Errorf("Eligible = %v, want %v", err, tt.want)
			}
		})
	}
}
