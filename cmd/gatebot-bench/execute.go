package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gatebot/gatebot/cmd/gatebot-bench/internal/fakes"
)

const (
	// settleFor is how long the bench waits after driving for provider
	// calls of approved gates still in flight, before counting missing.
	settleFor = 3 * time.Second
	// stopGrace is how long gatebot gets to drain after SIGTERM.
	stopGrace = 10 * time.Second
)

// rig is the fakes on their loopback server.
type rig struct {
	base string
	srv  *http.Server
	idp  *fakes.IdP
	conn *fakes.Connector
	prov *fakes.Provider
}

func startRig(listen, appID, appPassword, secret string) (*rig, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("fakes: %w", err)
	}
	base := "http://" + ln.Addr().String()
	idp, err := fakes.NewIdP(fakes.IdPConfig{AppID: appID, AppPassword: appPassword, BaseURL: base + "/idp"})
	if err != nil {
		ln.Close()
		return nil, err
	}
	prov, err := fakes.NewProvider(fakes.ProviderConfig{Secret: secret, BaseURL: base + "/ci"})
	if err != nil {
		ln.Close()
		return nil, err
	}
	conn := fakes.NewConnector(fakes.ConnectorConfig{Tokens: idp})
	mux := http.NewServeMux()
	mux.Handle("/idp/", http.StripPrefix("/idp", idp))
	mux.Handle("/teams/", http.StripPrefix("/teams", conn))
	mux.Handle("/ci/", http.StripPrefix("/ci", prov))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return &rig{base: base, srv: srv, idp: idp, conn: conn, prov: prov}, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// execute sets up the rig and gatebot, runs the scenario and builds the
// report. The whole run is bounded by --startup-timeout + --duration plus
// settling and shutdown.
func execute(ctx context.Context, opt options, stderr io.Writer) (*report, error) {
	ctx, cancel := context.WithTimeout(ctx, opt.startupTimeout+opt.duration+settleBound(opt.replicas)+stopGrace)
	defer cancel()
	tmp, err := os.MkdirTemp("", "gatebot-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	own, err := startOwnRedisFor(ctx, &opt, tmp)
	if err != nil {
		return nil, err
	}
	defer own.stop()

	id := randomHex(16)
	appID := fmt.Sprintf("%s-%s-%s-%s-%s", id[:8], id[8:12], id[12:16], id[16:20], id[20:32])
	appPassword := randomHex(24)
	secretKey := make([]byte, 32)
	_, _ = rand.Read(secretKey)
	secret := "whsec_" + base64.StdEncoding.EncodeToString(secretKey)
	rg, err := startRig(opt.fakesListen, appID, appPassword, secret)
	if err != nil {
		return nil, err
	}
	defer rg.srv.Close() // also ends hanging provider requests
	rg.prov.SetBehaviour(hookFast, fakes.Behaviour{Latency: opt.providerLatency, ErrorRate: opt.providerErrorRate, RunFor: opt.runFor})
	rg.prov.SetBehaviour(hookHang, fakes.Behaviour{RunFor: opt.runFor})
	setFaultBehaviours(opt, rg.prov)

	params, cfgPaths, err := writeConfig(opt, rg, tmp, id, appID, appPassword, secret)
	if err != nil {
		return nil, err
	}
	if !opt.keepKeys {
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if _, err := cleanupRedis(cctx, opt.redis, params.Prefix); err != nil {
				fmt.Fprintln(stderr, "gatebot-bench: could not delete Redis keys under", params.Prefix+":", err)
			}
		}()
	}

	b := &bench{opt: opt, ownRedis: own, conn: rg.conn, prov: rg.prov, idp: rg.idp, gatebotURL: "http://" + params.Listen, apiToken: opt.token, appPassword: appPassword, prefix: params.Prefix}
	bases := make([]string, len(cfgPaths))
	for i, p := range cfgPaths {
		bases[i] = "http://" + p.listen
	}
	b.teams = newTeams(newRouter(bases), params.ServiceURL, appID, rg.idp)
	b.teams.pinMessages = opt.rolling
	sctx, scancel := context.WithTimeout(ctx, opt.startupTimeout)
	pid, stop, err := b.startTarget(sctx, tmp, cfgPaths, "bench-"+id[:8], stderr)
	scancel()
	defer stop()
	if err != nil {
		return nil, err
	}
	return b.drive(ctx, pid)
}

