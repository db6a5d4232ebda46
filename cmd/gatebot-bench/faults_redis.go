package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatebot/gatebot/cmd/gatebot-bench/internal/fakes"
)

const redisRestartHelp = "the bench starts its own redis-server (--redis-server; --redis is not used) on a free loopback port, appendonly yes, appendfsync always, a temp dir, and runs the flow on it; at --restart-after it SIGKILLs Redis, keeps it down for --outage and restarts it from the same dir. A user told \"nothing was recorded\" (or shown the invoke error card) tries again a second later. With --redis-fault stop it SIGSTOPs Redis instead (a hung server) and SIGCONTs it after --outage. Checks: no click answered with success is lost (the gate's last card shows it succeeded, naming both approvers), outage answers are fast (p99 ≤ 3 s, hung: ≤ 5 s; the API answers 503 with Retry-After), gates opened after the restart succeed, the provider is called once per approved gate, and no /run told \"nothing was recorded\" gets a card."

const (
	// userRetryPause is how long a user told "try again" waits before
	// trying again (Teams allows about 2 sends a second per conversation,
	// so faster retries would only measure the bench's own throttling).
	userRetryPause = time.Second
	// maxRefusalP99 is the slowest p99 an outage answer may have while
	// Redis refuses connections (--redis-fault kill).
	maxRefusalP99 = 3 * time.Second
	// maxHungP99 is that limit while Redis hangs (--redis-fault stop):
	// commands then wait out the client's 2 s read timeout (and a pool
	// wait behind other stuck commands), and an invoke should be answered
	// within gatebot's 4 s invoke budget (handlers.invokeBudget); runs
	// measured up to 4.7 s, so the bench allows 5 s.
	maxHungP99 = 5 * time.Second
	// apiProbeEvery is the pace of the API probe.
	apiProbeEvery = 100 * time.Millisecond
	// finalCardWait bounds the wait for approved gates' final cards: past
	// the bench's poll lease (see redisEngine), which brings back a run
	// status that could not be recorded.
	finalCardWait = replicaPollLease + 9*time.Second
	// notRecorded is a fragment of handlers.storeDownMessage.
	notRecorded = "nothing was recorded"
)

// ownRedis is a redis-server the bench started and may kill and restart.
type ownRedis struct {
	bin, dir, addr string
	cmd            *exec.Cmd
	done           chan struct{}
}

// redisEngine is redis-restart's engine: section: the short leases of
// --replicas (replicas.go). Work whose store write failed at the fault
// comes back when its lease ends (a run status poll after poll_lease, a
// card sync after card_lease, a trigger after trigger_visibility); with
// serve's defaults (1 min, 30 s, 3 min) that outlasts a bench run.
func redisEngine() map[string]any { return engineSection(2) }

// startOwnRedisFor starts the bench's own redis-server for redis-restart
// and points opt.redis at it; nil for the other scenarios.
func startOwnRedisFor(ctx context.Context, opt *options, tmp string) (*ownRedis, error) {
	if opt.scenario != "redis-restart" {
		return nil, nil
	}
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	r := &ownRedis{bin: opt.redisServer, dir: filepath.Join(tmp, "redis"), addr: addr}
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := r.start(sctx); err != nil {
		return nil, err
	}
	opt.redis = "redis://" + addr + "/0"
	return r, nil
}

// start runs redis-server on r.addr with its AOF in r.dir and waits until
// it answers PING (after loading the AOF).
func (r *ownRedis) start(ctx context.Context) error {
	host, port, _ := strings.Cut(r.addr, ":")
	r.cmd = exec.Command(r.bin, "--bind", host, "--port", port, "--dir", r.dir, "--appendonly", "yes",
		"--appendfsync", "always", "--save", "", "--daemonize", "no", "--logfile", filepath.Join(r.dir, "redis.log"))
	if err := r.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", r.bin, err)
	}
	done := make(chan struct{})
	r.done = done
	go func() { _ = r.cmd.Wait(); close(done) }()
	return r.ping(ctx)
}

