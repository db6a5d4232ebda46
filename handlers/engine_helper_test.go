package handlers_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/engine"
	"github.com/gatebot/gatebot/handlers"
)

// startEngine runs the gate engine for h's pipelines, with short ticks, as
// cmd/gatebot does for a real server. The returned stop waits for it.
func startEngine(t *testing.T, h *handlers.Server, store *approvals.Store, pls map[string]*handlers.Pipeline, log *slog.Logger) func() {
	t.Helper()
	eps := map[string]*engine.Pipeline{}
	for name, p := range pls {
		eps[name] = &engine.Pipeline{Def: p.Def, Provider: p.Provider, ProviderType: p.ProviderType, PollEvery: p.PollEvery}
	}
	eng, err := engine.New(engine.Options{
		Store: store, Teams: h, Pipelines: eps, Instance: "test-" + t.Name(), Logger: log,
		TriggerVisibility: approvals.DefaultTriggerVisibility, TriggerBudget: 30 * time.Second, ProviderTimeout: 10 * time.Second,
		Tick: 20 * time.Millisecond, UnpostedEvery: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { eng.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}
