package main

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// faultOptions are the fault scenarios' flags (issue #14 "Faults", #13).
type faultOptions struct {
	downMode      string
	downFor       time.Duration
	restartAfter  time.Duration
	outage        time.Duration
	redisServer   string
	redisFault    string
	failFirst     int
	throttleFirst int
	retryAfter    time.Duration
	faultTimeout  time.Duration
}

// register adds the fault flags to fs.
func (f *faultOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&f.downMode, "down-mode", "down", "conn-down: how conversation 0's Connector fails: down (503, retryable), refuse (403 BotNotInConversationRoster), 429 (429 with Retry-After 2), 502 (502, an HTML page) or unreachable (the connection closed without an answer)")
	fs.DurationVar(&f.downFor, "down-for", 0, "conn-down: fail conversation 0's Connector only from its card's post for this long, then recover (0: the whole run); its card's last accepted update must then show the final state")
	fs.DurationVar(&f.restartAfter, "restart-after", 2*time.Second, "redis-restart: SIGKILL the bench's redis-server this long into the driving phase")
	fs.DurationVar(&f.outage, "outage", 2*time.Second, "redis-restart: keep Redis down this long, then restart it from the same dir (AOF, appendfsync always)")
	fs.StringVar(&f.redisServer, "redis-server", "redis-server", "redis-restart: the redis-server binary the bench starts on a free loopback port")
	fs.StringVar(&f.redisFault, "redis-fault", "kill", "redis-restart: kill (SIGKILL, then a restart from the AOF: connections refused meanwhile) or stop (SIGSTOP, then SIGCONT: a hung Redis, connections and commands time out meanwhile)")
	fs.IntVar(&f.failFirst, "fail-first", 2, "provider-faults: the flaky provider answers each gate's first N triggers 503")
	fs.IntVar(&f.throttleFirst, "throttle-first", 2, "provider-faults: the throttled provider answers each gate's first N triggers 429 (gatebot tries 4 times: 4 or more ends on \"Could not start\")")
	fs.DurationVar(&f.retryAfter, "retry-after", time.Second, "provider-faults: the Retry-After of the throttled provider's 429s")
	fs.DurationVar(&f.faultTimeout, "fault-provider-timeout", 3*time.Second, "provider-faults: gatebot's engine.provider_timeout (the hanging provider holds each trigger for --hang, which must be longer)")
}

// faultProblems checks the fault flags.
func (o options) faultProblems() []string {
	var errs []string
	if _, ok := connModes[o.downMode]; !ok {
		errs = append(errs, "--down-mode must be down, refuse, 429, 502 or unreachable")
	}
	if o.downFor < 0 || (o.downFor > 0 && o.downFor >= o.duration) {
		errs = append(errs, "--down-for must not be negative and must be shorter than --duration")
	}
	if o.scenario == "redis-restart" {
		if o.restartAfter <= 0 || o.outage <= 0 || o.restartAfter+o.outage >= o.duration {
			errs = append(errs, "redis-restart: --restart-after and --outage must be positive and end before --duration")
		}
		if o.target != "" || o.replicas > 1 || o.reference != "" {
			errs = append(errs, "redis-restart needs one gatebot the bench starts: it excludes --target, --replicas > 1 and --reference")
		}
		if o.redisFault != "kill" && o.redisFault != "stop" {
			errs = append(errs, "--redis-fault must be kill or stop")
		}
	}
	if o.scenario == "provider-faults" {
		if o.failFirst < 1 || o.throttleFirst < 1 || o.throttleFirst > 10 || o.retryAfter < time.Second || o.retryAfter > 10*time.Second {
			errs = append(errs, "provider-faults: --fail-first must be at least 1, --throttle-first between 1 and 10, --retry-after between 1s and 10s")
		}
		if o.faultTimeout < time.Second || o.hang <= o.faultTimeout+time.Second {
			errs = append(errs, "provider-faults: --fault-provider-timeout must be at least 1s and --hang more than 1s longer")
		}
		if o.target != "" {
			errs = append(errs, "provider-faults needs a gatebot the bench starts (its config has the faulty providers): it excludes --target")
		}
	}
	return errs
}

