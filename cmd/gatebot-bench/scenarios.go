package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatebot/gatebot/cmd/gatebot-bench/internal/fakes"
)

// bench is one run: the fakes, the Teams client and the results.
type bench struct {
	opt        options
	teams      *teams
	conn       *fakes.Connector
	prov       *fakes.Provider
	idp        *fakes.IdP
	gatebotURL string
	apiToken   string
	// appPassword is the bot's client secret, for a --reference bot.
	appPassword string
	prof        *profiler // nil unless --profile-dir
	claimed     atomic.Int64
	// replicas are the gatebots the bench started (none with --target or
	// --reference).
	replicas []*replica
	// ownRedis is the redis-server the bench started (redis-restart),
	// nil otherwise.
	ownRedis *ownRedis
	// faults is the fault scenarios' record (faults.go).
	faults faultRecord
	// prefix is the run's Redis key prefix.
	prefix string
	// soakRun is the soak scenario's account (nil for the others).
	soakRun *soakState

	mu       sync.Mutex
	gates    []*gateResult
	echo     echoStats
	killedAt time.Time // when replica 1 was sent SIGKILL
}

// claim reserves the next gate number; false once --gates are taken.
func (b *bench) claim() (int, bool) {
	n := int(b.claimed.Add(1))
	return n, n <= b.opt.gates
}

// scenarios maps --scenario to its driver.
var scenarios = map[string]func(*bench, context.Context){
	"flow":      (*bench).flow,
	"hang":      (*bench).hang,
	"conn-down": (*bench).connDown,
	"echo":      (*bench).echoTurns,
	"api":       (*bench).api,

	// Faults (faults*.go).
	"redis-restart":   (*bench).redisRestart,
	"provider-faults": (*bench).providerFaults,

	// Soak (soak*.go).
	"soak": (*bench).soak,
}

// workers runs fn for conversations from..N-1 in parallel until --gates
// are claimed or ctx ends.
func (b *bench) workers(ctx context.Context, from int, fn func(ctx context.Context, c convo, n int)) {
	var wg sync.WaitGroup
	for i := from; i < b.opt.conversations; i++ {
		c := b.convo(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				n, ok := b.claim()
				if !ok {
					return
				}
				fn(ctx, c, n)
				b.think(ctx)
			}
		}()
	}
	wg.Wait()
}

func (b *bench) convo(i int) convo {
	c := newConvo(i)
	for _, u := range []user{c.Requester, c.Approvers[0], c.Approvers[1]} {
		b.conn.AddMember(fakes.Member{ID: u.ID, Name: u.Name, AADObjectID: u.AAD, UserPrincipalName: u.UPN, TenantID: tenantID})
	}
	return c
}

// flow: every conversation opens gates back to back on the fast pipeline.
func (b *bench) flow(ctx context.Context) {
	b.workers(ctx, 0, func(ctx context.Context, c convo, n int) { b.runChatGate(ctx, c, pipelineFast, n) })
}

// disturbed runs one special gate in conversation 0 next to the flow in
// the other conversations, and stops waiting for it once the flow is
// done: the special gate is expected to be stuck.
func (b *bench) disturbed(ctx context.Context, pipeline, label string) {
	dctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		g := b.runChatGate(dctx, b.convo(0), pipeline, 0)
		g.Special = label
	}()
	// Let the special gate get stuck first, so the flow runs beside it.
	select {
	case <-time.After(300 * time.Millisecond):
	case <-ctx.Done():
	}
	b.workers(ctx, 1, func(ctx context.Context, c convo, n int) { b.runChatGate(ctx, c, pipelineFast, n) })
	stop()
	<-done
}

// hang: conversation 0 approves a gate whose provider hangs (--hang),
// while the others use the fast pipeline.
func (b *bench) hang(ctx context.Context) {
	b.prov.SetBehaviour(hookHang, fakes.Behaviour{Hang: b.opt.hang, RunFor: b.opt.runFor})
	b.disturbed(ctx, pipelineHang, "provider hangs "+b.opt.hang.String())
}

// connDown: conversation 0's Connector fails as --down-mode says (503,
// 403, 429, 502 or closed connections) for the whole run, or from its
// card on for --down-for, while the others run the flow (faults_conn.go).
func (b *bench) connDown(ctx context.Context) {
	if b.opt.downFor > 0 {
		b.connDownFor(ctx)
		return
	}
	mode, label := connMode(b.opt.downMode)
	b.conn.SetMode(newConvo(0).ID, mode)
	b.disturbed(ctx, pipelineFast, label)
}

// api: gates opened over the external API with a token from `gatebot
// token create`, approved in their channel threads.
func (b *bench) api(ctx context.Context) {
	b.workers(ctx, 0, func(ctx context.Context, c convo, n int) { b.runAPIGate(ctx, c, n) })
}