// replicaConfig is where one replica's config was written and what it
// listens on.
type replicaConfig struct{ path, listen string }

// writeConfig renders gatebot's config for the rig, one per replica (the
// same but for the listen address), and writes them to the temp dir
// (replica 0's also to --write-config).
func writeConfig(opt options, rg *rig, tmp, id, appID, appPassword, secret string) (configParams, []replicaConfig, error) {
	params := configParams{
		AppID: appID, AppPassword: appPassword,
		MetadataURL: rg.idp.MetadataURL(), TokenURL: rg.idp.TokenURL(), ServiceURL: rg.base + "/teams/",
		RedisURL: opt.redis, Prefix: "gatebot-bench:" + id[:12] + ":",
		HookURLs: map[string]string{hookFast: rg.prov.HookURL(hookFast), hookHang: rg.prov.HookURL(hookHang)},
		Secret:   secret, LogLevel: opt.logLevel, PollEvery: opt.pollEvery, Engine: engineSection(opt.replicas),
		Approvals: opt.approvalsSection(),
	}
	addFaultPipelines(opt, rg, &params)
	var out []replicaConfig
	for i := range max(opt.replicas, 1) {
		p := params
		if opt.target != "" {
			u, _ := url.Parse(opt.target)
			p.Listen = u.Host
		} else {
			var err error
			if p.Listen, err = freeLoopbackAddr(); err != nil {
				return params, nil, err
			}
		}
		if rollingOmits(opt, i) {
			p.Omit = []string{pipelineFast}
		}
		cfg, err := gatebotConfig(p)
		if err != nil {
			return params, nil, err
		}
		rc := replicaConfig{path: filepath.Join(tmp, "gatebot.yaml"), listen: p.Listen}
		if i > 0 {
			rc.path = filepath.Join(tmp, fmt.Sprintf("gatebot-%d.yaml", i))
		}
		paths := []string{rc.path}
		if i == 0 {
			paths = append(paths, opt.writeConfig)
			params.Listen = p.Listen
		}
		for _, path := range paths {
			if path != "" {
				if err := os.WriteFile(path, cfg, 0o600); err != nil {
					return params, nil, err
				}
			}
		}
		out = append(out, rc)
	}
	return params, out, nil
}

