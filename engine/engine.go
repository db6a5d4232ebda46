// Package engine does gatebot's work after a decision: it starts the runs
// of granted gates, follows them, expires stale gates, posts cards that
// never went up and keeps every gate's shared card current. Each kind of
// work has its own bounded pool of goroutines, and providers and
// conversations are isolated from each other: a provider that hangs holds
// at most its own slots, a paced or unreachable conversation delays only
// its own cards, and nothing waits for a card.
//
// The work itself is queued in Redis by approvals, in the same transaction
// as the change that calls for it (the outbox), so any replica may do any
// piece of it and a replica that dies leaves its claimed work to the
// others once the claim's lease runs out.
//
// The engine is not HTTP and not Teams: it must not import net/http server
// code, nor gatebot's bot, cards or handlers packages. It reaches the chat
// only through the Teams interface, which handlers implements.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/pipelines"
)

// Store is the part of the approvals store the engine works on.
// *approvals.Store implements it.
type Store interface {
	Get(ctx context.Context, id string) (*approvals.Gate, error)

	PrepareTriggers(ctx context.Context, pipelines []string) error
	ClaimTriggers(ctx context.Context, consumer string, want map[string]int, block time.Duration) ([]approvals.Trigger, error)
	AckTrigger(ctx context.Context, t approvals.Trigger) error
	ReleaseTrigger(ctx context.Context, t approvals.Trigger) error
	BeginTriggerAttempt(ctx context.Context, id string) (*approvals.Gate, approvals.Attempt, error)
	FinishTrigger(ctx context.Context, id string, run pipelines.Run, runErr error, userSafeMsg string, pollAt time.Time) (*approvals.Gate, error)

	ClaimPolls(ctx context.Context, limit int, lease time.Duration) ([]*approvals.Gate, time.Time, error)
	DeferPoll(ctx context.Context, id string, at time.Time) error
	RecordRun(ctx context.Context, id string, run pipelines.Run, next time.Time) (*approvals.Gate, error)

	ExpireDue(ctx context.Context, limit int) ([]*approvals.Gate, error)
	AckExpired(ctx context.Context, id string) error
	DueUnposted(ctx context.Context, limit int) ([]*approvals.Gate, error)
	DueReminders(ctx context.Context, limit int) ([]*approvals.Gate, error)
	AckReminder(ctx context.Context, id string) error

	ClaimCardSyncs(ctx context.Context, limit int, lease time.Duration) ([]approvals.CardSync, time.Time, error)
	CardsQueued() <-chan struct{}
	FinishCardSync(ctx context.Context, id string, version int64, digest string, final bool) error
	DeferCardSync(ctx context.Context, id string, at time.Time) error
	LoadCardSync(ctx context.Context, id string) (approvals.CardState, error)

	Outbox(ctx context.Context) ([]approvals.OutboxStats, error)
	List(ctx context.Context, q approvals.ListQuery) ([]*approvals.Gate, string, error)
}

// Teams is how the engine reaches the chat. handlers implements it.
type Teams interface {
	// SyncCard makes g's shared card show g as it is now, unless the card
	// it would send has lastDigest, the digest of the card already shown.
	// It returns the digest of the card shown afterwards. It must not
	// wait for pacing: a call the conversation's limits do not allow now
	// fails with an error that has a RetryAfter() time.Duration method,
	// and a card that can never be updated (deleted, bot removed) with
	// ErrCardGone.
	SyncCard(ctx context.Context, g *approvals.Gate, lastDigest string) (string, error)
	// PostCard posts the card of a pending gate whose card never went up
	// (gatebot stopped between storing the gate and posting it).
	PostCard(ctx context.Context, g *approvals.Gate) error
	// NotifyExpired tells the requester their gate expired.
	NotifyExpired(ctx context.Context, g *approvals.Gate)
	// RemindApprovers reminds the approvers of a gate still pending shortly
	// before its deadline (approval.remind_before).
	RemindApprovers(ctx context.Context, g *approvals.Gate) error
}

// ErrCardGone marks a card that cannot be updated any more.
var ErrCardGone = errors.New("the card can no longer be updated")

// Observer receives measurements; nil discards them. The metrics package
// implements it.
type Observer interface {
	ProviderCall(provider, op, outcome string, d time.Duration)
	OutboxDepth(kind string, n int, oldest time.Duration)
}

// Pipeline is one configured pipeline as the engine sees it.
type Pipeline struct {
	Def      *pipelines.Definition
	Provider pipelines.Provider
	// ProviderName keys the per-provider concurrency limit: pipelines on
	// one provider share its slots. Default: ProviderType.
	ProviderName string
	ProviderType string // for messages, e.g. "jenkins"
	PollEvery    time.Duration
}

