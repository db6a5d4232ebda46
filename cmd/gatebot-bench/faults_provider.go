package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gatebot/gatebot/cmd/gatebot-bench/internal/fakes"
)

const providerFaultsHelp = "conversations 0, 1 and 2 each approve one gate on a faulty provider while conversations 3..N-1 run the flow: a flaky one answering each gate's first --fail-first triggers 503, a throttled one answering the first --throttle-first 429 with --retry-after, and one hanging each trigger for --hang (gatebot's engine.provider_timeout is --fault-provider-timeout here). Checks: at most 4 provider calls per gate (the engine's tries), at most one run started, the card ends on \"succeeded\" if a call was accepted and on \"Could not start\" otherwise, a 429's Retry-After is waited out, and the other pipeline's gates all succeed with approve → provider p99 ≤ 1 s."

// Names of the provider-faults pipelines and hooks.
const (
	pipelineFlaky     = "deploy-flaky"
	pipelineThrottled = "deploy-throttled"
	hookFlaky         = "flaky"
	hookThrottled     = "throttled"
	// providerFaultConvs are the conversations with a faulty provider.
	providerFaultConvs = 3
	// triggerTriesOfEngine is engine.triggerTries: calls per trigger at
	// most (a 429 or 408 is repeated, and any transient failure for an
	// idempotent provider).
	triggerTriesOfEngine = 4
)

// addFaultPipelines adds provider-faults' pipelines and its short
// provider timeout to the config, and redis-restart's short leases.
func addFaultPipelines(opt options, rg *rig, p *configParams) {
	if opt.scenario == "redis-restart" && p.Engine == nil {
		p.Engine = redisEngine()
	}
	if opt.scenario != "provider-faults" {
		return
	}
	p.HookURLs[hookFlaky], p.HookURLs[hookThrottled] = rg.prov.HookURL(hookFlaky), rg.prov.HookURL(hookThrottled)
	p.Extra = map[string]string{pipelineFlaky: hookFlaky, pipelineThrottled: hookThrottled}
	p.Engine = map[string]any{"provider_timeout": opt.faultTimeout.String()}
}

// setFaultBehaviours makes the faulty providers faulty.
func setFaultBehaviours(opt options, prov *fakes.Provider) {
	if opt.scenario != "provider-faults" {
		return
	}
	prov.SetBehaviour(hookFlaky, fakes.Behaviour{FailFirst: opt.failFirst, RunFor: opt.runFor})
	prov.SetBehaviour(hookThrottled, fakes.Behaviour{ThrottleFirst: opt.throttleFirst, RetryAfter: opt.retryAfter, RunFor: opt.runFor})
	prov.SetBehaviour(hookHang, fakes.Behaviour{Hang: opt.hang, RunFor: opt.runFor})
}

// faultyPipelines are conversation 0, 1 and 2's pipelines and labels.
func (b *bench) faultyPipelines() [providerFaultConvs][2]string {
	return [providerFaultConvs][2]string{
		{pipelineFlaky, fmt.Sprintf("provider answers 503 %d times", b.opt.failFirst)},
		{pipelineThrottled, fmt.Sprintf("provider answers 429 (Retry-After %s) %d times", b.opt.retryAfter, b.opt.throttleFirst)},
		{pipelineHang, fmt.Sprintf("provider hangs %s (provider timeout %s)", b.opt.hang, b.opt.faultTimeout)},
	}
}

// providerFaults: one gate on each faulty provider next to the flow.
func (b *bench) providerFaults(ctx context.Context) {
	done := make(chan struct{}, providerFaultConvs)
	for i, fp := range b.faultyPipelines() {
		go func() {
			defer func() { done <- struct{}{} }()
			b.faultyGate(ctx, b.convo(i), fp[0], fp[1])
		}()
	}
	b.workers(ctx, providerFaultConvs, func(ctx context.Context, c convo, n int) { b.runChatGate(ctx, c, pipelineFast, n) })
	for range providerFaultConvs {
		<-done
	}
}