// ping waits until the server answers PING.
func (r *ownRedis) ping(ctx context.Context) error {
	rdb := redis.NewClient(&redis.Options{Addr: r.addr, DialTimeout: time.Second, MaxRetries: -1})
	defer rdb.Close()
	for {
		if err := rdb.Ping(ctx).Err(); err == nil {
			return nil
		}
		select {
		case <-r.done:
			return fmt.Errorf("%s exited at start:\n%s", r.bin, tail(filepath.Join(r.dir, "redis.log"), 20))
		case <-ctx.Done():
			return fmt.Errorf("redis-server on %s not answering: %w", r.addr, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// kill SIGKILLs the server (by its pid) and waits for it to exit.
func (r *ownRedis) kill() error {
	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-r.done
	return nil
}

// pause stops (SIGSTOP) or resumes (SIGCONT) the server.
func (r *ownRedis) pause(stop bool) error {
	sig := syscall.SIGCONT
	if stop {
		sig = syscall.SIGSTOP
	}
	return r.cmd.Process.Signal(sig)
}

// stop ends the server with SIGTERM (SIGKILL after 5 s); nil-safe.
func (r *ownRedis) stop() {
	if r == nil || r.cmd == nil {
		return
	}
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGCONT) // a stopped server cannot act on SIGTERM
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// redisRestart runs the flow while Redis is killed and restarted.
func (b *bench) redisRestart(ctx context.Context) {
	timeline := make(chan struct{})
	go func() { defer close(timeline); b.outageTimeline(ctx) }()
	pctx, stopProbe := context.WithCancel(ctx)
	probed := make(chan struct{})
	go func() { defer close(probed); b.apiProbe(pctx) }()
	turned := make(chan struct{})
	go func() { defer close(turned); b.runProbe(pctx) }()
	b.workers(ctx, 0, b.outageGate)
	<-timeline
	stopProbe()
	<-probed
	<-turned
	b.awaitFinalCards()
}

// outageTimeline kills Redis at --restart-after and restarts it after
// --outage. The restart happens even if the driving phase ended.
func (b *bench) outageTimeline(ctx context.Context) {
	select {
	case <-time.After(b.opt.restartAfter):
	case <-ctx.Done():
		return
	}
	stop := b.opt.redisFault == "stop"
	fault := b.ownRedis.kill
	if stop {
		fault = func() error { return b.ownRedis.pause(true) }
	}
	if err := fault(); err != nil {
		b.guarded(func() { b.faults.restartErr = err })
		return
	}
	b.guarded(func() { b.faults.killedAt = time.Now() })
	time.Sleep(b.opt.outage)
	// From here Redis may answer before start sees it do so.
	b.guarded(func() { b.faults.restartingAt = time.Now() })
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	var err error
	if stop {
		if err = b.ownRedis.pause(false); err == nil {
			err = b.ownRedis.ping(sctx)
		}
	} else {
		err = b.ownRedis.start(sctx)
	}
	b.guarded(func() { b.faults.upAt, b.faults.restartErr = time.Now(), err })
}

// inOutage reports whether Redis is down now: killed and not yet being
// restarted.
func (b *bench) inOutage() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.faults.killedAt.IsZero() && b.faults.restartingAt.IsZero()
}

// outageGate is one flow gate whose user tries again when told nothing
// was recorded: the /run until a card comes, each approver's click until
// it is answered with success.
func (b *bench) outageGate(ctx context.Context, c convo, n int) {
	g := b.newGate(c.ID, pipelineFast, "chat")
	o, ok := b.openUntilRecorded(ctx, g, c, n)
	if !ok {
		return
	}
	g.GateID, g.CardActivity = gateOf(o.card.Body), o.card.ActivityID
	g.OpenToCard = o.card.At.Sub(o.sent)
	okA, _ := b.clickUntilRecorded(ctx, g, c, c.Approvers[0])
	okB, approveAt := b.clickUntilRecorded(ctx, g, c, c.Approvers[1])
	g.Approved = okA && okB
	if !g.Approved {
		g.fail("approve", errors.New("a click was never answered with success"))
		return
	}
	b.follow(ctx, g, o, approveAt)
}

// openUntilRecorded sends /run until its answer is a card.
func (b *bench) openUntilRecorded(ctx context.Context, g *gateResult, c convo, n int) (opened, bool) {
	text := fmt.Sprintf("/run %s version=3.%d.%d", pipelineFast, n/1000, n%1000)
	for ctx.Err() == nil {
		msgID, sent, rtt, reply, next, acked, err := b.runTurn(ctx, c, text)
		if !acked {
			continue
		}
		switch {
		case err != nil:
			g.fail("card", err)
			return opened{}, false
		case gateOf(reply.Body) != "":
			g.msgID = msgID
			return opened{sent: sent, card: reply, conv: c, next: next}, true
		case bytes.Contains(reply.Body, []byte(notRecorded)):
			b.notRecordedRun(msgID, reply.At.Sub(sent), rtt)
			b.userPause(ctx)
		default:
			g.fail("card", fmt.Errorf("the answer to /run is neither a card nor the store-down message: %.200s", reply.Body))
			return opened{}, false
		}
	}
	g.fail("open", ctx.Err())
	return opened{}, false
}

// runTurn sends text as c's requester and waits for the Connector to get
// its answer (a post replying to it, not an update). acked is false when
// the turn itself was not acknowledged: that is counted as a refusal and
// the user pauses before trying again.
func (b *bench) runTurn(ctx context.Context, c convo, text string) (msgID string, sent time.Time, rtt time.Duration, reply fakes.Call, next int, acked bool, err error) {
	msgID, sent, rtt, err = b.teams.message(ctx, c, c.Requester, text)
	if err != nil {
		b.refused("run turn not acknowledged", rtt)
		b.userPause(ctx)
		return msgID, sent, rtt, reply, 0, false, err
	}
	sctx, cancel := context.WithTimeout(ctx, b.opt.stepTimeout)
	defer cancel()
	reply, next, err = b.conn.Wait(sctx, c.ID, 0, func(call fakes.Call) bool {
		return call.OK() && call.Op != fakes.OpUpdate && call.ReplyToID == msgID
	})
	return msgID, sent, rtt, reply, next, true, err
}

// clickUntilRecorded clicks approve as u until the answer names u; it
// returns when that click was sent.
func (b *bench) clickUntilRecorded(ctx context.Context, g *gateResult, c convo, u user) (bool, time.Time) {
	for ctx.Err() == nil {
		sent := time.Now()
		ans, rtt, err := b.teams.invoke(ctx, c, u, g.GateID, "approve", g.CardActivity, b.teams.nextID())
		switch {
		case err == nil && ans.names(u):
			b.guarded(func() { g.ClickAnswers = append(g.ClickAnswers, rtt) })
			return true, sent
		case err == nil && ans.StatusCode >= 500:
			b.refused("click → invoke error card", rtt)
		case err != nil:
			b.refused("click not answered (HTTP error)", rtt)
		default:
			g.ClickFailures++
			return false, sent
		}
		g.ClickFailures++
		b.userPause(ctx)
	}
	return false, time.Time{}
}

// notRecordedRun notes a /run answered "nothing was recorded": its reply
// latency and HTTP round trip.
func (b *bench) notRecordedRun(msgID string, reply, rtt time.Duration) {
	b.refused("run → \"nothing was recorded\" reply", reply)
	b.refused("run turn ack (HTTP) when not recorded", rtt)
	b.guarded(func() {
		if b.faults.notRecorded == nil {
			b.faults.notRecorded = map[string]bool{}
		}
		b.faults.notRecorded[msgID] = true
	})
}

func (b *bench) userPause(ctx context.Context) {
	select {
	case <-time.After(userRetryPause):
	case <-ctx.Done():
	}
}

// apiProbe lists gates over the API every apiProbeEvery, each call on
// its own (a hung Redis holds calls for seconds), and counts the answers,
// outage or not; during the outage it records their latency.
func (b *bench) apiProbe(ctx context.Context) {
	t := time.NewTicker(apiProbeEvery)
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		wg.Add(1)
		go func() { defer wg.Done(); b.apiProbeOnce(ctx) }()
	}
}

func (b *bench) apiProbeOnce(ctx context.Context) {
	_, base := b.teams.routes.pick("api")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/gates?limit=1", nil)
	req.Header.Set("Authorization", "Bearer "+b.apiToken)
	down := b.inOutage()
	start := time.Now()
	resp, err := b.teams.client.Do(req)
	rtt := time.Since(start)
	// A call sent or answered as Redis came back is neither.
	edge := down != b.inOutage()
	key := "error"
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		key = fmt.Sprint(resp.StatusCode)
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			key += " Retry-After " + ra
		}
	} else if ctx.Err() != nil {
		return
	}
	phase := "up"
	switch {
	case edge:
		phase = "restart edge"
	case down:
		phase = "outage"
		b.refused("API GET /api/v1/gates during the outage", rtt)
	}
	b.guarded(func() {
		if b.faults.apiStatus == nil {
			b.faults.apiStatus = map[string]int{}
		}
		b.faults.apiStatus["API "+phase+": "+key]++
		if key == "200" && !b.faults.restartingAt.IsZero() && b.faults.apiBackAt.IsZero() && start.After(b.faults.restartingAt) {
			b.faults.apiBackAt = time.Now()
		}
	})
}

