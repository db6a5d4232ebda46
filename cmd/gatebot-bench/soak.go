package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatebot/gatebot/cmd/gatebot-bench/internal/fakes"
)

// Soak defaults: the ten minutes at 500 help turns a second,
// spread so that no conversation outruns Teams' sustained per-conversation
// rate (gatebot's pacer: 0.45 sends a second after a burst of 45).
const (
	soakDefaultDuration      = 10 * time.Minute
	soakDefaultConversations = 1250
	soakDefaultPerConvRate   = 0.4 // help turns a second per conversation
	// gatebotPostLease is gatebot's card-post lease (handlers.postLease):
	// its posting:<id> keys live this long whatever the retention, so the
	// first window of a long soak starts after it.
	gatebotPostLease = 4 * time.Minute
	// gatebotDedupeTTL is how long gatebot keeps an activity's dedupe
	// marker (handlers.dedupeTTL): far longer than any soak.
	gatebotDedupeTTL = 24 * time.Hour
)

// soakOptions are the soak scenario's settings.
type soakOptions struct {
	gateRate    float64       // Teams gates opened per second
	apiRate     float64       // API gates opened per second
	sampleEvery time.Duration // 0: auto
	warmup      time.Duration // start of the first window; 0: auto
	window      time.Duration // length of both windows; 0: auto
	retention   time.Duration // approvals.retention and audit_max_age; 0: auto
	maxGrowth   float64       // allowed growth, a share of the first window's median
}

// register adds the soak flags to fs.
func (s *soakOptions) register(fs *flag.FlagSet) {
	fs.Float64Var(&s.gateRate, "gate-rate", 2, "soak: Teams gates opened per second (open, two approvals, trigger, run to succeeded), spread over their own conversations")
	fs.Float64Var(&s.apiRate, "api-rate", 0.4, "soak: gates opened per second over the external API (each a new thread in the one bench channel, whose creates gatebot paces like a conversation's sends, so keep it under 0.45)")
	fs.DurationVar(&s.sampleEvery, "sample-every", 0, "soak: how often gatebot's RSS, goroutines, heap, Redis memory and keys are sampled (0: 10s, less for short runs)")
	fs.DurationVar(&s.warmup, "warmup", 0, "soak: start of the first comparison window (0: after gatebot's 4m card-post lease and the retention, at most half the run)")
	fs.DurationVar(&s.window, "window", 0, "soak: length of the first and the last comparison window (0: 1m, at most a quarter of the run)")
	fs.DurationVar(&s.retention, "retention", 0, "soak: gatebot's approvals.retention and audit_max_age, so ended gates leave within the run (0: 1m, at most a quarter of the run, at least 5s)")
	fs.Float64Var(&s.maxGrowth, "max-growth", 0.10, "soak: --assert-exact fails if a measure's last-window median exceeds the first window's by more than this share (and its absolute floor)")
}