// startTarget builds and starts gatebot (or waits for --target) until it
// is ready, and creates the API token the api scenario needs. It returns
// gatebot's pid (0 if unknown; replica 0's with --replicas) and a stop
// function that is always safe to call.
func (b *bench) startTarget(ctx context.Context, tmp string, cfgs []replicaConfig, tokenName string, stderr io.Writer) (int, func(), error) {
	opt := b.opt
	nop := func() {}
	if opt.reference != "" {
		return b.startReference(ctx, tmp, strings.TrimPrefix(b.gatebotURL, "http://"), stderr)
	}
	if opt.target != "" {
		shown := opt.writeConfig
		if shown == "" {
			shown = cfgs[0].path
		}
		fmt.Fprintf(stderr, "gatebot-bench: start gatebot now: gatebot serve --config %s (waiting %s for %s/readyz)\n", shown, opt.startupTimeout, opt.target)
		return opt.pid, nop, waitReady(ctx, b.gatebotURL, nil)
	}
	bin := opt.gatebot
	if bin == "" {
		var err error
		if bin, err = buildGatebot(ctx, tmp); err != nil {
			return 0, nop, err
		}
	}
	var extra []string
	if opt.profileDir != "" {
		addr, err := freeLoopbackAddr()
		if err != nil {
			return 0, nop, err
		}
		if err := os.MkdirAll(opt.profileDir, 0o755); err != nil {
			return 0, nop, err
		}
		extra = []string{"--pprof", addr}
		b.prof = &profiler{base: "http://" + addr, dir: opt.profileDir}
	}
	stop := func() {
		for _, r := range b.replicas {
			r.proc.stop(stopGrace)
		}
	}
	for i, rc := range cfgs {
		logPath := opt.gatebotLog
		switch {
		case logPath == "":
			logPath = filepath.Join(tmp, fmt.Sprintf("gatebot-%d.log", i))
		case i > 0:
			logPath = fmt.Sprintf("%s.%d", opt.gatebotLog, i)
		}
		proc, err := startGatebot(bin, rc.path, logPath, extra...)
		if err != nil {
			return 0, stop, err
		}
		b.replicas = append(b.replicas, &replica{proc: proc, log: logPath})
	}
	for i, r := range b.replicas {
		if err := waitReady(ctx, "http://"+cfgs[i].listen, r.proc.done); err != nil {
			return 0, stop, fmt.Errorf("replica %d: %w\ngatebot log:\n%s", i, err, tail(r.log, 40))
		}
	}
	if (needsToken(opt.scenario) || opt.scenario == "soak") && b.apiToken == "" {
		var err error
		if b.apiToken, err = createToken(ctx, bin, cfgs[0].path, tokenName); err != nil {
			return 0, stop, err
		}
	}
	return b.replicas[0].proc.cmd.Process.Pid, stop, nil
}

// drive runs the scenario for at most --duration, lets in-flight provider
// calls settle, and builds the report with gatebot's CPU and RSS.
func (b *bench) drive(ctx context.Context, pid int) (*report, error) {
	var mon *procMonitor
	multi := len(b.replicas) > 1
	switch {
	case multi:
		for _, r := range b.replicas {
			r.measure()
		}
	case pid > 0:
		mon = monitorProc(pid, 250*time.Millisecond)
	}
	start := time.Now()
	dctx, cancel := context.WithTimeout(ctx, b.opt.duration)
	if b.prof != nil {
		b.prof.startCPU(ctx, b.opt.duration)
	}
	stopKill := b.scheduleKill()
	scenarios[b.opt.scenario](b, dctx)
	cancel()
	elapsed := time.Since(start)
	if b.prof != nil {
		if err := b.prof.finish(ctx); err != nil {
			return nil, err
		}
	}
	b.settle(ctx)
	stopKill() // a kill still to come would only disturb the report

	rep := b.buildReport(elapsed)
	rep.startedAt = start
	b.faultReport(rep)
	if multi {
		b.replicaReport(rep, start)
		b.rollingReport(ctx, rep)
	}
	if b.opt.callsOut != "" {
		if err := writeCalls(b.opt.callsOut, b.conn.AllCalls()); err != nil {
			return rep, err
		}
	}
	rep.Settings = map[string]any{"conversations": b.opt.conversations, "duration": b.opt.duration.String()}
	rep.Target = "gatebot"
	if b.opt.reference != "" {
		rep.Target = b.opt.reference
	}
	if b.opt.scenario == "echo" {
		rate := b.opt.rate
		if rate <= 0 {
			rate = float64(b.opt.conversations)
		}
		rep.Settings["rate"] = fmt.Sprintf("%g/s", rate)
	} else {
		rep.Settings["gates"] = b.opt.gates
	}
	if b.opt.think > 0 {
		rep.Settings["think"] = b.opt.think.String()
	}
	if b.soakRun != nil {
		b.soakSettings(rep)
	}
	if multi {
		return rep, nil
	}
	if mon == nil {
		rep.ProcNote = "not measured (pass --pid with --target)"
		return rep, nil
	}
	cpu, rss, peak, err := mon.finish()
	if err != nil {
		rep.ProcNote = "could not read /proc: " + err.Error()
		return rep, nil
	}
	rep.CPUSeconds = cpu.Seconds()
	per := rep.Succeeded
	if rep.Echo != nil {
		per = rep.Echo.Replied
	}
	if per > 0 {
		rep.CPUPerGate = float64(cpu.Microseconds()) / 1000 / float64(per)
	}
	rep.RSSMiB, rep.PeakRSSMiB = float64(rss)/(1<<20), float64(peak)/(1<<20)
	return rep, nil
}

