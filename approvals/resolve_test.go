package approvals

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		mk := func(id string) *Gate {
			g := newGate("deploy-api", 1, time.Hour)
			g.ID = id
			return mustCreate(t, e.store, g)
		}
		solo := mk("g_solo2345abcdefghijklmn")
		mk("g_twin2345aaaaaaaaaaaaaa")
		mk("g_twin2345bbbbbbbbbbbbbb")
		// An index entry whose record is gone (expired) is not a match.
		gone := mk("g_gone2345cccccccccccccc")
		if err := e.rdb.Del(ctx, e.store.gateKey(gone.ID)).Err(); err != nil {
			t.Fatal(err)
		}
		mk("g_gone2345dddddddddddddd")
		// Glob characters in what was typed match literally.
		mk("g_star*345eeeeeeeeeeeeee")

		tests := []struct {
			in      string
			want    string
			wantErr error
			field   bool // an *InvalidError
			cands   []string
		}{
			{in: solo.ID, want: solo.ID},
			{in: "g_solo2345", want: solo.ID},
			{in: "solo2345", want: solo.ID},
			{in: "  solo2345abc ", want: solo.ID},
			{in: "gone2345", want: "g_gone2345dddddddddddddd"},
			{in: "star*345", want: "g_star*345eeeeeeeeeeeeee"},
			{in: "s*", field: true},
			{in: "so*o2345", wantErr: ErrNotFound},
			{in: "twin2345", wantErr: ErrAmbiguous, cands: []string{"g_twin2345aaaaaaaaaaaaaa", "g_twin2345bbbbbbbbbbbbbb"}},
			{in: "g_twin2345b", want: "g_twin2345bbbbbbbbbbbbbb"},
			{in: "nothere1", wantErr: ErrNotFound},
			{in: "g_nothere1nothere1noth", wantErr: ErrNotFound},
			{in: "solo", field: true},
			{in: "", field: true},
			{in: "solo 2345", field: true},
			{in: strings.Repeat("a", 300), field: true},
		}
		for _, tc := range tests {
			g, err := e.store.Resolve(ctx, tc.in)
			var inv *InvalidError
			switch {
			case tc.field:
				if !errors.As(err, &inv) || inv.Field != "id" {
					t.Errorf("Resolve(%q) = %v, %v; want an *InvalidError on id", tc.in, g, err)
				}
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("Resolve(%q) err = %v, want %v", tc.in, err, tc.wantErr)
				}
				var amb *AmbiguousError
				if tc.cands != nil && (!errors.As(err, &amb) || !slices.Equal(amb.Candidates, tc.cands)) {
					t.Errorf("Resolve(%q) candidates = %+v, want %q", tc.in, amb, tc.cands)
				}
			case err != nil || g == nil || g.ID != tc.want:
				t.Errorf("Resolve(%q) = %v, %v; want %s", tc.in, g, err, tc.want)
			}
		}
	})
}

// TestResolveBoundedScan: a prefix search over an index larger than one
// ZSCAN page still finds its gate, and an ambiguous prefix stops at
// maxCandidates.
func TestResolveBoundedScan(t *testing.T) {
	t.Parallel()
	backends(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		for i := range 2*scanCount + 100 {
			g := newGate("deploy-api", 1, time.Hour)
			switch {
			case i == 777:
				g.ID = "g_target23zzzzzzzzzzzzzz"
			case i%30 == 0:
				g.ID = fmt.Sprintf("g_manymany%012d", i)
			}
			mustCreate(t, e.store, g)
		}
		g, err := e.store.Resolve(ctx, "target23")
		if err != nil || g.ID != "g_target23zzzzzzzzzzzzzz" {
			t.Fatalf("Resolve = %v, %v; want g_target23zzzzzzzzzzzzzz", g, err)
		}
		_, err = e.store.Resolve(ctx, "manymany")
		var amb *AmbiguousError
		if !errors.As(err, &amb) || len(amb.Candidates) != maxCandidates || !errors.Is(err, ErrAmbiguous) {
			t.Fatalf("Resolve(manymany) = %v, want %d candidates", err, maxCandidates)
		}
		for _, id := range amb.Candidates {
			if !strings.HasPrefix(id, "g_manymany") {
				t.Errorf("candidate %s does not match the prefix", id)
			}
		}
	})
}

func TestCanDecide(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	base := Gate{State: StatePending, Requester: alice, Deadline: t0.Add(time.Hour),
		Policy: Policy{Required: 2, Approvers: []string{"bob@example.com", "aad:cccc-3333", "alice@example.com"}}}
	voted := base
	voted.Votes = []Vote{{By: bob, Approve: true, At: t0}}
	decided := base
	decided.State = StateApproved
	self := base
	self.Policy.AllowSelfApproval = true
	tests := []struct {
		name string
		g    Gate
		p    Person
		at   time.Time
		want error
	}{
		{"approver by UPN", base, bob, t0, nil},
		{"approver by object id", base, carol, t0, nil},
		{"not on the list", base, dave, t0, ErrNotEligible},
		{"requester", base, alice, t0, ErrSelfApproval},
		{"requester with self-approval", self, alice, t0, nil},
		{"already voted", voted, bob, t0, ErrAlreadyVoted},
		{"other approver after a vote", voted, carol, t0, nil},
		{"decided", decided, bob, t0, ErrNotPending},
		{"past the deadline", base, bob, t0.Add(time.Hour), ErrExpired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := tc.g
			before := len(g.Votes)
			if err := g.CanDecide(tc.p, tc.at); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Errorf("CanDecide = %v, want %v", err, tc.want)
			}
			if len(g.Votes) != before || g.State != tc.g.State {
				t.Errorf("CanDecide changed the gate")
			}
			// Decide agrees with it.
			_, err := g.Decide(tc.p, true, "", tc.at)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Errorf("Decide = %v, CanDecide said %v", err, tc.want)
			}
		})
	}
}
