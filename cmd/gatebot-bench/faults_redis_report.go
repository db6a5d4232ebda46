package main

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gatebot/gatebot/cmd/gatebot-bench/internal/fakes"
)

// redisReport checks the redis-restart run.
func (b *bench) redisReport(rep *report) *faultReport {
	kind := fmt.Sprintf("Redis SIGKILLed at --restart-after %s, down for --outage %s, restarted from its AOF", b.opt.restartAfter, b.opt.outage)
	if b.opt.redisFault == "stop" {
		kind = fmt.Sprintf("Redis SIGSTOPped (hung) at --restart-after %s for --outage %s, then SIGCONT", b.opt.restartAfter, b.opt.outage)
	}
	f := &faultReport{Kind: kind,
		Latencies: map[string]summary{}, Counts: map[string]int{}}
	b.mu.Lock()
	defer b.mu.Unlock()
	fr := b.faults
	start := rep.startedAt
	f.check("restart", !fr.killedAt.IsZero() && !fr.upAt.IsZero() && fr.restartErr == nil, "killed at %.2f s, answering PING again at %.2f s (err: %v)",
		sinceOrNaN(fr.killedAt, start), sinceOrNaN(fr.upAt, start), fr.restartErr)
	var teamsRefusals []time.Duration
	for kind, ds := range fr.refusals {
		f.Latencies[kind] = summarize(ds)
		if !strings.HasPrefix(kind, "API") {
			teamsRefusals = append(teamsRefusals, ds...)
		}
	}
	for k, v := range fr.apiStatus {
		f.Counts[k] = v
	}
	all, limit := summarize(teamsRefusals), maxRefusalP99
	if b.opt.redisFault == "stop" {
		limit = maxHungP99
	}
	f.check("outage under load", all.N > 0, "%d Teams requests answered \"not recorded\" (message or invoke error card)", all.N)
	f.check("outage answers fast", all.N > 0 && all.P99 <= ms(limit), "p99 %.1f ms, max %.1f ms (limit p99 %s)", all.P99, all.Max, limit)
	b.apiOutageCheck(f, fr, limit)
	b.lostClickCheck(f)
	f.check("exactly once", rep.ExactOnce, "%d approved gates: %d missing, %d duplicate, %d unexpected provider runs", rep.Runs.Approved, rep.Runs.Missing, rep.Runs.Duplicate, rep.Runs.Unexpected)
	after, afterOK := 0, 0
	var first time.Time
	for _, g := range b.gates {
		posted, _, _, _ := b.cardEnd(g, nil, time.Time{})
		if g.CardActivity == "" || fr.upAt.IsZero() || !posted.After(fr.upAt) {
			continue
		}
		after++
		if g.Stage == "succeeded" {
			afterOK++
		}
		if first.IsZero() || posted.Before(first) {
			first = posted
		}
	}
	f.Timeline = fmt.Sprintf("restart began %.2f s after the kill; Redis answered PING %.0f ms later, the API (200) %.0f ms later",
		fr.restartingAt.Sub(fr.killedAt).Seconds(), ms(fr.upAt.Sub(fr.restartingAt)), ms(fr.apiBackAt.Sub(fr.restartingAt)))
	if !first.IsZero() {
		f.Timeline += fmt.Sprintf("; first new card %.0f ms after the PING (users wait %s after a refusal)", ms(first.Sub(fr.upAt)), userRetryPause)
	}
	f.check("recovers by itself", after > 0 && after == afterOK, "%d of %d gates opened after the restart succeeded", afterOK, after)
	if d := b.inFlightRecovery(fr); len(d) > 0 {
		f.Latencies["in-flight gates: Redis back → final card"] = summarize(d)
	}
	phantom := b.phantomCards(fr.notRecorded)
	f.Counts["outage-probe /run answered with a card (left pending)"] = fr.probeCards
	f.check("no gate behind \"nothing was recorded\"", len(phantom) == 0, "%d of %d /run turns told \"nothing was recorded\" got a card anyway%s", len(phantom), len(fr.notRecorded), listSuffix(phantom))
	return f
}

