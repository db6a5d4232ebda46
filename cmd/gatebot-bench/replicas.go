package main

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatebot/gatebot/cmd/gatebot-bench/internal/fakes"
)

// Engine leases of the generated config when --replicas > 1: short, so a
// killed replica's claims come back within a bench run (serve's defaults
// are minutes). They keep config check's and engine.New's invariants:
// budget < visibility, provider timeout ≤ budget < poll lease.
const (
	replicaTriggerVisibility = 15 * time.Second
	replicaTriggerBudget     = 10 * time.Second
	replicaProviderTimeout   = 5 * time.Second
	replicaCardLease         = 5 * time.Second
	replicaPollLease         = 6 * time.Second
	// replicaSettleExtra is how long after the trigger visibility the
	// settle phase still waits for redelivered work.
	replicaSettleExtra = 10 * time.Second
	// maxReplicas bounds --replicas: each is a gatebot on two shared cores.
	maxReplicas = 8
)

// engineSection is the generated config's engine: section, nil (serve's
// defaults) for one replica so single-replica figures stay comparable.
func engineSection(replicas int) map[string]any {
	if replicas <= 1 {
		return nil
	}
	return map[string]any{
		"trigger_visibility": replicaTriggerVisibility.String(), "trigger_budget": replicaTriggerBudget.String(),
		"provider_timeout": replicaProviderTimeout.String(), "card_lease": replicaCardLease.String(),
		"poll_lease": replicaPollLease.String(),
	}
}

// settleBound is the longest the settle phase waits: with replicas, long
// enough for a trigger claimed by a killed one to be redelivered.
func settleBound(replicas int) time.Duration {
	if replicas > 1 {
		return replicaTriggerVisibility + replicaSettleExtra
	}
	return settleFor
}

// router spreads activities over the replicas as a load balancer in
// front of them would: each conversation's activities go round-robin over
// the live replicas, one activity at a time, so a gate opened on one
// replica is approved on another. It is safe for concurrent use.
type router struct {
	bases  []string
	resent atomic.Int64

	mu   sync.Mutex
	dead []bool
	next map[string]int // conversation → next replica to try
}

func newRouter(bases []string) *router {
	return &router{bases: bases, dead: make([]bool, len(bases)), next: map[string]int{}}
}

// pick returns the next live replica for conv.
func (r *router) pick(conv string) (int, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.bases)
	i := r.next[conv]
	for k := 0; k < n && r.dead[i%n]; k++ {
		i++
	}
	i %= n
	r.next[conv] = i + 1
	return i, r.bases[i]
}

// kill takes replica i out of the rotation.
func (r *router) kill(i int) {
	r.mu.Lock()
	r.dead[i] = true
	r.mu.Unlock()
}

func (r *router) isDead(i int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dead[i]
}

// replica is one started gatebot and its CPU and memory account.
type replica struct {
	proc *process
	log  string

	mu      sync.Mutex
	mon     *procMonitor
	killed  bool
	cpu     time.Duration
	rss     int64
	peakRSS int64
	err     error
}

// measure starts sampling the replica for the driving phase.
func (r *replica) measure() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mon = monitorProc(r.proc.cmd.Process.Pid, 250*time.Millisecond)
}

// finish ends the measurement (once).
func (r *replica) finish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mon != nil {
		r.cpu, r.rss, r.peakRSS, r.err = r.mon.finish()
		r.mon = nil
	}
}

// sigkill measures the replica a last time and kills it with SIGKILL, as
// a node failure or the OOM killer does: no drain, no lease given back.
func (r *replica) sigkill() error {
	r.finish()
	r.mu.Lock()
	r.killed = true
	r.mu.Unlock()
	return r.proc.cmd.Process.Signal(syscall.SIGKILL)
}

