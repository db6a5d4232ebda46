package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Growth floors: a measure may always grow this much, however small its
// first-window median, so noise at small values does not fail a soak.
const (
	floorMiB        = 4    // RSS, heap in use
	floorKiB        = 1024 // the run's keys' memory in Redis
	floorGoroutines = 20   // goroutines, file descriptors
	floorKeys       = 50   // keys under the prefix
	floorMembers    = 50   // members of one index, schedule, queue or stream
	// sharedKeysSlack is how many keys not the run's a Redis server may
	// hold and still count as dedicated to the soak.
	sharedKeysSlack = 10
	// maxTableRows bounds the printed time series; the JSON has every
	// sample.
	maxTableRows = 21
)

// growthVerdict compares one measure's median over the first window after
// warm-up with its median over the last window.
type growthVerdict struct {
	Measure string  `json:"measure"`
	First   float64 `json:"first_window_median"`
	Last    float64 `json:"last_window_median"`
	Growth  float64 `json:"growth"`
	// Allowed is max(--max-growth × First, the measure's floor).
	Allowed float64 `json:"allowed"`
	// Judged is false for a measure that is shown, not judged (a shared
	// Redis server, keys that grow by design until their TTL).
	Judged bool `json:"judged"`
	OK     bool `json:"ok"`
	// Bound marks a check of First ≤ Last rather than of growth.
	Bound bool   `json:"bound,omitempty"`
	Note  string `json:"note,omitempty"`
}

// judgeGrowth is the verdict on one measure: it fails if either window has
// no sample or the last median exceeds the first by more than
// max(share × first, floor).
func judgeGrowth(measure string, first, last []float64, share, floor float64) growthVerdict {
	v := growthVerdict{Measure: measure, Judged: true}
	if len(first) == 0 || len(last) == 0 {
		v.Note = "no sample in a window"
		return v
	}
	v.First, v.Last = median(first), median(last)
	v.Growth = v.Last - v.First
	v.Allowed = max(share*v.First, floor)
	v.OK = v.Growth <= v.Allowed
	return v
}