// soakDefaults applies the soak's own defaults to flags not given: a
// 10-minute run over 1250 echo conversations at 0.4 turns a second each.
func (o *options) soakDefaults(fs *flag.FlagSet) {
	if o.scenario != "soak" {
		return
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["duration"] {
		o.duration = soakDefaultDuration
	}
	if !set["conversations"] {
		o.conversations = soakDefaultConversations
	}
	if !set["rate"] {
		o.rate = soakDefaultPerConvRate * float64(o.conversations)
	}
}

// soakProblems checks the soak flags.
func (o options) soakProblems() []string {
	s := o.soak
	var errs []string
	if s.gateRate < 0 || s.apiRate < 0 || s.sampleEvery < 0 || s.warmup < 0 || s.window < 0 || s.retention < 0 || s.maxGrowth < 0 {
		errs = append(errs, "--gate-rate, --api-rate, --sample-every, --warmup, --window, --retention and --max-growth must not be negative")
	}
	if o.scenario != "soak" {
		return errs
	}
	if s.gateRate > 50 || s.apiRate > 20 {
		errs = append(errs, "--gate-rate must be at most 50 and --api-rate at most 20 (each conversation and the channel obey Teams' limits)")
	}
	if o.replicas > 1 || o.reference != "" {
		errs = append(errs, "--scenario soak drives one gatebot: it excludes --replicas and --reference")
	}
	if w := o.soakWindows(); w.warmup+w.window > o.duration-w.window {
		errs = append(errs, fmt.Sprintf("soak: the first window (%s from %s) must end before the last one (the last %s of --duration %s); shorten --warmup or --window", w.window, w.warmup, w.window, o.duration))
	}
	return errs
}

// soakWindow is where the two comparison windows lie and how often the
// run is sampled.
type soakWindow struct {
	warmup, window, every, retention time.Duration
}

// soakWindows resolves the automatic soak settings for --duration.
func (o options) soakWindows() soakWindow {
	s, d := o.soak, o.duration
	w := soakWindow{warmup: s.warmup, window: s.window, every: s.sampleEvery, retention: s.retention}
	if w.retention == 0 {
		w.retention = max(5*time.Second, min(time.Minute, d/4)).Truncate(time.Second)
	}
	if w.window == 0 {
		w.window = min(time.Minute, d/4)
	}
	if w.warmup == 0 {
		w.warmup = min(max(2*time.Minute, w.retention+time.Minute, gatebotPostLease+30*time.Second), d/2)
	}
	if w.every == 0 {
		w.every = min(10*time.Second, max(time.Second, d/24)).Truncate(100 * time.Millisecond)
	}
	return w
}

// soakLoad counts what one of the soak's drivers did.
type soakLoad struct {
	Launched int `json:"launched"`
	// Behind counts launches skipped because every conversation (or
	// caller) of this driver was still busy: the bench fell behind its
	// rate.
	Behind int `json:"behind"`
}

// soakState is the soak's running account, read by the sampler.
type soakState struct {
	start    time.Time
	echoOK   atomic.Int64 // help turns replied to
	echoFail atomic.Int64
	gatesOK  atomic.Int64 // gates (chat and API) whose card showed succeeded
	gatesBad atomic.Int64 // gates that stopped short of that

	mu        sync.Mutex
	chat, api soakLoad
	samples   []soakSample
	sampleErr map[string]int
	seenBytes float64 // one dedupe marker's Redis memory, measured at the end
	notes     []string
}

// soak runs the steady mixed load for the driving phase: help turns over
// --conversations, Teams gates at --gate-rate and API gates at --api-rate,
// all at once, while gatebot and Redis are sampled; the result is kept
// for the report (soakReport).
func (b *bench) soak(ctx context.Context) {
	st := &soakState{start: time.Now(), sampleErr: map[string]int{}}
	b.soakRun = st
	w := b.opt.soakWindows()
	smp, err := newSampler(b, st)
	if err != nil {
		st.notes = append(st.notes, "no samples: "+err.Error())
	}
	var wg sync.WaitGroup
	run := func(fn func()) {
		wg.Add(1)
		go func() { defer wg.Done(); fn() }()
	}
	if smp != nil {
		run(func() { smp.loop(ctx, w) })
	}
	run(func() { b.soakEcho(ctx, st) })
	var n atomic.Int64
	if rate := b.opt.soak.gateRate; rate > 0 {
		pool := make([]convo, max(8, int(math.Ceil(rate*10))))
		for i := range pool {
			pool[i] = b.convo(b.opt.conversations + i) // their own, after the echo ones
		}
		run(func() {
			b.soakGates(ctx, rate, pool, &st.chat, st, func(ctx context.Context, c convo) *gateResult {
				return b.runChatGate(ctx, c, pipelineFast, int(n.Add(1)))
			})
		})
	}
	if rate := b.opt.soak.apiRate; rate > 0 {
		approvers := b.convo(b.opt.conversations + max(8, int(math.Ceil(b.opt.soak.gateRate*10))))
		pool := make([]convo, max(4, int(math.Ceil(rate*8))))
		for i := range pool {
			pool[i] = approvers
		}
		run(func() {
			b.soakGates(ctx, rate, pool, &st.api, st, func(ctx context.Context, c convo) *gateResult {
				return b.runAPIGate(ctx, c, int(n.Add(1)))
			})
		})
	}
	wg.Wait()
	if smp != nil {
		smp.close()
	}
}

// soakGates opens gates at rate, each in a conversation of pool that is
// not busy with another, and runs each to its end. A gate started before
// the driving phase ends is finished (each of its steps bounded by
// --step-timeout), not cut off.
func (b *bench) soakGates(ctx context.Context, rate float64, pool []convo, load *soakLoad, st *soakState, gate func(context.Context, convo) *gateResult) {
	idle := make(chan convo, len(pool))
	for _, c := range pool {
		idle <- c
	}
	every := time.Duration(float64(time.Second) / rate)
	tick := time.NewTicker(every)
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var c convo
		select {
		case c = <-idle:
		default:
			st.mu.Lock()
			load.Behind++
			st.mu.Unlock()
			continue
		}
		st.mu.Lock()
		load.Launched++
		st.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { idle <- c }()
			g := gate(context.WithoutCancel(ctx), c)
			if g.Stage == "succeeded" {
				st.gatesOK.Add(1)
			} else {
				st.gatesBad.Add(1)
			}
		}()
	}
}

