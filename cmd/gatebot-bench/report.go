package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatebot/gatebot/cmd/gatebot-bench/internal/fakes"
)

// summary is a latency distribution in milliseconds.
type summary struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P95 float64 `json:"p95_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func summarize(ds []time.Duration) summary {
	if len(ds) == 0 {
		return summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) float64 {
		i := int(q*float64(len(s))+0.5) - 1 // nearest rank
		return ms(s[min(max(i, 0), len(s)-1)])
	}
	return summary{N: len(s), P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: ms(s[len(s)-1])}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// runs is the exactly-once account of provider calls.
type runs struct {
	Approved   int `json:"approved_gates"`
	Exactly1   int `json:"exactly_once"`
	Missing    int `json:"missing"`    // approved, provider never called
	Duplicate  int `json:"duplicate"`  // approved, provider called more than once
	Unexpected int `json:"unexpected"` // provider called for a gate not approved by the bench
	Calls      int `json:"provider_calls"`
}

// report is the bench's output (--json prints it as is).
type report struct {
	Scenario string         `json:"scenario"`
	Settings map[string]any `json:"settings"`
	// Target is what was driven: gatebot, or a --reference bot.
	Target  string         `json:"target"`
	Machine map[string]any `json:"machine"`
	Elapsed float64        `json:"elapsed_s"`

	Gates          int            `json:"gates"`
	Succeeded      int            `json:"succeeded"`
	StoppedAt      map[string]int `json:"stopped_at,omitempty"`
	Throughput     float64        `json:"throughput_gates_per_s"`
	OpenToCard     summary        `json:"open_to_card"`
	ClickToAnswer  summary        `json:"click_to_answer"`
	ApproveToRun   summary        `json:"approve_to_provider"`
	ApproveToCard  summary        `json:"approve_to_run_card"`
	OpenToResult   summary        `json:"open_to_result"`
	ClickFailures  int            `json:"click_failures"`
	SendsPerGate   float64        `json:"card_sends_per_gate"`
	MaxSendsOfGate int            `json:"card_sends_max"`
	IdenticalSends int            `json:"identical_consecutive_card_sends"`
	Runs           runs           `json:"provider_runs"`
	Special        []*gateResult  `json:"special_gates,omitempty"`
	SpecialCalls   map[string]int `json:"special_conversation_calls,omitempty"`

	Echo *echoReport `json:"echo,omitempty"`
	// Soak is the soak scenario's time series and growth verdicts.
	Soak *soakReport `json:"soak,omitempty"`
	// Rolling is what --rolling checked.
	Rolling *rollingReport `json:"rolling,omitempty"`

	CPUSeconds  float64              `json:"gatebot_cpu_s"`
	CPUPerGate  float64              `json:"gatebot_cpu_ms_per_gate"`
	RSSMiB      float64              `json:"gatebot_rss_mib"`
	PeakRSSMiB  float64              `json:"gatebot_peak_rss_mib"`
	ProcNote    string               `json:"gatebot_proc_note,omitempty"`
	Connector   fakes.ConnectorStats `json:"connector"`
	IdP         fakes.IdPStats       `json:"idp"`
	BadWebhooks int                  `json:"bad_webhook_signatures"`
	ExactOnce   bool                 `json:"exactly_once_ok"`

	// With --replicas > 1: each replica's CPU and memory (the CPU and RSS
	// above are their sum and maximum), the kill, and whether every
	// approved gate's card ended showing its final state.
	Replicas   []replicaReport `json:"replicas,omitempty"`
	Recovery   *recovery       `json:"recovery,omitempty"`
	FinalCards *finalCards     `json:"final_cards,omitempty"`
	FinalOK    bool            `json:"final_cards_ok,omitempty"`

	// Faults is the fault scenarios' account (faults.go).
	Faults *faultReport `json:"faults,omitempty"`
	// startedAt is when the driving phase began.
	startedAt time.Time
}

type echoReport struct {
	Sent       int            `json:"sent"`
	Acked      int            `json:"acked"`
	Replied    int            `json:"replied"`
	Failed     int            `json:"failed"`
	Reasons    map[string]int `json:"failure_reasons,omitempty"`
	Throughput float64        `json:"replies_per_s"`
	Ack        summary        `json:"ack"`
	Reply      summary        `json:"reply"`
}

// latencies collects the per-gate timings before they are summarised.
type latencies struct {
	open, click, prov, card, result []time.Duration
	sends                           []int
}

// buildReport folds gate results, connector records and provider calls.
func (b *bench) buildReport(elapsed time.Duration) *report {
	r := &report{Scenario: b.opt.scenario, Elapsed: elapsed.Seconds(), StoppedAt: map[string]int{}, SpecialCalls: map[string]int{}}
	r.Machine = map[string]any{"goos": runtime.GOOS, "goarch": runtime.GOARCH, "cpus": runtime.NumCPU(), "go": runtime.Version()}
	var l latencies
	approved := map[string]bool{}
	for _, g := range b.gates {
		if g.Approved {
			approved[g.GateID] = true
		}
		if g.Special != "" {
			r.Special = append(r.Special, g)
			for _, c := range b.conn.Calls(g.Conversation) {
				r.SpecialCalls[fmt.Sprintf("%s %d", c.Op, c.Status)]++
			}
			continue
		}
		b.addGate(r, &l, g)
	}
	r.Runs = countRuns(approved, b.prov.Triggers())
	r.ExactOnce = r.Runs.Missing == 0 && r.Runs.Duplicate == 0 && r.Runs.Unexpected == 0
	r.OpenToCard, r.ClickToAnswer, r.ApproveToRun, r.ApproveToCard, r.OpenToResult =
		summarize(l.open), summarize(l.click), summarize(l.prov), summarize(l.card), summarize(l.result)
	if len(l.sends) > 0 {
		total := 0
		for _, n := range l.sends {
			total += n
		}
		r.SendsPerGate = float64(total) / float64(len(l.sends))
	}
	if elapsed > 0 {
		r.Throughput = float64(r.Succeeded) / elapsed.Seconds()
	}
	if b.opt.scenario == "echo" {
		e := b.echo
		r.Echo = &echoReport{Sent: e.Sent, Acked: e.Acked, Replied: e.Replied, Failed: e.Failed, Reasons: e.Reasons, Ack: summarize(e.Ack), Reply: summarize(e.Reply)}
		if elapsed > 0 {
			r.Echo.Throughput = float64(e.Replied) / elapsed.Seconds()
		}
	}
	r.Connector, r.IdP, r.BadWebhooks = b.conn.Stats(), b.idp.Stats(), b.prov.BadSignatures()
	return r
}

// addGate adds one ordinary gate's outcome and timings.
func (b *bench) addGate(r *report, l *latencies, g *gateResult) {
	r.Gates++
	if g.Stage == "succeeded" {
		r.Succeeded++
	} else {
		r.StoppedAt[g.Stage]++
	}
	if g.GateID == "" {
		return
	}
	l.open = append(l.open, g.OpenToCard)
	l.click = append(l.click, g.ClickAnswers...)
	r.ClickFailures += g.ClickFailures
	for _, x := range []struct {
		d   time.Duration
		dst *[]time.Duration
	}{{g.ApproveToProvider, &l.prov}, {g.ApproveToRunCard, &l.card}, {g.OpenToResult, &l.result}} {
		if x.d > 0 {
			*x.dst = append(*x.dst, x.d)
		}
	}
	n, identical := b.cardSends(g)
	l.sends = append(l.sends, n)
	r.MaxSendsOfGate = max(r.MaxSendsOfGate, n)
	r.IdenticalSends += identical
}

// countRuns checks every approved gate ran exactly once and no other gate
// ran at all.
func countRuns(approved map[string]bool, triggers map[string][]fakes.Trigger) runs {
	var u runs
	for id := range approved {
		u.Approved++
		switch n := len(triggers[id]); {
		case n == 0:
			u.Missing++
		case n == 1:
			u.Exactly1++
		default:
			u.Duplicate++
		}
	}
	for id, ts := range triggers {
		u.Calls += len(ts)
		if !approved[id] {
			u.Unexpected++
		}
	}
	return u
}

// cardSends counts the Connector calls that carried gate g's card (every
// attempt, throttled or refused ones included) and how many accepted
// updates repeated the previous card unchanged.
func (b *bench) cardSends(g *gateResult) (n, identical int) {
	count := func(conv string, match func(fakes.Call) bool) {
		for _, c := range b.conn.Calls(conv) {
			if match(c) {
				n++
				if c.Identical {
					identical++
				}
			}
		}
	}
	if g.Origin == "api" {
		count(g.channel, func(c fakes.Call) bool { return c.Op == fakes.OpCreate && gateOf(c.Body) == g.GateID })
		count(g.Conversation, func(c fakes.Call) bool { return c.ActivityID == g.CardActivity })
		return n, identical
	}
	count(g.Conversation, func(c fakes.Call) bool {
		return c.ActivityID == g.CardActivity || (c.Op == fakes.OpPost && !c.OK() && c.ReplyToID == g.msgID)
	})
	return n, identical
}

func (r *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeTable prints the human summary.
func (r *report) writeTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "gatebot-bench scenario %s\t%s\n", r.Scenario, settingsLine(r.Settings))
	fmt.Fprintf(tw, "elapsed\t%.1f s\n", r.Elapsed)
	if r.Echo != nil {
		e := r.Echo
		fmt.Fprintf(tw, "help turns\tsent %d, acked %d, replied %d, failed %d\n", e.Sent, e.Acked, e.Replied, e.Failed)
		if len(e.Reasons) > 0 {
			fmt.Fprintf(tw, "failures\t%s\n", mapLine(e.Reasons))
		}
		fmt.Fprintf(tw, "throughput\t%.1f replies/s\n", e.Throughput)
		fmt.Fprintf(tw, "\tn\tp50 ms\tp95 ms\tp99 ms\tmax ms\n")
		row(tw, "turn ack (HTTP)", e.Ack)
		row(tw, "message → reply", e.Reply)
	} else {
		fmt.Fprintf(tw, "gates\t%d opened, %d succeeded%s\n", r.Gates, r.Succeeded, stopped(r.StoppedAt))
		fmt.Fprintf(tw, "throughput\t%.2f gates/s\n", r.Throughput)
		fmt.Fprintf(tw, "\tn\tp50 ms\tp95 ms\tp99 ms\tmax ms\n")
		row(tw, "open → card", r.OpenToCard)
		row(tw, "click → invoke answer", r.ClickToAnswer)
		row(tw, "approve → provider call", r.ApproveToRun)
		row(tw, "approve → card shows run", r.ApproveToCard)
		row(tw, "open → result on card", r.OpenToResult)
		fmt.Fprintf(tw, "card sends per gate\t%.2f (max %d)\n", r.SendsPerGate, r.MaxSendsOfGate)
		fmt.Fprintf(tw, "identical consecutive card sends\t%d\n", r.IdenticalSends)
		fmt.Fprintf(tw, "click failures\t%d\n", r.ClickFailures)
		u := r.Runs
		fmt.Fprintf(tw, "provider runs\t%d approved gates: %d exactly once, %d missing, %d duplicate; %d unexpected; %d calls\n",
			u.Approved, u.Exactly1, u.Missing, u.Duplicate, u.Unexpected, u.Calls)
		for _, g := range r.Special {
			fmt.Fprintf(tw, "special gate (%s)\tgate %s: %s%s\n", g.Special, orDash(g.GateID), stageText(g.Stage), errSuffix(g.Err))
		}
		if len(r.SpecialCalls) > 0 {
			fmt.Fprintf(tw, "special conversation calls\t%s\n", mapLine(r.SpecialCalls))
		}
	}
	perWhat := "gate"
	if r.Echo != nil {
		perWhat = "message"
	}
	r.writeReplicas(tw)
	r.Faults.write(tw)
	if r.ProcNote != "" {
		fmt.Fprintf(tw, "%s process\t%s\n", r.Target, r.ProcNote)
	}
	if r.ProcNote == "" || len(r.Replicas) > 0 {
		fmt.Fprintf(tw, "%s CPU\t%.2f s total, %.3f ms per %s\n", r.Target, r.CPUSeconds, r.CPUPerGate, perWhat)
		fmt.Fprintf(tw, "%s RSS\t%.1f MiB at end, %.1f MiB peak\n", r.Target, r.RSSMiB, r.PeakRSSMiB)
	}
	c := r.Connector
	fmt.Fprintf(tw, "connector\t%d calls %s; %d answered 429; %d unauthorized\n", c.Calls, opLine(c.ByOp), c.Throttled, c.Unauthorized)
	fmt.Fprintf(tw, "idp\tmetadata %d, keys %d, bot tokens %d (refused %d)\n", r.IdP.MetadataFetches, r.IdP.KeyFetches, r.IdP.TokensIssued, r.IdP.TokensRefused)
	if r.Echo == nil {
		fmt.Fprintf(tw, "exactly once\t%v\n", r.ExactOnce)
	}
	tw.Flush()
	if r.Soak != nil {
		r.Soak.write(w)
	}
}

// writeReplicas prints the per-replica lines, the kill and the final
// cards (nothing for one replica).
func (r *report) writeReplicas(w io.Writer) {
	for _, rr := range r.Replicas {
		state := "live to the end"
		if rr.Killed {
			state = "killed (CPU until the kill)"
		}
		fmt.Fprintf(w, "replica %d (pid %d)\tCPU %.2f s, RSS %.1f MiB peak, %s%s\n", rr.Index, rr.PID, rr.CPUSeconds, rr.PeakRSSMiB, state, errSuffix(rr.Note))
	}
	if rc := r.Recovery; rc != nil {
		took := fmt.Sprintf("%.1f s", rc.Seconds)
		if rc.Seconds < 0 {
			took = "never (some did not end)"
		}
		fmt.Fprintf(w, "kill\treplica 1 SIGKILLed at %.1f s; %d gates in flight then, all ended after %s; %d activities re-sent; %d gates opened got no card in time (not approved, so not checked)\n", rc.KilledAt, rc.InFlight, took, rc.Resent, rc.NoCard)
	}
	if fc := r.FinalCards; fc != nil {
		fmt.Fprintf(w, "final cards\t%d of %d approved gates show succeeded on their last card update; %d rest in \"Could not start\" (provider called once, by the killed replica, outcome unknown); %d provider calls abandoned by their caller\n", fc.Shown, fc.Approved, fc.Interrupted, fc.Abandoned)
		for _, g := range fc.NotShown {
			fmt.Fprintf(w, "  not final\t%s\n", g)
		}
	}
	if rr := r.Rolling; rr != nil {
		fmt.Fprintf(w, "rolling\treplicas 1… run a config without %s; every replica's /readyz must be 200 and say they disagree: %v\n", pipelineFast, rr.OK)
		for _, l := range rr.Readyz {
			fmt.Fprintf(w, "  readyz\t%s\n", l)
		}
	}
}

func row(w io.Writer, name string, s summary) {
	if s.N == 0 {
		fmt.Fprintf(w, "%s\t0\t-\t-\t-\t-\n", name)
		return
	}
	fmt.Fprintf(w, "%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\n", name, s.N, s.P50, s.P95, s.P99, s.Max)
}

func stopped(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	return "; unfinished, by the step waited for: " + mapLine(m)
}

func mapLine(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %d", k, m[k])
	}
	return b.String()
}

func opLine(m map[fakes.Op]int) string {
	s := map[string]int{}
	for k, v := range m {
		s[string(k)] = v
	}
	return "(" + mapLine(s) + ")"
}

func settingsLine(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%v ", k, m[k])
	}
	return strings.TrimSpace(b.String())
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return " (" + e + ")"
}

func stageText(stage string) string {
	if stage == "succeeded" || strings.HasPrefix(stage, endedOn) {
		return stage
	}
	return "stopped waiting for " + stage
}
