package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gatebot/gatebot/cmd/gatebot-bench/internal/fakes"
)

// connFault is one --down-mode.
type connFault struct {
	mode  fakes.Mode
	label string
}

// connModes maps --down-mode to the fake Connector's mode.
var connModes = map[string]connFault{
	"down":        {fakes.ModeDown, "connector down (503)"},
	"refuse":      {fakes.ModeRefuse, "connector refusing (403)"},
	"429":         {fakes.ModeThrottle, fmt.Sprintf("connector throttling (429, Retry-After %d)", fakes.ThrottleRetryAfter)},
	"502":         {fakes.ModeBadGateway, "connector behind a failing proxy (502)"},
	"unreachable": {fakes.ModeUnreachable, "connector unreachable (connection closed)"},
}

func connMode(name string) (fakes.Mode, string) {
	f := connModes[name]
	return f.mode, f.label
}

const (
	// retryAfterSlack is how much earlier than Retry-After a retry may
	// come (clock reading, rounding) without counting as ignoring it.
	retryAfterSlack = 100 * time.Millisecond
	// maxUnaffectedP99 is the slowest approve → provider p99 the other
	// conversations may have for "unaffected" (the engine's own is tens
	// of milliseconds; the bench shares two cores with gatebot).
	maxUnaffectedP99 = time.Second
)

// connDownFor: conversation 0's gate gets its card; then its Connector
// fails as --down-mode says for --down-for while the gate is approved and
// runs, and recovers; the card's last accepted update must show the run
// succeeded. Conversations 1..N-1 run the flow meanwhile.
func (b *bench) connDownFor(ctx context.Context) {
	mode, label := connMode(b.opt.downMode)
	label = fmt.Sprintf("%s for %s from its card on", label, b.opt.downFor)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c := b.convo(0)
		g := b.newGate(c.ID, pipelineFast, "chat")
		b.guarded(func() { g.Special = label })
		msgID, sent, _, err := b.teams.message(ctx, c, c.Requester, "/run "+pipelineFast+" version=9.0.0")
		if err != nil {
			g.fail("open", err)
			return
		}
		g.msgID = msgID
		sctx, cancel := context.WithTimeout(ctx, b.opt.stepTimeout)
		card, next, err := b.conn.Wait(sctx, c.ID, 0, func(call fakes.Call) bool {
			return call.OK() && call.Op != fakes.OpUpdate && call.ReplyToID == msgID && gateOf(call.Body) != ""
		})
		cancel()
		if err != nil {
			g.fail("card", err)
			return
		}
		b.conn.SetMode(c.ID, mode)
		t := time.AfterFunc(b.opt.downFor, func() {
			b.conn.SetMode(c.ID, fakes.ModeOK)
			b.guarded(func() { b.faults.recoveredAt = time.Now() })
		})
		defer t.Stop()
		approveAt, ok := b.approveBoth(ctx, g, opened{sent: sent, card: card, conv: c, next: next})
		if !ok {
			g.fail("approve", errors.New("a click was not answered with success"))
			return
		}
		// The card updates fail until the recovery: wait for the result
		// up to --down-for past the step timeout.
		fctx, cancel := context.WithTimeout(ctx, b.opt.downFor+b.opt.stepTimeout)
		defer cancel()
		runURL := []byte(b.prov.RunURL(g.GateID))
		done, _, err := b.conn.Wait(fctx, c.ID, next, func(call fakes.Call) bool {
			return call.OK() && call.ActivityID == g.CardActivity && bytes.Contains(call.Body, runURL) &&
				strings.Contains(strings.ToLower(string(call.Body)), "succeeded")
		})
		if err != nil {
			g.fail("result", err)
			return
		}
		g.ApproveToRunCard, g.OpenToResult, g.Stage = done.At.Sub(approveAt), done.At.Sub(sent), "succeeded"
	}()
	b.workers(ctx, 1, func(ctx context.Context, c convo, n int) { b.runChatGate(ctx, c, pipelineFast, n) })
	<-done
}