// Options configure an Engine. Zero values get the defaults below except
// where noted.
type Options struct {
	Store     Store                // required
	Teams     Teams                // required
	Pipelines map[string]*Pipeline // the pipelines this replica serves
	// Instance names this replica in the trigger consumer group. Required.
	Instance string
	Logger   *slog.Logger
	Observer Observer
	Now      func() time.Time

	// TriggerWorkers bounds provider calls to start runs at once, default
	// 16; PerProvider bounds them per provider, default 4. Polls have
	// their own pools of the same sizes.
	TriggerWorkers, PerProvider  int
	PollWorkers, PollPerProvider int
	// CardWorkers bounds card updates in flight, default 16.
	CardWorkers int

	// TriggerBudget bounds one trigger, provider retries included, default
	// 150 s. It must stay under TriggerVisibility.
	TriggerBudget time.Duration
	// TriggerVisibility is the store's trigger lease and redelivery
	// timeout (approvals.Options.TriggerVisibility). Required.
	TriggerVisibility time.Duration
	// ProviderTimeout bounds one provider call, default 30 s, at most
	// TriggerBudget.
	ProviderTimeout time.Duration
	// CardLease bounds one card update, default 30 s: a sync claimed by a
	// replica that died comes back to the others after it.
	CardLease time.Duration
	// PollLease is how long a claimed run poll is hidden from other
	// replicas, default 1 minute; it must exceed ProviderTimeout, so a live
	// poll is not taken over while its status call may still answer.
	PollLease time.Duration
	// Tick is how often the schedules are looked at when idle, default
	// 250 ms. The card and poll workers instead sleep until their next
	// entry is due, woken by work this replica's Store queues, and look at
	// least every 4 Ticks for work other replicas queued (see idleLook).
	Tick time.Duration
	// UnpostedEvery is how often unposted gates are looked for, default 10 s.
	UnpostedEvery time.Duration

	// Fleet is the replica registry. With it, the engine stands back while
	// another deployment that was first uses the prefix, and fails the
	// triggers of pipelines no live replica serves once they have waited
	// UnknownPipelineGrace (default 10 min; looked for every UnservedEvery,
	// default 30 s). Without it such triggers wait.
	Fleet                               Fleet
	UnknownPipelineGrace, UnservedEvery time.Duration

	// Tracer, when set, traces each trigger, poll and card sync and the
	// provider call in it (OpenTelemetry); nil traces nothing.
	Tracer trace.Tracer
}

// Defaults.
const (
	DefaultTriggerWorkers = 16
	DefaultPerProvider    = 4
	DefaultCardWorkers    = 16
	DefaultTriggerBudget  = 150 * time.Second
	defaultProviderTimout = 30 * time.Second
	defaultCardLease      = 30 * time.Second
	defaultTick           = 250 * time.Millisecond
	defaultUnpostedEvery  = 10 * time.Second
	defaultPollEvery      = 10 * time.Second
	maxPollEvery          = 2 * time.Minute
	defaultPollLease      = time.Minute
	triggerBlock          = time.Second
	statsEvery            = 5 * time.Second
	shortBlock            = 20 * time.Millisecond
)

// Engine runs the work queues. Create it with New and run it with Run.
type Engine struct {
	opts Options
	log  *slog.Logger

	triggers *pools
	polls    *pools
	cards    chan struct{} // card worker slots
	// pollWake wakes the poll worker before pollPlanned (unix ms), when
	// it would next look, if this engine schedules a poll due sooner.
	pollWake    chan struct{}
	pollPlanned atomic.Int64

	mu         sync.Mutex
	cardErrors map[string]int // gate id → consecutive failed updates
	wg         sync.WaitGroup
}