// inFlightRecovery returns, for each approved gate whose card was up
// before the restart began and whose final card came after it, how long
// after Redis answered again the final card came (it includes the users'
// pause before clicking again). Called with b.mu held.
func (b *bench) inFlightRecovery(fr faultRecord) []time.Duration {
	if fr.killedAt.IsZero() || fr.upAt.IsZero() {
		return nil
	}
	trig := b.prov.Triggers()
	var out []time.Duration
	for _, g := range b.gates {
		if !g.Approved {
			continue
		}
		posted, final, _, _ := b.cardEnd(g, trig[g.GateID], time.Time{})
		if !posted.IsZero() && posted.Before(fr.restartingAt) && final.After(fr.restartingAt) {
			out = append(out, final.Sub(fr.upAt))
		}
	}
	return out
}

// apiOutageCheck: every API call during the outage got 503 with
// Retry-After, fast.
func (b *bench) apiOutageCheck(f *faultReport, fr faultRecord, limit time.Duration) {
	total, good := 0, 0
	for k, v := range fr.apiStatus {
		if strings.HasPrefix(k, "API outage: ") {
			total += v
			if strings.HasPrefix(k, "API outage: 503 Retry-After") {
				good += v
			}
		}
	}
	s := summarize(fr.refusals["API GET /api/v1/gates during the outage"])
	f.check("API 503 + Retry-After", total > 0 && good == total && s.P99 <= ms(limit), "%d of %d API calls during the outage answered 503 with Retry-After; p99 %.1f ms (limit %s)", good, total, s.P99, limit)
}

// lostClickCheck: every gate whose two approvals were answered with
// success was approved (its provider was called) and its last card names
// both approvers; and, after the final-card wait, that card says
// succeeded. Called with b.mu held.
func (b *bench) lostClickCheck(f *faultReport) {
	approved, kept, final, startedButFailed := 0, 0, 0, 0
	var lost, notFinal []string
	trig := b.prov.Triggers()
	for _, g := range b.gates {
		if !g.Approved {
			continue
		}
		approved++
		_, _, out, last := b.cardEnd(g, trig[g.GateID], time.Time{})
		c := newConvoByID(g.Conversation)
		named := bytes.Contains(last, []byte(c.Approvers[0].Name)) && bytes.Contains(last, []byte(c.Approvers[1].Name))
		switch {
		case len(trig[g.GateID]) == 0 || !named:
			lost = appendMax(lost, fmt.Sprintf("%s (last card: %s, %d provider calls)", g.GateID, cardState(last), len(trig[g.GateID])))
		case out != cardSucceeded:
			kept++
			note := ""
			if cardState(last) == "could not start" && startedRun(trig[g.GateID]) {
				startedButFailed++
				note = ", though the provider started its run"
			}
			notFinal = appendMax(notFinal, fmt.Sprintf("%s (last card: %s%s)", g.GateID, cardState(last), note))
		default:
			kept++
			final++
		}
	}
	f.check("no acknowledged click lost", approved > 0 && kept == approved, "%d of %d gates with both clicks answered with success were approved (provider called, last card names both approvers)%s", kept, approved, listSuffix(lost))
	f.check("final cards", approved > 0 && final == approved, "%d of %d approved gates end on a succeeded card within %s of the run's end; %d say \"Could not start\" though their run started%s",
		final, approved, finalCardWait, startedButFailed, listSuffix(notFinal))
}

// startedRun reports whether the provider accepted a trigger (answered
// 200, the caller still there): a run started and gatebot was told so.
func startedRun(ts []fakes.Trigger) bool {
	for _, t := range ts {
		if t.Status == http.StatusOK && !t.Abandoned {
			return true
		}
	}
	return false
}

func appendMax(xs []string, x string) []string {
	if len(xs) < 5 {
		return append(xs, x)
	}
	return xs
}

// phantomCards returns the gates whose card answered a /run gatebot had
// said it did not record.
func (b *bench) phantomCards(notRec map[string]bool) []string {
	var out []string
	for _, c := range b.conn.AllCalls() {
		if c.OK() && c.Op != fakes.OpUpdate && notRec[c.ReplyToID] && gateOf(c.Body) != "" {
			out = append(out, gateOf(c.Body))
		}
	}
	return out
}

func listSuffix(xs []string) string {
	if len(xs) == 0 {
		return ""
	}
	return ": " + strings.Join(xs, ", ")
}

func sinceOrNaN(t, start time.Time) float64 {
	if t.IsZero() {
		return -1
	}
	return t.Sub(start).Seconds()
}

// newConvoByID is the bench conversation with id (see newConvo).
func newConvoByID(id string) convo {
	var i int
	_, _ = fmt.Sscanf(id, "19:bench-%d@thread.v2", &i)
	return newConvo(i)
}
