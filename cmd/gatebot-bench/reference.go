package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatebot/gatebot/cmd/gatebot-bench/internal/fakes"
)

// referenceBots are the --reference targets: bots other than gatebot that
// the echo scenario can drive for a reference row, by their directory
// under cmd/gatebot-bench/reference.
var referenceBots = map[string]string{
	"botbuilder-js": "botbuilder-js", // Microsoft's botbuilder-js echo bot (node index.js)
}

// referenceDir returns the directory of a reference bot: --reference-dir,
// else cmd/gatebot-bench/reference/<name> of this module.
func referenceDir(ctx context.Context, opt options) (string, error) {
	if opt.referenceDir != "" {
		return opt.referenceDir, nil
	}
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run gatebot-bench inside the gatebot module, or pass --reference-dir")
	}
	return filepath.Join(filepath.Dir(gomod), "cmd", "gatebot-bench", "reference", referenceBots[opt.reference]), nil
}

// startReference starts the reference bot against the same fakes gatebot
// would use: channel tokens validated against the fake IdP's OpenID
// metadata and issuer, replies sent to the fake Connector with a token
// from the fake IdP's client-credentials endpoint. It returns the node
// process's pid (for CPU and RSS, measured as for gatebot) and a stop
// function that is always safe to call.
func (b *bench) startReference(ctx context.Context, tmp, listen string, stderr io.Writer) (int, func(), error) {
	nop := func() {}
	dir, err := referenceDir(ctx, b.opt)
	if err != nil {
		return 0, nop, err
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "botbuilder")); err != nil {
		return 0, nop, fmt.Errorf("reference bot in %s is not installed: run `npm ci` there (%w)", dir, err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return 0, nop, fmt.Errorf("--reference %s needs node on PATH: %w", b.opt.reference, err)
	}
	logPath := b.opt.gatebotLog
	if logPath == "" {
		logPath = filepath.Join(tmp, "reference.log")
	}
	f, err := os.Create(logPath)
	if err != nil {
		return 0, nop, err
	}
	cmd := exec.Command(node, "index.js")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(),
		"MicrosoftAppId="+b.teams.appID,
		"MicrosoftAppPassword="+b.appPassword,
		"ToBotFromChannelOpenIdMetadataUrl="+b.idp.MetadataURL(),
		"ToBotFromChannelTokenIssuer="+fakes.ChannelIssuer,
		"ToChannelFromBotOAuthScope="+fakes.BotScope,
		"BENCH_TOKEN_URL="+b.idp.TokenURL(),
		"BENCH_LISTEN="+listen,
		"NODE_ENV=production",
	)
	if err := cmd.Start(); err != nil {
		f.Close()
		return 0, nop, fmt.Errorf("start %s: %w", b.opt.reference, err)
	}
	p := &process{cmd: cmd, log: f, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	stop := func() { p.stop(stopGrace) }
	if err := waitReady(ctx, b.gatebotURL, p.done); err != nil {
		return 0, stop, fmt.Errorf("%s: %w\nlog:\n%s", b.opt.reference, err, tail(logPath, 40))
	}
	fmt.Fprintf(stderr, "gatebot-bench: driving reference bot %s (node pid %d, %s)\n", b.opt.reference, cmd.Process.Pid, dir)
	// Let node finish start-up work so it is not counted as turn CPU.
	time.Sleep(500 * time.Millisecond)
	return cmd.Process.Pid, stop, nil
}
