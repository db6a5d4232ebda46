package main

import (
	"strings"
	"testing"
	"time"
)

func TestEngineConfigCheck(t *testing.T) {
	t.Parallel()
	const base = "bot: {insecure_skip_auth: true}\nproviders: {demo: {type: simulated}}\npipelines: {demo: {provider: demo}}\n"
	cases := []struct {
		name, doc string
		want      []string // problems; none means valid
	}{
		{"defaults", "", nil},
		{"short leases for a bench", "engine: {trigger_visibility: 20s, trigger_budget: 10s, card_lease: 5s, poll_lease: 15s}\n", nil},
		{"budget not under visibility", "engine: {trigger_visibility: 20s, trigger_budget: 20s}\n",
			[]string{"engine.trigger_budget: 20s must be shorter than engine.trigger_visibility (20s)"}},
		{"visibility under the default budget", "engine: {trigger_visibility: 1m}\n",
			[]string{"engine.trigger_budget: 2m30s must be shorter than engine.trigger_visibility (1m0s)"}},
		{"provider timeout over budget", "engine: {trigger_visibility: 20s, trigger_budget: 10s, provider_timeout: 11s}\n",
			[]string{"engine.provider_timeout: 11s must not exceed engine.trigger_budget (10s)"}},
		{"poll lease not over provider timeout", "engine: {poll_lease: 30s}\n",
			[]string{"engine.poll_lease: 30s must be longer than engine.provider_timeout (30s)"}},
		{"lease under a second", "engine: {card_lease: 100ms}\n",
			[]string{"engine.card_lease: 100ms is shorter than 1s"}},
		{"zero", "engine: {card_lease: 0s}\n", []string{"engine.card_lease: 0s must be greater than zero"}},
		{"typo", "engine: {trigger_visibilty: 20s}\n", []string{"did you mean trigger_visibilty → trigger_visibility?"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := checkConfig(t, base+c.doc, env(nil))
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want problems %q, got none", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("problems lack %q:\n%v", w, err)
				}
			}
			if n := strings.Count(err.Error(), "\n  - "); n != len(c.want) {
				t.Errorf("got %d problems, want %d:\n%v", n, len(c.want), err)
			}
		})
	}
}

func TestEngineConfigOptions(t *testing.T) {
	t.Parallel()
	var def EngineConfig
	def.applyDefaults()
	vis, o := def.options()
	if vis != 3*time.Minute || o.TriggerVisibility != vis || o.TriggerBudget != 150*time.Second ||
		o.ProviderTimeout != 30*time.Second || o.CardLease != 30*time.Second || o.PollLease != time.Minute {
		t.Errorf("defaults changed: visibility %s, %+v", vis, o)
	}
	short := EngineConfig{TriggerVisibility: Duration(20 * time.Second), TriggerBudget: Duration(10 * time.Second)}
	short.applyDefaults()
	if _, o := short.options(); o.ProviderTimeout != 10*time.Second {
		t.Errorf("provider timeout = %s, want it to follow a short budget (10s)", o.ProviderTimeout)
	}
}