// faultyGate opens and approves a gate and waits until its card ends on
// succeeded or "Could not start".
func (b *bench) faultyGate(ctx context.Context, c convo, pipeline, label string) {
	g := b.newGate(c.ID, pipeline, "chat")
	b.guarded(func() { g.Special = label })
	msgID, sent, _, err := b.teams.message(ctx, c, c.Requester, "/run "+pipeline+" version=7.0.0")
	if err != nil {
		g.fail("open", err)
		return
	}
	g.msgID = msgID
	sctx, cancel := context.WithTimeout(ctx, b.opt.stepTimeout)
	defer cancel()
	card, next, err := b.conn.Wait(sctx, c.ID, 0, func(call fakes.Call) bool {
		return call.OK() && call.Op != fakes.OpUpdate && call.ReplyToID == msgID && gateOf(call.Body) != ""
	})
	if err != nil {
		g.fail("card", err)
		return
	}
	o := opened{sent: sent, card: card, conv: c, next: next}
	approveAt, ok := b.approveBoth(ctx, g, o)
	if !ok {
		g.fail("approve", errors.New("a click was not answered with success"))
		return
	}
	// Retries (Retry-After each), a hang until the provider timeout, the
	// run and its polls: all within the step timeout past those.
	wctx, cancel := context.WithTimeout(ctx, b.opt.stepTimeout+b.opt.faultTimeout+time.Duration(b.opt.throttleFirst)*b.opt.retryAfter)
	defer cancel()
	runURL := []byte(b.prov.RunURL(g.GateID))
	end, _, err := b.conn.Wait(wctx, c.ID, next, func(call fakes.Call) bool {
		low := strings.ToLower(string(call.Body))
		return call.OK() && call.ActivityID == g.CardActivity &&
			((bytes.Contains(call.Body, runURL) && strings.Contains(low, "succeeded")) || strings.Contains(low, "could not start"))
	})
	if err != nil {
		g.fail("result", err)
		return
	}
	g.OpenToResult = end.At.Sub(sent)
	g.ApproveToRunCard = end.At.Sub(approveAt)
	g.Stage = endedOn + cardState(end.Body)
	if g.Stage == endedOn+"succeeded" {
		g.Stage = "succeeded"
	}
}

// endedOn prefixes the stage of a faulty gate whose card ended otherwise
// than succeeded.
const endedOn = "ended on "

// providerReport checks provider-faults. It replaces the run account by
// one of the flow's gates only: a refused call (503, 429, timed out) is a
// delivery but not a run, so the faulty gates are checked on their own.
func (b *bench) providerReport(rep *report) *faultReport {
	f := &faultReport{Kind: "faulty CI providers next to the flow", Latencies: map[string]summary{}, Counts: map[string]int{}}
	triggers := b.prov.Triggers()
	b.mu.Lock()
	defer b.mu.Unlock()
	approved, flow := map[string]bool{}, map[string][]fakes.Trigger{}
	special := map[string]bool{}
	for _, g := range b.gates {
		if g.Special != "" {
			special[g.GateID] = true
			b.faultyGateCheck(f, g, triggers[g.GateID])
		} else if g.Approved {
			approved[g.GateID] = true
		}
	}
	for id, ts := range triggers {
		if !special[id] {
			flow[id] = ts
		}
	}
	rep.Runs = countRuns(approved, flow)
	rep.ExactOnce = rep.Runs.Missing == 0 && rep.Runs.Duplicate == 0 && rep.Runs.Unexpected == 0
	f.check("flow exactly once", rep.ExactOnce, "%d approved flow gates: %d missing, %d duplicate, %d unexpected", rep.Runs.Approved, rep.Runs.Missing, rep.Runs.Duplicate, rep.Runs.Unexpected)
	f.check("other pipeline unaffected", rep.Gates > 0 && rep.Succeeded == rep.Gates && rep.ApproveToRun.P99 <= ms(maxUnaffectedP99),
		"%d of %d flow gates succeeded; approve → provider p99 %.1f ms (limit %s)", rep.Succeeded, rep.Gates, rep.ApproveToRun.P99, maxUnaffectedP99)
	return f
}

// faultyGateCheck checks one faulty gate: bounded calls, at most one run,
// the card's end matching whether a call was accepted, 429 waits.
// Called with b.mu held.
func (b *bench) faultyGateCheck(f *faultReport, g *gateResult, ts []fakes.Trigger) {
	name := g.Pipeline
	accepted, started := 0, 0
	var statuses []string
	var gaps []time.Duration
	early := 0
	for i, t := range ts {
		st := fmt.Sprint(t.Status)
		if t.Abandoned {
			st = "no answer (caller gave up)"
		}
		statuses = append(statuses, st)
		if t.Status == http.StatusOK {
			started++ // the fake starts a run on every 200, answered or not
			if !t.Abandoned {
				accepted++
			}
		}
		if i > 0 {
			gap := t.At.Sub(ts[i-1].At)
			gaps = append(gaps, gap)
			if ts[i-1].Status == http.StatusTooManyRequests && gap < b.opt.retryAfter-retryAfterSlack {
				early++
			}
		}
	}
	if len(gaps) > 0 {
		f.Latencies[name+": provider call → next call"] = summarize(gaps)
	}
	want := endedOn + "could not start"
	if accepted > 0 {
		want = "succeeded"
	}
	f.check(name+" bounded", g.Approved && len(ts) >= 1 && len(ts) <= triggerTriesOfEngine && started <= 1,
		"%d provider calls (%s), %d runs started (limit %d calls, 1 run)", len(ts), strings.Join(statuses, ", "), started, triggerTriesOfEngine)
	f.check(name+" ends right", g.Stage == want, "card ends on %q, expected %q (%.0f ms after the approval)%s", strings.TrimPrefix(g.Stage, endedOn), strings.TrimPrefix(want, endedOn), ms(g.ApproveToRunCard), errSuffix(g.Err))
	if early > 0 {
		f.check(name+" waits Retry-After", false, "%d calls came before the previous 429's Retry-After %s", early, b.opt.retryAfter)
	}
}
