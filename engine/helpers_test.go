package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/internal/redistest"
	"github.com/gatebot/gatebot/pipelines"
)

// backends runs fn against miniredis and the real Redis (redistest).
func backends(t *testing.T, fn func(t *testing.T, rdb redis.UniversalClient, prefix string)) {
	redistest.Backends(t, "engine", fn)
}

func newStore(t *testing.T, rdb redis.UniversalClient, prefix string) *approvals.Store {
	t.Helper()
	s, err := approvals.NewStore(rdb, approvals.Options{Prefix: prefix, TriggerVisibility: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// provider is a fake pipeline provider: Trigger waits on gate (when set)
// and answers with errs first, then a running run; every call is counted
// per gate.
type provider struct {
	name string
	gate chan struct{} // nil: answer at once

	mu      sync.Mutex
	errs    []error
	calls   map[string]int
	started chan string // gate ids as Trigger is entered (buffered)
}

func newProvider(name string) *provider {
	return &provider{name: name, calls: map[string]int{}, started: make(chan string, 100)}
}

func (p *provider) Trigger(ctx context.Context, req pipelines.Request) (pipelines.Run, error) {
	p.mu.Lock()
	p.calls[req.GateID]++
	var err error
	if len(p.errs) > 0 {
		err, p.errs = p.errs[0], p.errs[1:]
	}
	p.mu.Unlock()
	p.started <- req.GateID
	if p.gate != nil {
		select {
		case <-p.gate:
		case <-ctx.Done():
			return pipelines.Run{}, ctx.Err()
		}
	}
	if err != nil {
		return pipelines.Run{}, err
	}
	return pipelines.Run{ID: "run-" + req.GateID, Status: pipelines.StatusRunning}, nil
}

func (p *provider) Status(ctx context.Context, run pipelines.Run) (pipelines.Run, error) {
	run.Status = pipelines.StatusSucceeded
	return run, nil
}

func (p *provider) count(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[id]
}

func (p *provider) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.calls {
		n += c
	}
	return n
}

// idempotentProvider may be repeated safely.
type idempotentProvider struct{ *provider }

func (idempotentProvider) RepeatableTrigger(context.Context, pipelines.Request) bool { return true }

// sent is one card update the fake Teams made.
type sent struct {
	gate, conv, digest string
	state              approvals.State
	version            int64
	at                 time.Time
}

// teams is a fake engine.Teams. A card's digest is what a person would see
// (state and approvals), so a change that shows nothing new sends nothing,
// as handlers' renders do. Conversations in paced answer "not now"; in
// block, SyncCard waits until the channel is closed.
type teams struct {
	mu       sync.Mutex
	paced    map[string]time.Duration
	block    map[string]chan struct{}
	calls    []sent // every SyncCard call
	sends    []sent // the ones that sent a card
	posted   []string
	expired  []string
	reminded []string
}

func newTeams() *teams {
	return &teams{paced: map[string]time.Duration{}, block: map[string]chan struct{}{}}
}

type pacedErr struct{ d time.Duration }

func (e pacedErr) Error() string             { return fmt.Sprintf("paced for %s", e.d) }
func (e pacedErr) RetryAfter() time.Duration { return e.d }

func convOf(g *approvals.Gate) string {
	var ref struct {
		Conversation struct {
			ID string `json:"id"`
		} `json:"conversation"`
	}
	json.Unmarshal(g.Post.Conversation, &ref)
	return ref.Conversation.ID
}

func (f *teams) SyncCard(ctx context.Context, g *approvals.Gate, last string) (string, error) {
	conv := convOf(g)
	digest := fmt.Sprintf("%s/%d", g.State, len(g.Approvals()))
	f.mu.Lock()
	s := sent{gate: g.ID, conv: conv, digest: digest, state: g.State, version: g.Version, at: time.Now()}
	f.calls = append(f.calls, s)
	wait, paced := f.paced[conv]
	block := f.block[conv]
	f.mu.Unlock()
	if paced {
		return "", pacedErr{wait}
	}
	if digest == last {
		return digest, nil
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	f.mu.Lock()
	f.sends = append(f.sends, s)
	f.mu.Unlock()
	return digest, nil
}

func (f *teams) PostCard(ctx context.Context, g *approvals.Gate) error {
	f.mu.Lock()
	f.posted = append(f.posted, g.ID)
	f.mu.Unlock()
	return nil
}

func (f *teams) RemindApprovers(ctx context.Context, g *approvals.Gate) error {
	f.mu.Lock()
	f.reminded = append(f.reminded, g.ID)
	f.mu.Unlock()
	return nil
}

func (f *teams) NotifyExpired(ctx context.Context, g *approvals.Gate) {
	f.mu.Lock()
	f.expired = append(f.expired, g.ID)
	f.mu.Unlock()
}

func (f *teams) sendsOf(id string) []sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []sent
	for _, s := range f.sends {
		if s.gate == id {
			out = append(out, s)
		}
	}
	return out
}

func (f *teams) ncalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func (f *teams) callsIn(conv string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, s := range f.calls {
		if s.conv == conv {
			n++
		}
	}
	return n
}

// run starts an engine on store with these pipelines; it stops with the
// test.
func run(t *testing.T, store *approvals.Store, tm *teams, name string, pls map[string]*Pipeline) *Engine {
	t.Helper()
	return runWith(t, store, tm, name, pls, nil)
}

// runWith is run with Options changed by set.
func runWith(t *testing.T, store *approvals.Store, tm *teams, name string, pls map[string]*Pipeline, set func(*Options)) *Engine {
	t.Helper()
	o := Options{
		Store: store, Teams: tm, Pipelines: pls, Instance: name,
		Logger:            slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
		TriggerVisibility: 10 * time.Second, TriggerBudget: 5 * time.Second, ProviderTimeout: 4 * time.Second,
		CardLease: 500 * time.Millisecond, Tick: 10 * time.Millisecond, UnpostedEvery: 50 * time.Millisecond,
	}
	if set != nil {
		set(&o)
	}
	e, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

func pipeline(p pipelines.Provider, provider string) *Pipeline {
	return &Pipeline{Def: &pipelines.Definition{Name: "x"}, Provider: p, ProviderName: provider, ProviderType: "fake", PollEvery: 20 * time.Millisecond}
}

var (
	alice = approvals.Person{ID: "29:alice", Name: "Alice"}
	bob   = approvals.Person{ID: "29:bob", Name: "Bob"}
	carol = approvals.Person{ID: "29:carol", Name: "Carol"}
)

// posted opens a gate of pipeline with quorum required and records its
// card as posted in conversation conv.
func posted(t *testing.T, s *approvals.Store, pipeline, conv string, required int) *approvals.Gate {
	t.Helper()
	ctx := t.Context()
	g, _, err := s.Create(ctx, &approvals.Gate{Pipeline: pipeline, Requester: alice, Policy: approvals.Policy{Required: required, Timeout: time.Hour}}, "")
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := json.Marshal(map[string]any{"conversation": map[string]string{"id": conv}})
	g, err = s.SetPost(ctx, g.ID, approvals.Post{Conversation: ref, ActivityID: "act-" + g.ID}, "")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func approve(t *testing.T, s *approvals.Store, id string, who approvals.Person) *approvals.Gate {
	t.Helper()
	g, _, err := s.Decide(t.Context(), id, who, true, "", "conv")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func stateOf(t *testing.T, s *approvals.Store, id string) approvals.State {
	t.Helper()
	g, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return g.State
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