// needsToken reports whether the scenario calls the external API.
func needsToken(scenario string) bool { return scenario == "api" || scenario == "redis-restart" }

// faultRecord is what the fault scenarios note while driving. It is
// guarded by bench.mu.
type faultRecord struct {
	// redis-restart
	killedAt, upAt time.Time
	// restartingAt is when the restart began: Redis may answer from then
	// on, before upAt.
	restartingAt time.Time
	// apiBackAt is when the API probe was first answered 200 after the
	// restart began.
	apiBackAt  time.Time
	restartErr error
	// refusals are the outage answers: Teams turns told "nothing was
	// recorded", invoke error cards, API 503s.
	refusals map[string][]time.Duration
	// apiStatus counts the API probe's answers during the outage.
	apiStatus map[string]int
	// notRecorded are the /run activity ids gatebot said it did not
	// record.
	notRecorded map[string]bool
	// probeCards counts outage-probe /runs answered with a card (Redis
	// came back meanwhile); their gates stay pending.
	probeCards int
	// conn-down --down-for
	recoveredAt time.Time
}

func (b *bench) refused(kind string, d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.faults.refusals == nil {
		b.faults.refusals = map[string][]time.Duration{}
	}
	b.faults.refusals[kind] = append(b.faults.refusals[kind], d)
}

// faultReport is the account of a fault scenario: named checks, each
// passed or not with its figures, and latency distributions.
type faultReport struct {
	Kind      string             `json:"kind"`
	Timeline  string             `json:"timeline,omitempty"`
	Checks    []faultCheck       `json:"checks"`
	Latencies map[string]summary `json:"latencies,omitempty"`
	Counts    map[string]int     `json:"counts,omitempty"`
	OK        bool               `json:"ok"`
}

// faultCheck is one pass/fail check with what it saw.
type faultCheck struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

func (f *faultReport) check(name string, ok bool, format string, args ...any) {
	f.Checks = append(f.Checks, faultCheck{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)})
}

// finish sets OK from the checks.
func (f *faultReport) finish() {
	f.OK = len(f.Checks) > 0
	for _, c := range f.Checks {
		f.OK = f.OK && c.OK
	}
}

// failed names the failed checks, for the exit message.
func (f *faultReport) failed() string {
	var out []string
	for _, c := range f.Checks {
		if !c.OK {
			out = append(out, c.Name+" ("+c.Detail+")")
		}
	}
	return strings.Join(out, "; ")
}

// write prints the fault lines of the table (nothing without faults).
func (f *faultReport) write(w io.Writer) {
	if f == nil {
		return
	}
	fmt.Fprintf(w, "fault\t%s\n", f.Kind)
	if f.Timeline != "" {
		fmt.Fprintf(w, "timeline\t%s\n", f.Timeline)
	}
	for _, name := range sortedKeys(f.Latencies) {
		s := f.Latencies[name]
		fmt.Fprintf(w, "  %s\tn %d, p50 %.1f, p95 %.1f, p99 %.1f, max %.1f ms\n", name, s.N, s.P50, s.P95, s.P99, s.Max)
	}
	if len(f.Counts) > 0 {
		fmt.Fprintf(w, "counts\t%s\n", mapLine(f.Counts))
	}
	for _, c := range f.Checks {
		verdict := "ok"
		if !c.OK {
			verdict = "FAILED"
		}
		fmt.Fprintf(w, "check %s\t%s: %s\n", c.Name, verdict, c.Detail)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// faultReport adds the fault scenario's account to rep (nothing for the
// other scenarios).
func (b *bench) faultReport(rep *report) {
	switch {
	case b.opt.scenario == "redis-restart":
		rep.Faults = b.redisReport(rep)
	case b.opt.scenario == "provider-faults":
		rep.Faults = b.providerReport(rep)
	case b.opt.scenario == "conn-down":
		rep.Faults = b.connReport(rep)
	default:
		return
	}
	rep.Faults.finish()
}

// guarded runs fn with bench.mu held.
func (b *bench) guarded(fn func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fn()
}
