package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// maxDuration is the hard cap on --duration.
const maxDuration = time.Hour

// options are the command-line settings.
type options struct {
	scenario          string
	conversations     int
	gates             int
	messages          int
	rate              float64
	duration          time.Duration
	think             time.Duration
	stepTimeout       time.Duration
	hang              time.Duration
	runFor            time.Duration
	providerLatency   time.Duration
	providerErrorRate float64
	pollEvery         time.Duration
	redis             string
	gatebot           string
	target            string
	pid               int
	token             string
	fakesListen       string
	writeConfig       string
	startupTimeout    time.Duration
	logLevel          string
	gatebotLog        string
	callsOut          string
	profileDir        string
	reference         string
	referenceDir      string
	keepKeys          bool
	json              bool
	assertExact       bool
	replicas          int
	killOneAfter      time.Duration
	rolling           bool
	faultOptions      // redis-restart, provider-faults, conn-down's modes (faults.go)
	soak              soakOptions
}

const usageHead = `usage: gatebot-bench [flags]

gatebot-bench starts gatebot (built from ./cmd/gatebot, --gatebot PATH, or a
running one at --target) with Bot Framework auth ON against in-process fakes on
loopback: an identity provider (OpenID metadata, RS256 JWKS, channel tokens,
the bot's client-credentials token endpoint), a Teams Bot Connector (bearer
token checked; Teams' per-conversation limits 7/1 s, 8/2 s, 60/30 s, 1800/h
answered 429 with Retry-After; every call recorded) and a Standard Webhooks CI
provider (signatures verified, runs counted per gate). It drives gatebot like
Teams and prints a table (or --json): throughput; p50/p95/p99 of open → card,
click → invoke answer, approve → provider call, approve → card shows run; card
sends per gate and identical consecutive sends; provider runs per gate
(missing, duplicate); gatebot CPU per gate (/proc/<pid>/stat) and RSS.

Each run stops by itself: after --gates gates (or --messages for echo) or
--duration, whichever is first; setup is bounded by --startup-timeout.
Exit status: 0 ok, 1 --assert-exact failed, 2 bad flags, 3 the run failed.

Scenarios (--scenario):
`

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("gatebot-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.scenario, "scenario", "flow", "flow, hang, conn-down, echo, api, redis-restart, provider-faults or soak")
	fs.IntVar(&o.conversations, "conversations", 4, "Teams group chats driven in parallel (each: a requester and two approvers); api: parallel API callers")
	fs.IntVar(&o.gates, "gates", 20, "gates to open in all (hang, conn-down: plus the one special gate); not used by echo")
	fs.IntVar(&o.messages, "messages", 0, "echo: stop after this many help turns (0: only --duration)")
	fs.Float64Var(&o.rate, "rate", 0, "echo: help turns per second over all conversations (0: one per conversation per second)")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "hard cap on the driving phase (at most 1h)")
	fs.DurationVar(&o.think, "think", 0, "pause between a user's steps (card seen → click, between gates)")
	fs.DurationVar(&o.stepTimeout, "step-timeout", 15*time.Second, "longest wait for a gate's card (or an echo reply), and again for its provider call, run on the card and result")
	fs.DurationVar(&o.hang, "hang", 60*time.Second, "hang: how long the hanging provider holds its trigger request")
	fs.DurationVar(&o.runFor, "run-for", 500*time.Millisecond, "how long a provider run reports running before it succeeds")
	fs.DurationVar(&o.providerLatency, "provider-latency", 0, "delay of every trigger answer of the fast provider")
	fs.Float64Var(&o.providerErrorRate, "provider-error-rate", 0, "share of fast-provider triggers answered 503 (0..1)")
	fs.DurationVar(&o.pollEvery, "poll-every", 250*time.Millisecond, "poll_every of the generated pipelines (run status checks)")
	fs.StringVar(&o.redis, "redis", envOr("GATEBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis URL for gatebot (loopback); keys use a unique prefix and are deleted afterwards")
	fs.StringVar(&o.gatebot, "gatebot", "", "gatebot binary to start (default: go build ./cmd/gatebot into a temp dir)")
	fs.StringVar(&o.target, "target", "", "URL of a gatebot to drive instead of starting one; start it with the config the bench writes (--write-config) once the bench says so")
	fs.IntVar(&o.pid, "pid", 0, "with --target: gatebot's pid, for CPU and RSS")
	fs.StringVar(&o.token, "token", "", "with --target and --scenario api: an API token (gatebot token create) for that gatebot")
	fs.StringVar(&o.fakesListen, "fakes-listen", "127.0.0.1:0", "loopback address of the fake IdP, Connector and provider")
	fs.StringVar(&o.writeConfig, "write-config", "", "also write the generated gatebot config to this file")
	fs.DurationVar(&o.startupTimeout, "startup-timeout", 2*time.Minute, "longest wait for building and starting gatebot")
	fs.StringVar(&o.logLevel, "log-level", "warn", "gatebot's log level (its log is kept in the temp dir and shown on failure)")
	fs.StringVar(&o.gatebotLog, "gatebot-log", "", "write the started gatebot's log to this file (default: a temp file, shown on failure)")
	fs.StringVar(&o.callsOut, "calls-out", "", "write every recorded Connector call (conversation, op, time, status, body hash, identical, gate) to this file as JSON lines")
	fs.StringVar(&o.profileDir, "profile-dir", "", "start gatebot with --pprof on loopback and write cpu.pprof (the driving phase), allocs.pprof and heap.pprof here; profiling adds CPU, so compare CPU figures of unprofiled runs only")
	fs.StringVar(&o.reference, "reference", "", "echo only: drive a reference bot instead of gatebot, for a reference row: botbuilder-js (Microsoft's botbuilder-js echo bot, node index.js in cmd/gatebot-bench/reference/botbuilder-js; run npm ci there first)")
	fs.StringVar(&o.referenceDir, "reference-dir", "", "directory of the --reference bot (default: cmd/gatebot-bench/reference/<name> of this module)")
	fs.BoolVar(&o.keepKeys, "keep-keys", false, "keep gatebot's Redis keys after the run")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON")
	fs.BoolVar(&o.assertExact, "assert-exact", false, "exit 1 unless every approved gate ran exactly once (0 missing, 0 duplicate, 0 unexpected runs); with --replicas > 1 also unless every approved gate's last card update shows it succeeded (or \"Could not start\" for a gate whose one provider call the killed replica was making) and, with --kill-one-after, the kill happened")
	fs.IntVar(&o.replicas, "replicas", 1, fmt.Sprintf("gatebot processes to start on one Redis prefix (1..%d), same config but the listen address, with short engine leases when > 1; each conversation's activities go round-robin over the live ones", maxReplicas))
	fs.BoolVar(&o.rolling, "rolling", false, "with --scenario flow and --replicas > 1: a rolling upgrade adding the flow's pipeline: replicas 1… run a config without it, /run goes to replica 0, clicks to any; with --assert-exact also exit 1 unless every replica's /readyz is 200 and says the replicas disagree")
	fs.DurationVar(&o.killOneAfter, "kill-one-after", 0, "with --replicas > 1: SIGKILL replica 1 this long into the driving phase (0: never); its activities then go to the others, a request it failed is re-sent with the same activity id")
	o.faultOptions.register(fs)
	o.soak.register(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHead+scenarioHelp()+"\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, usageError(err.Error())
	}
	if fs.NArg() > 0 {
		return o, usageError(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	o.soakDefaults(fs)
	return o, o.validate()
}

func (o options) validate() error {
	var errs []string
	if _, ok := scenarios[o.scenario]; !ok {
		errs = append(errs, fmt.Sprintf("--scenario %q is not one of flow, hang, conn-down, echo, api, redis-restart, provider-faults, soak", o.scenario))
	}
	minConv := 1
	switch o.scenario {
	case "hang", "conn-down":
		minConv = 2 // conversation 0 is the disturbed one
	case "provider-faults":
		minConv = providerFaultConvs + 1 // the faulty providers' conversations and at least one flow
	}
	if o.conversations < minConv || o.conversations > 100000 {
		errs = append(errs, fmt.Sprintf("--conversations must be between %d and 100000", minConv))
	}
	if o.gates < 1 && o.scenario != "echo" {
		errs = append(errs, "--gates must be at least 1")
	}
	if o.duration <= 0 || o.duration > maxDuration {
		errs = append(errs, "--duration must be more than 0 and at most 1h")
	}
	if o.stepTimeout <= 0 || o.startupTimeout <= 0 || o.messages < 0 || o.rate < 0 || o.think < 0 {
		errs = append(errs, "--step-timeout and --startup-timeout must be positive; --messages, --rate and --think not negative")
	}
	if o.providerErrorRate < 0 || o.providerErrorRate > 1 {
		errs = append(errs, "--provider-error-rate must be between 0 and 1")
	}
	if o.pollEvery < 10*time.Millisecond {
		errs = append(errs, "--poll-every must be at least 10ms")
	}
	if !loopbackURL(o.redis) {
		errs = append(errs, "--redis must be a redis:// URL on a loopback host")
	}
	if h, _, err := net.SplitHostPort(o.fakesListen); err != nil || !isLoopback(h) {
		errs = append(errs, "--fakes-listen must be a loopback host:port")
	}
	if o.reference != "" {
		if _, ok := referenceBots[o.reference]; !ok {
			errs = append(errs, fmt.Sprintf("--reference %q is not one of botbuilder-js", o.reference))
		}
		if o.scenario != "echo" {
			errs = append(errs, "--reference works with --scenario echo only")
		}
		if o.target != "" || o.gatebot != "" || o.profileDir != "" {
			errs = append(errs, "--reference excludes --target, --gatebot and --profile-dir")
		}
	}
	if o.target != "" {
		if !loopbackURL(o.target) {
			errs = append(errs, "--target must be an http URL on a loopback host")
		}
		if o.gatebot != "" {
			errs = append(errs, "--target and --gatebot exclude each other")
		}
		if o.profileDir != "" {
			errs = append(errs, "--profile-dir needs a gatebot the bench starts (not --target)")
		}
		if (o.scenario == "api" || o.scenario == "soak") && o.token == "" {
			errs = append(errs, "--scenario api or soak with --target needs --token")
		}
	}
	errs = append(errs, o.replicaProblems()...)
	errs = append(errs, o.faultProblems()...)
	errs = append(errs, o.soakProblems()...)
	if len(errs) > 0 {
		return usageError(strings.Join(errs, "; "))
	}
	return nil
}

// replicaProblems checks --replicas and --kill-one-after.
func (o options) replicaProblems() []string {
	var errs []string
	if o.replicas < 1 || o.replicas > maxReplicas {
		errs = append(errs, fmt.Sprintf("--replicas must be between 1 and %d", maxReplicas))
	}
	if o.replicas > 1 && (o.target != "" || o.reference != "" || o.profileDir != "") {
		errs = append(errs, "--replicas > 1 needs gatebots the bench starts: it excludes --target, --reference and --profile-dir")
	}
	if o.replicas > 1 && o.scenario == "echo" {
		errs = append(errs, "--replicas > 1 works with the gate scenarios, not echo")
	}
	switch {
	case o.killOneAfter < 0:
		errs = append(errs, "--kill-one-after must not be negative")
	case o.killOneAfter > 0 && o.replicas < 2:
		errs = append(errs, "--kill-one-after needs --replicas 2 or more (replica 1 is killed, the others carry on)")
	case o.killOneAfter > 0 && o.killOneAfter >= o.duration:
		errs = append(errs, "--kill-one-after must be shorter than --duration")
	}
	if o.rolling && (o.replicas < 2 || o.scenario != "flow") {
		errs = append(errs, "--rolling needs --scenario flow and --replicas 2 or more (replica 0 has the new config, the others the old)")
	}
	if o.rolling && o.killOneAfter > 0 {
		errs = append(errs, "--rolling excludes --kill-one-after")
	}
	return errs
}

func loopbackURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Host != "" && isLoopback(u.Hostname())
}

// isLoopback accepts localhost and loopback IPs: the bench never leaves
// the machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
