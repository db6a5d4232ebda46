package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatebot/gatebot/cmd/gatebot-bench/internal/fakes"
)

func TestReplicaFlags(t *testing.T) {
	t.Parallel()
	bad := []struct {
		args []string
		want string
	}{
		{[]string{"--replicas", "0"}, "--replicas must be between 1 and 8"},
		{[]string{"--replicas", "9"}, "--replicas must be between 1 and 8"},
		{[]string{"--kill-one-after", "3s"}, "--kill-one-after needs --replicas 2 or more"},
		{[]string{"--replicas", "2", "--kill-one-after", "-1s"}, "--kill-one-after must not be negative"},
		{[]string{"--replicas", "2", "--kill-one-after", "40s", "--duration", "40s"}, "--kill-one-after must be shorter than --duration"},
		{[]string{"--replicas", "2", "--target", "http://127.0.0.1:3978"}, "excludes --target"},
		{[]string{"--replicas", "2", "--profile-dir", "/tmp/p"}, "excludes --target, --reference and --profile-dir"},
		{[]string{"--replicas", "2", "--scenario", "echo"}, "not echo"},
		{[]string{"--replicas", "two"}, "-replicas"},
	}
	for _, b := range bad {
		_, err := parseFlags(b.args, &bytes.Buffer{})
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%v: err = %v, want a usage error with %q", b.args, err, b.want)
		}
	}
	ci := strings.Fields("--scenario flow --replicas 2 --kill-one-after 3s --conversations 4 --gates 12 --duration 40s --assert-exact")
	o, err := parseFlags(ci, &bytes.Buffer{})
	if err != nil {
		t.Fatalf("the CI command line is refused: %v", err)
	}
	if o.replicas != 2 || o.killOneAfter != 3*time.Second {
		t.Fatalf("parsed %d replicas, kill after %s", o.replicas, o.killOneAfter)
	}
	if o, err := parseFlags(nil, &bytes.Buffer{}); err != nil || o.replicas != 1 || o.killOneAfter != 0 {
		t.Fatalf("defaults: %d replicas, kill after %s, %v", o.replicas, o.killOneAfter, err)
	}
}

// TestReplicaLeases: the generated engine section keeps the invariants
// gatebot's config check and engine.New enforce, and settle outlasts a
// redelivery.
func TestReplicaLeases(t *testing.T) {
	t.Parallel()
	if engineSection(1) != nil {
		t.Error("one replica must run with serve's defaults")
	}
	if replicaTriggerBudget >= replicaTriggerVisibility || replicaProviderTimeout > replicaTriggerBudget ||
		replicaPollLease <= replicaProviderTimeout || replicaCardLease < time.Second {
		t.Error("replica leases break the engine's invariants")
	}
	if settleBound(2) <= replicaTriggerVisibility || settleBound(1) != settleFor {
		t.Errorf("settle bounds %s / %s", settleBound(2), settleBound(1))
	}
	if got := engineSection(2)["trigger_visibility"]; got != "15s" {
		t.Errorf("trigger_visibility = %v", got)
	}
}

func TestRouterRoundRobinSkipsDead(t *testing.T) {
	t.Parallel()
	r := newRouter([]string{"a", "b", "c"})
	picks := func(conv string, n int) string {
		var s string
		for range n {
			_, base := r.pick(conv)
			s += base
		}
		return s
	}
	if got := picks("c1", 4); got != "abca" {
		t.Errorf("c1 = %q, want round-robin abca", got)
	}
	if got := picks("c2", 2); got != "ab" {
		t.Errorf("c2 = %q: each conversation has its own rotation", got)
	}
	r.kill(1)
	if got := picks("c1", 4); got != "caca" {
		t.Errorf("after killing b, c1 = %q, want caca", got)
	}
	if got := picks("c2", 3); got != "cac" {
		t.Errorf("after killing b, c2 = %q, want cac", got)
	}
}

// TestPostResendsSameActivity: a request that failed because its replica
// died goes to a live one, with the same activity id.
func TestPostResendsSameActivity(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var act struct{ ID string }
		_ = json.NewDecoder(r.Body).Decode(&act)
		if r.Header.Get("Authorization") == "" {
			t.Error("re-sent activity lacks its channel token")
		}
		mu.Lock()
		got = append(got, act.ID)
		mu.Unlock()
	}))
	defer live.Close()
	var rt *router
	dying := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt.kill(0) // as the bench does just before SIGKILL
		conn, _, _ := http.NewResponseController(w).Hijack()
		conn.Close()
	}))
	defer dying.Close()
	rt = newRouter([]string{dying.URL, live.URL})
	idp, err := fakes.NewIdP(fakes.IdPConfig{AppID: "app", AppPassword: "pw", BaseURL: "http://127.0.0.1:1/idp"})
	if err != nil {
		t.Fatal(err)
	}
	tm := newTeams(rt, "http://127.0.0.1:1/teams/", "app", idp)
	c := newConvo(0)
	// The live fake answers an empty 200, not a card, so the click is not
	// ok; what matters is what it received.
	_, _, _ = tm.click(t.Context(), c, c.Approvers[0], "g_x", "approve", "card-1", "act-1")
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != "act-1" {
		t.Fatalf("live replica received %q, want the same activity act-1 once", got)
	}
	if rt.resent.Load() != 1 {
		t.Errorf("resent = %d, want 1", rt.resent.Load())
	}
}

func TestCardOutcome(t *testing.T) {
	t.Parallel()
	run := []byte("http://ci/runs/g_1")
	kill := time.Unix(100, 0)
	before := []fakes.Trigger{{GateID: "g_1", At: kill.Add(-time.Second)}}
	after := []fakes.Trigger{{GateID: "g_1", At: kill.Add(time.Second)}}
	abandoned := []fakes.Trigger{{GateID: "g_1", At: kill.Add(time.Second), Abandoned: true}}
	cases := []struct {
		name string
		body string
		trig []fakes.Trigger
		kill time.Time
		want cardOutcome
	}{
		{"succeeded with the run", `{"text":"Succeeded","url":"http://ci/runs/g_1"}`, before, time.Time{}, cardSucceeded},
		{"succeeded without the run link", `{"text":"Succeeded"}`, before, time.Time{}, cardNotFinal},
		{"running", `{"text":"Running","url":"http://ci/runs/g_1"}`, before, kill, cardNotFinal},
		{"could not start after a kill", `{"text":"Could not start the pipeline"}`, before, kill, cardInterrupted},
		{"could not start without a kill", `{"text":"Could not start the pipeline"}`, before, time.Time{}, cardNotFinal},
		{"could not start, called after the kill", `{"text":"Could not start the pipeline"}`, after, kill, cardNotFinal},
		{"could not start, the killed replica's call abandoned", `{"text":"Could not start the pipeline"}`, abandoned, kill, cardInterrupted},
		{"could not start, called twice", `{"text":"Could not start the pipeline"}`, append(before, before...), kill, cardNotFinal},
	}
	for _, c := range cases {
		if got := outcome([]byte(c.body), run, c.trig, c.kill); got != c.want {
			t.Errorf("%s: outcome = %d, want %d", c.name, got, c.want)
		}
	}
}