// New validates o and returns an Engine.
func New(o Options) (*Engine, error) {
	var errs []error
	if o.Store == nil {
		errs = append(errs, errors.New("engine: Store is required"))
	}
	if o.Teams == nil {
		errs = append(errs, errors.New("engine: Teams is required"))
	}
	if o.Instance == "" {
		errs = append(errs, errors.New("engine: Instance is required"))
	}
	for name, p := range o.Pipelines {
		if p == nil || p.Provider == nil || p.Def == nil {
			errs = append(errs, fmt.Errorf("engine: pipeline %q needs a definition and a provider", name))
		}
	}
	setDefault(&o.TriggerWorkers, DefaultTriggerWorkers)
	setDefault(&o.PerProvider, DefaultPerProvider)
	setDefault(&o.PollWorkers, DefaultTriggerWorkers)
	setDefault(&o.PollPerProvider, DefaultPerProvider)
	setDefault(&o.CardWorkers, DefaultCardWorkers)
	setDefault(&o.TriggerBudget, DefaultTriggerBudget)
	setDefault(&o.ProviderTimeout, defaultProviderTimout)
	setDefault(&o.CardLease, defaultCardLease)
	setDefault(&o.PollLease, defaultPollLease)
	setDefault(&o.Tick, defaultTick)
	setDefault(&o.UnpostedEvery, defaultUnpostedEvery)
	setDefault(&o.UnknownPipelineGrace, DefaultUnknownPipelineGrace)
	setDefault(&o.UnservedEvery, defaultUnservedEvery)
	// The invariants that keep a trigger exactly once: a begun trigger
	// ends (provider retries included) before its lease does, so no other
	// replica takes it over while it may still start a run.
	switch {
	case o.TriggerVisibility <= 0:
		errs = append(errs, errors.New("engine: TriggerVisibility is required (the store's trigger lease)"))
	case o.TriggerBudget >= o.TriggerVisibility:
		errs = append(errs, fmt.Errorf("engine: TriggerBudget %s must be shorter than the store's TriggerVisibility %s", o.TriggerBudget, o.TriggerVisibility))
	}
	if o.ProviderTimeout > o.TriggerBudget {
		errs = append(errs, fmt.Errorf("engine: ProviderTimeout %s must not exceed TriggerBudget %s", o.ProviderTimeout, o.TriggerBudget))
	}
	if o.PollLease <= o.ProviderTimeout {
		errs = append(errs, fmt.Errorf("engine: PollLease %s must be longer than ProviderTimeout %s", o.PollLease, o.ProviderTimeout))
	}
	if o.PerProvider > o.TriggerWorkers || o.PollPerProvider > o.PollWorkers {
		errs = append(errs, errors.New("engine: a per-provider limit exceeds its pool"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, p := range o.Pipelines {
		if p.ProviderName == "" {
			p.ProviderName = p.ProviderType
		}
	}
	return &Engine{
		opts:       o,
		log:        log.With("component", "engine", "instance", o.Instance),
		triggers:   newPools(o.TriggerWorkers, o.PerProvider),
		polls:      newPools(o.PollWorkers, o.PollPerProvider),
		cards:      make(chan struct{}, o.CardWorkers),
		pollWake:   make(chan struct{}, 1),
		cardErrors: map[string]int{},
	}, nil
}

func setDefault[T int | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// Run works the queues until ctx ends, then waits for work in flight: a
// begun trigger runs to its end (within TriggerBudget), since cancelling
// a provider call midway would leave its outcome unknown.
func (e *Engine) Run(ctx context.Context) error {
	names := make([]string, 0, len(e.opts.Pipelines))
	for n := range e.opts.Pipelines {
		names = append(names, n)
	}
	sort.Strings(names)
	if err := e.opts.Store.PrepareTriggers(ctx, names); err != nil {
		e.log.WarnContext(ctx, "could not prepare the trigger queues yet; retrying on first use", "err", err)
	}
	loops := []func(context.Context){e.triggerLoop, e.pollLoop, e.cardLoop, e.expiryLoop, e.remindLoop, e.unpostedLoop, e.unservedLoop, e.statsLoop}
	var wg sync.WaitGroup
	for _, loop := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(ctx)
		}()
	}
	wg.Wait()
	e.wg.Wait()
	return nil
}

// statsLoop reports the outbox's depth and age, which every replica reads
// from the same Redis (dashboards take the max, not the sum).
func (e *Engine) statsLoop(ctx context.Context) {
	if e.opts.Observer == nil {
		return
	}
	for sleep(ctx, statsEvery) {
		stats, err := e.opts.Store.Outbox(ctx)
		if err != nil {
			continue // the store's own errors are counted by the Redis hook
		}
		for _, st := range stats {
			e.opts.Observer.OutboxDepth(st.Kind, int(st.Depth), st.Oldest)
		}
	}
}

// spawn runs fn in a tracked goroutine that Run waits for.
func (e *Engine) spawn(fn func()) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		fn()
	}()
}

func (e *Engine) observe(p *Pipeline, op string, err error, start time.Time) {
	if e.opts.Observer == nil {
		return
	}
	outcome := "ok"
	if err != nil {
		outcome = "error"
		var ae *pipelines.APIError
		if errors.As(err, &ae) && (ae.StatusCode == 429 || ae.RateLimited) {
			outcome = "throttled"
		}
	}
	e.opts.Observer.ProviderCall(p.ProviderName, op, outcome, e.opts.Now().Sub(start))
}

// idleLook is the longest a card or poll worker sleeps with nothing due
// that it knows of. Work this replica queues wakes it at once; work
// another replica queues wakes that one's workers, and is met here within
// idleLook only if that replica cannot take it.
func (e *Engine) idleLook() time.Duration { return 4 * e.opts.Tick }

// untilNext is how long a worker whose claim came back short sleeps: until
// next, the first entry left (zero: none), at most idleLook, at least
// floor, which keeps an entry due within the millisecond from spinning.
func (e *Engine) untilNext(next time.Time, floor time.Duration) time.Duration {
	d := e.idleLook()
	if !next.IsZero() {
		d = min(d, next.Sub(e.opts.Now()))
	}
	return max(d, floor)
}

// sleepOrWake waits d, a value on wake, or the end of ctx; it reports
// whether to go on, and whether wake ended the wait.
func sleepOrWake(ctx context.Context, d time.Duration, wake <-chan struct{}) (goOn, woken bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false, false
	case <-t.C:
		return true, false
	case <-wake:
		return true, true
	}
}

// sleep waits d or until ctx ends; it reports whether to go on.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func pollEvery(p *Pipeline) time.Duration {
	if p != nil && p.PollEvery > 0 {
		return p.PollEvery
	}
	return defaultPollEvery
}
