package main

import (
	"time"

	"github.com/gatebot/gatebot/engine"
)

// EngineConfig tunes the engine's leases: how long work claimed by a
// replica is hidden from the others, which is also how long a replica
// that died delays that work. The defaults suit production; shorter ones
// are for tests and benches that kill replicas.
type EngineConfig struct {
	// TriggerVisibility is the store's trigger lease and redelivery
	// timeout, default 3m. It must exceed TriggerBudget.
	TriggerVisibility Duration `yaml:"trigger_visibility" check:"positive"`
	// TriggerBudget bounds one trigger, provider retries included, default
	// 150s (engine.DefaultTriggerBudget).
	TriggerBudget Duration `yaml:"trigger_budget" check:"positive"`
	// ProviderTimeout bounds one provider call, default 30s or
	// TriggerBudget when that is shorter.
	ProviderTimeout Duration `yaml:"provider_timeout" check:"positive"`
	// CardLease bounds one card update and is how long a card sync claimed
	// by a dead replica waits, default 30s.
	CardLease Duration `yaml:"card_lease" check:"positive"`
	// PollLease is how long a claimed run poll is hidden from the other
	// replicas, default 1m. It must exceed ProviderTimeout.
	PollLease Duration `yaml:"poll_lease" check:"positive"`
	// UnknownPipelineGrace is how long an approved gate waits for a
	// replica whose config has its pipeline (during a rolling upgrade one
	// may not have it yet) before it fails, default 10m.
	UnknownPipelineGrace Duration `yaml:"unknown_pipeline_grace" check:"positive"`
}

// Engine defaults of `serve`.
const (
	defaultTriggerVisibility = 3 * time.Minute
	defaultProviderTimeout   = 30 * time.Second
	defaultCardLease         = 30 * time.Second
	defaultPollLease         = time.Minute
)

// applyDefaults fills the unset leases. The provider timeout follows a
// short trigger budget, so setting only the budget is enough.
func (e *EngineConfig) applyDefaults() {
	set := func(d *Duration, v time.Duration) {
		if *d == 0 {
			*d = Duration(v)
		}
	}
	set(&e.TriggerVisibility, defaultTriggerVisibility)
	set(&e.TriggerBudget, engine.DefaultTriggerBudget)
	set(&e.ProviderTimeout, min(defaultProviderTimeout, time.Duration(e.TriggerBudget)))
	set(&e.CardLease, defaultCardLease)
	set(&e.PollLease, defaultPollLease)
	set(&e.UnknownPipelineGrace, engine.DefaultUnknownPipelineGrace)
}

// minLease keeps a lease above what one Redis round trip and a slow
// scheduler can take: a lease shorter than that hands live work over.
const minLease = time.Second

// check reports leases that break the engine's exactly-once invariants
// (the same that engine.New checks), naming the fields. It runs after
// applyDefaults.
func (e *EngineConfig) check(ps *problems) {
	vis, budget, prov := time.Duration(e.TriggerVisibility), time.Duration(e.TriggerBudget), time.Duration(e.ProviderTimeout)
	for _, f := range []struct {
		name string
		v    Duration
	}{{"trigger_visibility", e.TriggerVisibility}, {"trigger_budget", e.TriggerBudget}, {"provider_timeout", e.ProviderTimeout},
		{"card_lease", e.CardLease}, {"poll_lease", e.PollLease}} {
		// Zero and negative values are reported by the shape check.
		if v := time.Duration(f.v); v > 0 && v < minLease {
			ps.add("engine."+f.name, "%s is shorter than %s: work would be handed to another replica while still running", v, minLease)
		}
	}
	if budget >= vis {
		ps.add("engine.trigger_budget", "%s must be shorter than engine.trigger_visibility (%s): otherwise another replica may start a run while this one still tries", budget, vis)
	}
	if prov > budget {
		ps.add("engine.provider_timeout", "%s must not exceed engine.trigger_budget (%s)", prov, budget)
	}
	if time.Duration(e.PollLease) <= prov {
		ps.add("engine.poll_lease", "%s must be longer than engine.provider_timeout (%s): a poll still waiting for the provider would be polled again by another replica", time.Duration(e.PollLease), prov)
	}
}

// options returns the store's trigger visibility and the engine.Options
// these settings fill.
func (e *EngineConfig) options() (visibility time.Duration, o engine.Options) {
	return time.Duration(e.TriggerVisibility), engine.Options{
		TriggerVisibility: time.Duration(e.TriggerVisibility),
		TriggerBudget:     time.Duration(e.TriggerBudget),
		ProviderTimeout:   time.Duration(e.ProviderTimeout),
		CardLease:         time.Duration(e.CardLease),
		PollLease:         time.Duration(e.PollLease),

		UnknownPipelineGrace: time.Duration(e.UnknownPipelineGrace),
	}
}