// replicaReport is one replica's line of the report.
type replicaReport struct {
	Index      int     `json:"index"`
	PID        int     `json:"pid"`
	CPUSeconds float64 `json:"cpu_s"`
	RSSMiB     float64 `json:"rss_mib"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	Killed     bool    `json:"killed"`
	Note       string  `json:"note,omitempty"`
}

func (r *replica) report(i int) replicaReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := replicaReport{Index: i, PID: r.proc.cmd.Process.Pid, CPUSeconds: r.cpu.Seconds(), Killed: r.killed,
		RSSMiB: float64(r.rss) / (1 << 20), PeakRSSMiB: float64(r.peakRSS) / (1 << 20)}
	if r.err != nil {
		out.Note = "could not read /proc: " + r.err.Error()
	}
	return out
}

// finalCards is the account of approved gates' cards at the end.
type finalCards struct {
	Approved int `json:"approved_gates"`
	// Shown counts approved gates whose card's last accepted update shows
	// the run and says succeeded.
	Shown int `json:"final_card_shown"`
	// Interrupted counts approved gates whose one provider call was in
	// flight on the killed replica: its outcome is unknown, the webhook
	// provider cannot tell a repeated call apart, so gatebot does not call
	// again and the gate rests in trigger_failed ("Could not start", a
	// person decides), which the card's last update shows.
	Interrupted int `json:"interrupted_by_kill"`
	// Abandoned counts provider calls the fake saw the caller leave
	// before its answer (only measurable with --provider-latency).
	Abandoned int `json:"provider_calls_abandoned"`
	// NotShown names (up to 10) approved gates whose card shows neither,
	// with what their last card says.
	NotShown []string `json:"final_card_missing,omitempty"`
}

// recovery is how long the gates in flight when a replica was killed
// took to end.
type recovery struct {
	KilledAt float64 `json:"killed_at_s"` // after the driving phase began
	// InFlight counts approved gates whose card was up before the kill
	// and whose final card came after it.
	InFlight int `json:"in_flight_gates"`
	// Seconds is from the kill to the last of those final cards; -1 when
	// one of them never showed it.
	Seconds float64 `json:"recovered_after_s"`
	Resent  int     `json:"activities_resent"`
	// NoCard counts gates opened whose card never came within
	// --step-timeout: never approved, so outside the checks above.
	NoCard int `json:"opened_without_card"`
}

// cardOutcome is how an approved gate's card ended.
type cardOutcome int

const (
	cardNotFinal cardOutcome = iota
	cardSucceeded
	cardInterrupted
)

// cardEnd folds gate g's card history: when the card was first up, when
// it first showed the end, and how its last accepted update ended.
func (b *bench) cardEnd(g *gateResult, trig []fakes.Trigger, killedAt time.Time) (posted, final time.Time, out cardOutcome, last []byte) {
	runURL := []byte(b.prov.RunURL(g.GateID))
	for _, c := range b.conn.Calls(g.Conversation) {
		if !c.OK() || c.ActivityID != g.CardActivity {
			continue
		}
		if posted.IsZero() {
			posted = c.At
		}
		last = c.Body
		if o := outcome(c.Body, runURL, trig, killedAt); o != cardNotFinal && final.IsZero() {
			final = c.At
		}
	}
	return posted, final, outcome(last, runURL, trig, killedAt), last
}

// killSlack is how long after the bench noted the kill a call may still
// have left the dying replica (the signal is sent just after).
const killSlack = 100 * time.Millisecond

// outcome classifies one card body. "Could not start" counts as an end
// only after a kill and for a gate whose provider was called once, by the
// killed replica: abandoned mid-call, or made before the kill.
func outcome(body, runURL []byte, trig []fakes.Trigger, killedAt time.Time) cardOutcome {
	low := strings.ToLower(string(body))
	switch {
	case bytes.Contains(body, runURL) && strings.Contains(low, "succeeded"):
		return cardSucceeded
	case !killedAt.IsZero() && len(trig) == 1 && (trig[0].Abandoned || trig[0].At.Before(killedAt.Add(killSlack))) &&
		strings.Contains(low, "could not start"):
		return cardInterrupted
	}
	return cardNotFinal
}

// checkFinalCards folds every approved gate's card history into the
// final-card account and, after a kill, the recovery figures.
func (b *bench) checkFinalCards(start, killedAt time.Time) (finalCards, *recovery) {
	var fc finalCards
	var rec *recovery
	if !killedAt.IsZero() {
		rec = &recovery{KilledAt: killedAt.Sub(start).Seconds(), Resent: int(b.teams.routes.resent.Load())}
	}
	triggers := b.prov.Triggers()
	for _, ts := range triggers {
		for _, t := range ts {
			if t.Abandoned {
				fc.Abandoned++
			}
		}
	}
	var lastEnd time.Time
	never := false
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, g := range b.gates {
		if rec != nil && g.Stage == "card" && g.Special == "" {
			rec.NoCard++
		}
		if !g.Approved || g.Special != "" {
			continue
		}
		fc.Approved++
		posted, final, out, last := b.cardEnd(g, triggers[g.GateID], killedAt)
		switch out {
		case cardSucceeded:
			fc.Shown++
		case cardInterrupted:
			fc.Interrupted++
		default:
			if len(fc.NotShown) < 10 {
				fc.NotShown = append(fc.NotShown, fmt.Sprintf("%s (last card: %s; %d provider calls)", g.GateID, cardState(last), len(triggers[g.GateID])))
			}
		}
		if rec == nil || posted.IsZero() || !posted.Before(killedAt) || (!final.IsZero() && final.Before(killedAt)) {
			continue
		}
		rec.InFlight++
		if final.IsZero() {
			never = true
		} else if final.After(lastEnd) {
			lastEnd = final
		}
	}
	if rec != nil {
		switch {
		case never:
			rec.Seconds = -1
		case rec.InFlight > 0:
			rec.Seconds = lastEnd.Sub(killedAt).Seconds()
		}
	}
	return fc, rec
}

// cardState names the gate state a card body shows, for error lines.
func cardState(body []byte) string {
	if len(body) == 0 {
		return "none"
	}
	low := strings.ToLower(string(body))
	for _, s := range []string{"succeeded", "could not start", "failed", "running", "triggering", "cancelled", "expired", "rejected", "approved", "pending"} {
		if strings.Contains(low, s) {
			return s
		}
	}
	return "unknown"
}

// finalDone reports whether g's card shows its end already (settle waits
// for it with replicas).
func (b *bench) finalDone(g *gateResult, trig []fakes.Trigger, killedAt time.Time) bool {
	_, _, out, _ := b.cardEnd(g, trig, killedAt)
	return out != cardNotFinal
}