// soakEcho sends help turns at --rate (default one a second per
// conversation) over --conversations until the driving phase ends. Each
// conversation waits for its reply before its next turn, so it never has
// more than one in flight; the replies' bodies are then forgotten (the
// fake Connector would otherwise keep every help card of the run).
func (b *bench) soakEcho(ctx context.Context, st *soakState) {
	interval := b.echoInterval()
	var wg sync.WaitGroup
	for i := 0; i < b.opt.conversations; i++ {
		c := b.convo(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTimer(time.Duration(rand.Int64N(int64(interval) + 1)))
			defer t.Stop()
			from := 0
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				t.Reset(interval)
				from = b.soakTurn(ctx, c, from, st)
			}
		}()
	}
	wg.Wait()
}

// soakTurn sends one help turn, waits for its reply and records both;
// it returns where conversation c's next reply will be recorded.
func (b *bench) soakTurn(ctx context.Context, c convo, from int, st *soakState) int {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.opt.stepTimeout)
	defer cancel()
	id, sentAt, rtt, err := b.teams.message(sctx, c, c.Requester, "help")
	var (
		reply fakes.Call
		next  = from
	)
	acked := err == nil
	if acked {
		reply, next, err = b.conn.Wait(sctx, c.ID, from, func(call fakes.Call) bool { return call.OK() && call.ReplyToID == id })
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.echo.Sent++
	if acked {
		b.echo.Acked++
		b.echo.Ack = append(b.echo.Ack, rtt)
	}
	if err != nil {
		b.echo.Failed++
		if b.echo.Reasons == nil {
			b.echo.Reasons = map[string]int{}
		}
		b.echo.Reasons[reason(err)]++
		st.echoFail.Add(1)
		return next
	}
	b.conn.DropBody(c.ID, next-1)
	b.echo.Replied++
	b.echo.Reply = append(b.echo.Reply, reply.At.Sub(sentAt))
	st.echoOK.Add(1)
	return next
}

// approvalsSection is the generated config's approvals: section: for the
// soak a short retention (and audit age), so ended gates and their audit
// entries leave within the run; nil (serve's 30 days) otherwise, so the
// other scenarios stay comparable.
func (o options) approvalsSection() map[string]any {
	if o.scenario != "soak" {
		return nil
	}
	r := o.soakWindows().retention.String()
	return map[string]any{"retention": r, "audit_max_age": r}
}

// soakSettings names the soak's settings in the report and adds the soak
// section.
func (b *bench) soakSettings(rep *report) {
	delete(rep.Settings, "gates")
	rate := b.opt.rate
	if rate <= 0 {
		rate = float64(b.opt.conversations)
	}
	rep.Settings["rate"] = fmt.Sprintf("%g/s", rate)
	rep.Settings["gate_rate"] = fmt.Sprintf("%g/s", b.opt.soak.gateRate)
	rep.Settings["api_rate"] = fmt.Sprintf("%g/s", b.opt.soak.apiRate)
	b.soakReport(rep)
}