// settle waits until every approved gate has reached the provider (and,
// with replicas, until its card shows the final state), so work merely in
// flight or waiting for a dead replica's lease is not counted missing. It
// waits at most settleBound.
func (b *bench) settle(ctx context.Context) {
	multi := len(b.replicas) > 1
	every := 50 * time.Millisecond
	if multi {
		every = 200 * time.Millisecond // each look folds every card's history
	}
	deadline := time.Now().Add(settleBound(b.opt.replicas))
	for time.Now().Before(deadline) && ctx.Err() == nil {
		trig := b.prov.Triggers()
		pending := false
		b.mu.Lock()
		gates, killedAt := slices.Clone(b.gates), b.killedAt
		b.mu.Unlock()
		for _, g := range gates {
			if g.Approved && (len(trig[g.GateID]) == 0 || (multi && g.Special == "" && !b.finalDone(g, trig[g.GateID], killedAt))) {
				pending = true
				break
			}
		}
		if !pending {
			return
		}
		time.Sleep(every)
	}
}

// scheduleKill arms --kill-one-after and returns its disarm.
func (b *bench) scheduleKill() func() {
	if b.opt.killOneAfter <= 0 || len(b.replicas) < 2 {
		return func() {}
	}
	t := time.AfterFunc(b.opt.killOneAfter, func() { b.killReplica(1) })
	return func() { t.Stop() }
}

// killReplica takes replica i out of the rotation and SIGKILLs it.
func (b *bench) killReplica(i int) {
	b.teams.routes.kill(i)
	b.mu.Lock()
	b.killedAt = time.Now()
	b.mu.Unlock()
	if err := b.replicas[i].sigkill(); err != nil {
		b.mu.Lock()
		b.killedAt = time.Time{}
		b.mu.Unlock()
	}
}

// replicaReport adds each replica's CPU and memory, the kill and the
// final-card account to rep.
func (b *bench) replicaReport(rep *report, start time.Time) {
	var cpu float64
	for i, r := range b.replicas {
		r.finish()
		rr := r.report(i)
		rep.Replicas = append(rep.Replicas, rr)
		cpu += rr.CPUSeconds
		rep.RSSMiB = max(rep.RSSMiB, rr.RSSMiB)
		rep.PeakRSSMiB = max(rep.PeakRSSMiB, rr.PeakRSSMiB)
	}
	rep.CPUSeconds = cpu
	if rep.Succeeded > 0 {
		rep.CPUPerGate = cpu * 1000 / float64(rep.Succeeded)
	}
	b.mu.Lock()
	killedAt := b.killedAt
	b.mu.Unlock()
	fc, rec := b.checkFinalCards(start, killedAt)
	rep.FinalCards, rep.Recovery = &fc, rec
	rep.FinalOK = fc.Shown+fc.Interrupted == fc.Approved
	if b.opt.killOneAfter > 0 && killedAt.IsZero() {
		rep.ProcNote = "replica 1 was not killed: the run ended before --kill-one-after"
	}
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// writeCalls writes the Connector's record as JSON lines.
func writeCalls(path string, calls []fakes.Call) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, c := range calls {
		c.Gate = gateOf(c.Body)
		if err := enc.Encode(c); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