// echoStats counts help turns.
type echoStats struct {
	Sent, Acked, Replied, Failed int
	Ack, Reply                   []time.Duration
	// Reasons counts failures by a short cause (first 80 bytes of the
	// error), so a report says why turns failed, not only how many.
	Reasons map[string]int
}

// echoInterval is how long each echo conversation waits between turns so
// that all of them together send --rate turns a second (default: one a
// second each).
func (b *bench) echoInterval() time.Duration {
	rate := b.opt.rate
	if rate <= 0 {
		rate = float64(b.opt.conversations)
	}
	return time.Duration(float64(b.opt.conversations) / rate * float64(time.Second))
}

// echoTurns: authenticated "help" turns at --rate over all conversations
// until --messages or the duration.
func (b *bench) echoTurns(ctx context.Context) {
	interval := b.echoInterval()
	var (
		sent  atomic.Int64
		wg    sync.WaitGroup
		waits sync.WaitGroup
	)
	for i := 0; i < b.opt.conversations; i++ {
		c := b.convo(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread the conversations over one interval.
			t := time.NewTimer(time.Duration(rand.Int64N(int64(interval) + 1)))
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				if b.opt.messages > 0 && sent.Add(1) > int64(b.opt.messages) {
					return
				}
				t.Reset(interval)
				b.echoOnce(ctx, c, &waits)
			}
		}()
	}
	wg.Wait()
	waits.Wait()
}

func (b *bench) echoOnce(ctx context.Context, c convo, waits *sync.WaitGroup) {
	// A turn sent before the driving phase ends is finished, not
	// cancelled mid-flight: a cancelled request is the bench's doing, not
	// a failed turn.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.opt.stepTimeout)
	defer cancel()
	id, sentAt, rtt, err := b.teams.message(sctx, c, c.Requester, "help")
	b.mu.Lock()
	b.echo.Sent++
	if err != nil {
		b.echo.Failed++
		if b.echo.Reasons == nil {
			b.echo.Reasons = map[string]int{}
		}
		b.echo.Reasons[reason(err)]++
		b.mu.Unlock()
		return
	}
	b.echo.Acked++
	b.echo.Ack = append(b.echo.Ack, rtt)
	b.mu.Unlock()
	waits.Add(1)
	go func() {
		defer waits.Done()
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.opt.stepTimeout)
		defer cancel()
		reply, _, err := b.conn.Wait(wctx, c.ID, 0, func(call fakes.Call) bool { return call.OK() && call.ReplyToID == id })
		b.mu.Lock()
		defer b.mu.Unlock()
		if err != nil {
			return
		}
		b.echo.Replied++
		b.echo.Reply = append(b.echo.Reply, reply.At.Sub(sentAt))
	}()
}

var addrRe = regexp.MustCompile(`\d+\.\d+\.\d+\.\d+:\d+`)

// reason is a failure's cause for counting: addresses and ports
// (different on every connection) are blanked, and it is cut at 100 bytes.
func reason(err error) string {
	return fmt.Sprintf("%.100s", addrRe.ReplaceAllString(err.Error(), "ADDR"))
}

// describe is the -h text of each scenario.
var describe = map[string]string{
	"flow":      "N conversations open gates back to back on a fast webhook pipeline: /run → card → both approvers click (each twice at once) → provider called → run on the card → succeeded.",
	"hang":      "conversation 0 approves a gate whose provider hangs for --hang while conversations 1..N-1 run the flow; shows whether one stuck provider delays everyone.",
	"conn-down": "conversation 0's Bot Connector answers 503 (--down-mode down), 403 (refuse), 429 with Retry-After (429), 502 (502) or closes the connection (unreachable) while conversations 1..N-1 run the flow: for the whole run, or with --down-for D from its card's post for D, after which the card's last accepted update must show the final state.",
	"echo":      "authenticated `help` turns at --rate messages/s spread over --conversations (default ~1 msg/s each) for --duration; measures turn ack and reply latency.",
	"api":       "gates opened with POST /api/v1/gates and a token from `gatebot token create`; each card is a new channel thread, approved there like the flow.",

	// Faults (faults*.go).
	"redis-restart":   redisRestartHelp,
	"provider-faults": providerFaultsHelp,

	// Soak (soak*.go).
	"soak": "for --duration (default 10m): help turns over --conversations (default 1250) at --rate (default 0.4 a second each: Teams' sustained per-conversation rate is 0.45), Teams gates at --gate-rate and API gates at --api-rate, all at once; samples gatebot's RSS, goroutines and heap (/metrics), Redis memory and the run's keys every --sample-every and judges their growth from the first window after --warmup to the last (--max-growth); short --retention.",
}

func scenarioHelp() string {
	s := ""
	for _, name := range []string{"flow", "hang", "conn-down", "echo", "api", "redis-restart", "provider-faults", "soak"} {
		s += fmt.Sprintf("  %-15s %s\n", name, describe[name])
	}
	return s
}