// shown is a verdict that is reported but not judged.
func shown(v growthVerdict, note string) growthVerdict {
	v.Judged, v.OK, v.Note = false, true, note
	return v
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// soakReport is the soak's part of the report.
type soakReport struct {
	Warmup    string  `json:"warmup"`
	Window    string  `json:"window"`
	Every     string  `json:"sample_every"`
	Retention string  `json:"retention"`
	MaxGrowth float64 `json:"max_growth"`

	Chat soakLoad   `json:"chat_gates"`
	API  soakLoad   `json:"api_gates"`
	Echo echoReport `json:"echo"`

	// CPU: cores used in each window, and gatebot's CPU over the whole
	// driving phase divided by the help turns replied to and by the gates
	// that succeeded: each an upper bound, since the same CPU served both.
	CoresFirst      float64 `json:"cores_first_window"`
	CoresLast       float64 `json:"cores_last_window"`
	CPUPerTurnBound float64 `json:"cpu_ms_per_turn_upper_bound"`
	CPUPerGateBound float64 `json:"cpu_ms_per_gate_upper_bound"`

	// SeenBytes is one dedupe marker's MEMORY USAGE (the server's tables
	// add to it), for scale.
	SeenBytes float64 `json:"seen_marker_bytes"`
	// SharedRedis is set when the server held other keys than the run's.
	SharedRedis bool `json:"shared_redis"`

	Samples      []soakSample    `json:"samples"`
	Verdicts     []growthVerdict `json:"verdicts"`
	SampleErrors map[string]int  `json:"sample_errors,omitempty"`
	// LogErrors counts gatebot's error-level log lines by message.
	LogErrors map[string]int `json:"gatebot_log_errors,omitempty"`
	Notes     []string       `json:"notes,omitempty"`
	Failures  []string       `json:"failures,omitempty"`
	OK        bool           `json:"ok"`
}

// soakReport builds the soak's report from the run's samples and adds it
// to rep.
func (b *bench) soakReport(rep *report) {
	st := b.soakRun
	w := b.opt.soakWindows()
	st.mu.Lock()
	sr := &soakReport{
		Warmup: w.warmup.String(), Window: w.window.String(), Every: w.every.String(), Retention: w.retention.String(),
		MaxGrowth: b.opt.soak.maxGrowth, Chat: st.chat, API: st.api, SeenBytes: st.seenBytes,
		Samples: slices.Clone(st.samples), SampleErrors: st.sampleErr, Notes: slices.Clone(st.notes),
	}
	st.mu.Unlock()
	e := b.echo
	sr.Echo = echoReport{Sent: e.Sent, Acked: e.Acked, Replied: e.Replied, Failed: e.Failed, Reasons: e.Reasons, Ack: summarize(e.Ack), Reply: summarize(e.Reply)}
	if rep.Elapsed > 0 {
		sr.Echo.Throughput = float64(e.Replied) / rep.Elapsed
	}
	if len(b.replicas) > 0 {
		sr.LogErrors = logErrors(b.replicas[0].log)
	}
	from, to := w.warmup.Seconds(), w.warmup.Seconds()+w.window.Seconds()
	end := b.opt.duration.Seconds()
	first, last := sr.window(from, to), sr.window(end-w.window.Seconds(), end+1)
	if n := len(sr.Samples); n > 0 {
		lastS := sr.Samples[n-1]
		// Judged at the first sample, before the load: later the server's
		// count includes expired keys not yet reclaimed, and SCAN races
		// the writes.
		s0 := sr.Samples[0]
		sr.SharedRedis = s0.RedisKeys-int64(s0.keysBut()) > sharedKeysSlack
		if lastS.EchoOK > 0 {
			sr.CPUPerTurnBound = lastS.CPU * 1000 / float64(lastS.EchoOK)
		}
		if lastS.GatesOK > 0 {
			sr.CPUPerGateBound = lastS.CPU * 1000 / float64(lastS.GatesOK)
		}
	}
	sr.CoresFirst, sr.CoresLast = cores(first), cores(last)
	sr.Verdicts = soakVerdicts(first, last, soakJudging{
		share: sr.MaxGrowth, shared: sr.SharedRedis,
		postingByDesign: w.warmup < gatebotPostLease+30*time.Second,
		messages:        int64(e.Sent + sr.Chat.Launched),
	})
	sr.fail(rep)
	rep.Soak = sr
}

// window returns the samples taken in [from, to) seconds.
func (sr *soakReport) window(from, to float64) []soakSample {
	var out []soakSample
	for _, s := range sr.Samples {
		if s.T >= from && s.T < to && s.Err == "" {
			out = append(out, s)
		}
	}
	return out
}

// cores is the CPU gatebot used per second of wall time over ws.
func cores(ws []soakSample) float64 {
	if len(ws) < 2 {
		return 0
	}
	a, z := ws[0], ws[len(ws)-1]
	if z.T <= a.T {
		return 0
	}
	return (z.CPU - a.CPU) / (z.T - a.T)
}

// soakJudging is what the verdicts need beyond the samples.
type soakJudging struct {
	share  float64
	shared bool
	// postingByDesign: the card-post leases (4 minutes) outlive the
	// warm-up, so their keys still grow in the first window.
	postingByDesign bool
	// messages is how many message activities the run sent (each leaves
	// one dedupe marker).
	messages int64
}

// soakVerdicts judges every measure between the two windows.
func soakVerdicts(first, last []soakSample, j soakJudging) []growthVerdict {
	col := func(ws []soakSample, f func(soakSample) float64) []float64 {
		out := make([]float64, len(ws))
		for i, s := range ws {
			out[i] = f(s)
		}
		return out
	}
	judge := func(name string, floor float64, f func(soakSample) float64) growthVerdict {
		return judgeGrowth(name, col(first, f), col(last, f), j.share, floor)
	}
	byDesign := []string{"seen"}
	if j.postingByDesign {
		byDesign = append(byDesign, "posting")
	}
	but := strings.Join(byDesign, ", ")
	vs := []growthVerdict{
		judge("gatebot RSS MiB", floorMiB, func(s soakSample) float64 { return s.RSSMiB }),
		judge("gatebot heap in use MiB", floorMiB, func(s soakSample) float64 { return s.HeapMiB }),
		shown(judge("gatebot goroutines", floorGoroutines, func(s soakSample) float64 { return s.Goroutines }),
			"not judged alone: it follows the open connections (one goroutine per inbound, two per outbound HTTP)"),
		shown(judge("gatebot TCP connections", floorGoroutines, func(s soakSample) float64 { return float64(s.Sockets) }),
			"not judged: keep-alive connections the load's bursts open (closed after 2m idle inbound, 90s outbound)"),
		judge("gatebot goroutines less connection goroutines", floorGoroutines, func(s soakSample) float64 { return s.Goroutines - float64(s.Conns+2*s.OutConns) }),
		judge("gatebot open files less TCP connections", floorGoroutines, func(s soakSample) float64 { return float64(s.FDs - s.Sockets) }),
	}
	note := "not judged: includes the dedupe markers (TTL 24h) and the server's hash tables, which double in steps"
	if j.shared {
		note = "not judged: the server holds other keys than the run's (a dedicated redis-server gives a clean figure)"
	}
	vs = append(vs, shown(judge("Redis used_memory MiB (whole server)", floorMiB, func(s soakSample) float64 { return s.RedisMiB }), note),
		judge("Redis memory of the run's keys but "+but+" (KiB)", floorKiB, func(s soakSample) float64 { return sumBut(s.KeyKiB, byDesign...) }),
		judge("keys under the prefix but "+but, floorKeys, func(s soakSample) float64 { return float64(s.keysBut(byDesign...)) }))
	for _, c := range byDesign {
		ttl := gatebotDedupeTTL
		if c == "posting" {
			ttl = gatebotPostLease
		}
		vs = append(vs, shown(judge(c+" keys", floorKeys, func(s soakSample) float64 { return float64(s.Keys[c]) }),
			fmt.Sprintf("not judged: TTL %s, grows by design until then", ttl)))
	}
	if len(last) > 0 {
		n := int64(last[len(last)-1].Keys["seen"])
		v := growthVerdict{Measure: "dedupe markers ≤ messages sent", First: float64(n), Last: float64(j.messages), Judged: true, OK: n <= j.messages, Bound: true,
			Note: "one marker per message activity at most"}
		vs = append(vs, v)
	}
	for _, k := range memberNames(first, last) {
		vs = append(vs, judge("length of "+k, floorMembers, func(s soakSample) float64 { return float64(s.Members[k]) }))
	}
	return vs
}

// memberNames lists every structure sampled in either window, sorted.
func memberNames(wss ...[]soakSample) []string {
	seen := map[string]bool{}
	for _, ws := range wss {
		for _, s := range ws {
			for k := range s.Members {
				seen[k] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// fail collects what makes the soak fail under --assert-exact.
func (sr *soakReport) fail(rep *report) {
	var f []string
	for _, v := range sr.Verdicts {
		if v.Judged && !v.OK {
			if v.Bound {
				f = append(f, fmt.Sprintf("%s: %.0f > %.0f", v.Measure, v.First, v.Last))
			} else if v.Note != "" {
				f = append(f, fmt.Sprintf("%s: %s", v.Measure, v.Note))
			} else {
				f = append(f, fmt.Sprintf("%s grew %.1f (%.1f → %.1f; allowed %.1f)", v.Measure, v.Growth, v.First, v.Last, v.Allowed))
			}
		}
	}
	if sr.Echo.Failed > 0 {
		f = append(f, fmt.Sprintf("%d help turns failed", sr.Echo.Failed))
	}
	if n := rep.Gates - rep.Succeeded; n > 0 {
		f = append(f, fmt.Sprintf("%d of %d gates did not succeed", n, rep.Gates))
	}
	if !rep.ExactOnce {
		f = append(f, fmt.Sprintf("provider runs: %d missing, %d duplicate, %d unexpected", rep.Runs.Missing, rep.Runs.Duplicate, rep.Runs.Unexpected))
	}
	if n := sumCounts(sr.SampleErrors); n > 0 {
		f = append(f, fmt.Sprintf("%d readings failed while sampling", n))
	}
	if n := sumCounts(sr.LogErrors); n > 0 {
		f = append(f, fmt.Sprintf("gatebot logged %d errors", n))
	}
	if len(sr.Samples) == 0 {
		f = append(f, "no samples")
	}
	sr.Failures, sr.OK = f, len(f) == 0
}

// sumBut sums m except the keys named.
func sumBut(m map[string]float64, skip ...string) float64 {
	n := 0.0
	for k, v := range m {
		if !contains(skip, k) {
			n += v
		}
	}
	return n
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// logErrors counts the error-level lines of gatebot's JSON log by message.
func logErrors(path string) map[string]int {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct{ Level, Msg string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Level == "ERROR" {
			out[fmt.Sprintf("%.100s", line.Msg)]++
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// write prints the soak's time series (at most maxTableRows rows, the
// last sample always among them) and verdicts.
func (sr *soakReport) write(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "\nsoak: warm-up %s, windows of %s, a sample every %s, retention %s, growth allowed %.0f %% (floors: %d MiB, %d KiB of keys, %d goroutines, %d keys, %d members); a dedupe marker: %.0f B by MEMORY USAGE\n",
		sr.Warmup, sr.Window, sr.Every, sr.Retention, sr.MaxGrowth*100, floorMiB, floorKiB, floorGoroutines, floorKeys, floorMembers, sr.SeenBytes)
	fmt.Fprintf(w, "load: help turns sent %d, replied %d, failed %d (%.1f replies/s; reply p50/p99 %.1f/%.1f ms); chat gates launched %d (behind %d); API gates launched %d (behind %d)\n",
		sr.Echo.Sent, sr.Echo.Replied, sr.Echo.Failed, sr.Echo.Throughput, sr.Echo.Reply.P50, sr.Echo.Reply.P99, sr.Chat.Launched, sr.Chat.Behind, sr.API.Launched, sr.API.Behind)
	if len(sr.Echo.Reasons) > 0 {
		fmt.Fprintf(w, "turn failures: %s\n", mapLine(sr.Echo.Reasons))
	}
	fmt.Fprintf(w, "CPU: %.2f cores in the first window, %.2f in the last; ≤ %.3f ms per help turn, ≤ %.1f ms per gate (all CPU counted against each)\n",
		sr.CoresFirst, sr.CoresLast, sr.CPUPerTurnBound, sr.CPUPerGateBound)
	fmt.Fprintln(tw, "t s\tRSS MiB\theap MiB\tgoroutines\tconns\tRedis MiB\tkeys KiB\tkeys\tseen\tposting\tg\tended\taudit\tCPU %\treplies/s\tgates/s\t")
	var prev *soakSample
	for _, s := range sr.rows() {
		rates := "-\t-\t-"
		if prev != nil && s.T > prev.T {
			dt := s.T - prev.T
			rates = fmt.Sprintf("%.0f\t%.0f\t%.2f", 100*(s.CPU-prev.CPU)/dt, float64(s.EchoOK-prev.EchoOK)/dt, float64(s.GatesOK-prev.GatesOK)/dt)
		}
		fmt.Fprintf(tw, "%.0f\t%.1f\t%.1f\t%.0f\t%d\t%.1f\t%.0f\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t\n", s.T, s.RSSMiB, s.HeapMiB, s.Goroutines, s.Sockets, s.RedisMiB, sumBut(s.KeyKiB),
			s.keysBut(), s.Keys["seen"], s.Keys["posting"], s.Keys["g"], s.Members["ended"], s.Members["audit"], rates)
		prev = &s
	}
	tw.Flush()
	fmt.Fprintln(w, "verdicts (median of the first window after warm-up → median of the last window):")
	vw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	small := 0
	for _, v := range sr.Verdicts {
		if strings.HasPrefix(v.Measure, "length of ") && v.OK && max(v.First, v.Last) < 2 {
			small++ // singletons and empty queues: in the JSON only
			continue
		}
		state := "ok"
		switch {
		case !v.Judged:
			state = "shown"
		case !v.OK:
			state = "FAIL"
		}
		if v.Bound {
			fmt.Fprintf(vw, "  %s\t%.0f ≤ %.0f\t\t%s\t%s\n", v.Measure, v.First, v.Last, state, v.Note)
			continue
		}
		fmt.Fprintf(vw, "  %s\t%.1f → %.1f\t%+.1f (allowed %.1f)\t%s\t%s\n", v.Measure, v.First, v.Last, v.Growth, v.Allowed, state, v.Note)
	}
	if small > 0 {
		fmt.Fprintf(vw, "  %d other structures\teach < 2 members in both windows\t\tok\t\n", small)
	}
	vw.Flush()
	if len(sr.SampleErrors) > 0 {
		fmt.Fprintf(w, "sampling errors: %s\n", mapLine(sr.SampleErrors))
	}
	if len(sr.LogErrors) > 0 {
		fmt.Fprintf(w, "gatebot log errors: %s\n", mapLine(sr.LogErrors))
	}
	for _, n := range sr.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintf(w, "soak ok: %v%s\n", sr.OK, failLine(sr.Failures))
}

func failLine(f []string) string {
	if len(f) == 0 {
		return ""
	}
	return " (" + strings.Join(f, "; ") + ")"
}

// rows picks at most maxTableRows samples evenly, the last included.
func (sr *soakReport) rows() []soakSample {
	n := len(sr.Samples)
	if n <= maxTableRows {
		return sr.Samples
	}
	step := (n + maxTableRows - 2) / (maxTableRows - 1)
	var out []soakSample
	for i := 0; i < n-1; i += step {
		out = append(out, sr.Samples[i])
	}
	return append(out, sr.Samples[n-1])
}