// runProbe sends /run once a second during the outage in a conversation
// of its own (the flow's users are mostly clicking or waiting for runs
// then), and records the answers.
func (b *bench) runProbe(ctx context.Context) {
	c := b.convo(b.opt.conversations)
	for n := 0; ctx.Err() == nil; n++ {
		if !b.inOutage() {
			select {
			case <-time.After(apiProbeEvery):
			case <-ctx.Done():
			}
			continue
		}
		text := fmt.Sprintf("/run %s version=4.0.%d", pipelineFast, n)
		msgID, sent, rtt, reply, _, acked, err := b.runTurn(ctx, c, text)
		if !acked {
			continue
		}
		switch {
		case err != nil:
		case bytes.Contains(reply.Body, []byte(notRecorded)):
			b.notRecordedRun(msgID, reply.At.Sub(sent), rtt)
		default:
			b.guarded(func() { b.faults.probeCards++ })
		}
		b.userPause(ctx)
	}
}

// awaitFinalCards waits (at most finalCardWait) until every approved
// gate's card shows its end, so the checks do not race the last update.
func (b *bench) awaitFinalCards() {
	deadline := time.Now().Add(finalCardWait)
	for time.Now().Before(deadline) {
		pending := false
		trig := b.prov.Triggers()
		b.mu.Lock()
		gates := append([]*gateResult(nil), b.gates...)
		b.mu.Unlock()
		for _, g := range gates {
			if g.Approved && !b.finalDone(g, trig[g.GateID], time.Time{}) {
				pending = true
				break
			}
		}
		if !pending {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