// connReport checks conn-down: the other conversations' gates all
// succeeded, fast; in conversation 0, a 429's Retry-After was waited out
// before the next call; with --down-for, the card's last accepted update
// came after the recovery and shows the run succeeded.
func (b *bench) connReport(rep *report) *faultReport {
	mode, label := connMode(b.opt.downMode)
	f := &faultReport{Kind: "conversation 0: " + label, Latencies: map[string]summary{}, Counts: map[string]int{}}
	calls := b.conn.Calls(newConvo(0).ID)
	for _, c := range calls {
		f.Counts[fmt.Sprintf("conversation 0 %s %s", c.Op, statusText(c.Status))]++
	}
	f.check("other conversations unaffected", rep.Gates > 0 && rep.Succeeded == rep.Gates && rep.ApproveToRun.P99 <= ms(maxUnaffectedP99),
		"%d of %d gates succeeded; approve → provider p99 %.1f ms, approve → card shows run p99 %.1f ms (limit %s)",
		rep.Succeeded, rep.Gates, rep.ApproveToRun.P99, rep.ApproveToCard.P99, maxUnaffectedP99)
	gaps, early := retryGaps(calls)
	if len(gaps) > 0 {
		f.Latencies["conversation 0: failed call → next call"] = summarize(gaps)
	}
	if mode == fakes.ModeThrottle {
		f.check("retries respect Retry-After", len(gaps) > 0 && early == 0, "%d of %d calls after a 429 came before its Retry-After (%d s)", early, len(gaps), fakes.ThrottleRetryAfter)
	}
	if b.opt.downFor > 0 {
		b.recoveryCheck(f, calls)
	}
	return f
}

// retryGaps returns, for each failed call in calls, the time to the next
// call, and how many of those came before a 429's Retry-After.
func retryGaps(calls []fakes.Call) (gaps []time.Duration, early int) {
	for i, c := range calls {
		if c.OK() || c.Op == fakes.OpMember || i+1 >= len(calls) {
			continue
		}
		next := calls[i+1]
		gap := next.At.Sub(c.At)
		gaps = append(gaps, gap)
		if c.Status == http.StatusTooManyRequests && gap < time.Duration(fakes.ThrottleRetryAfter)*time.Second-retryAfterSlack {
			early++
		}
	}
	return gaps, early
}

// recoveryCheck: the special gate was approved and ran once, and its
// card's last accepted update came after the recovery showing succeeded.
func (b *bench) recoveryCheck(f *faultReport, calls []fakes.Call) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var g *gateResult
	for _, x := range b.gates {
		if x.Special != "" {
			g = x
		}
	}
	rec := b.faults.recoveredAt
	if g == nil || g.CardActivity == "" || rec.IsZero() {
		f.check("final card after recovery", false, "the special gate got no card, or the connector never recovered")
		return
	}
	failed := slices.ContainsFunc(calls, func(c fakes.Call) bool { return !c.OK() && c.At.Before(rec) })
	trig := b.prov.Triggers()[g.GateID]
	_, final, out, last := b.cardEnd(g, trig, time.Time{})
	var lastAt time.Time
	for _, c := range calls {
		if c.OK() && c.ActivityID == g.CardActivity {
			lastAt = c.At
		}
	}
	f.Timeline = fmt.Sprintf("recovered %s after the card; final card delivered %.0f ms after the recovery", b.opt.downFor, ms(final.Sub(rec)))
	f.check("fault exercised", failed, "conversation 0 had failed calls before the recovery: %v", failed)
	f.check("final card after recovery", g.Approved && out == cardSucceeded && lastAt.After(rec),
		"gate %s approved %v, %d provider calls; its last accepted update (%.0f ms after the recovery) shows %s", g.GateID, g.Approved, len(trig), ms(lastAt.Sub(rec)), cardState(last))
}

func statusText(s int) string {
	if s == 0 {
		return "closed"
	}
	return fmt.Sprint(s)
}
