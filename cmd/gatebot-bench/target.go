package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"gopkg.in/yaml.v3"
)

// Names the generated config uses.
const (
	pipelineFast = "deploy-fast"
	pipelineHang = "deploy-hang"
	hookFast     = "fast"
	hookHang     = "hang"
	channelName  = "bench"
	// channelConversation is the Teams channel API gates open threads in.
	channelConversation = "19:gatebot-bench@thread.tacv2"
	tenantID            = "00000000-0000-0000-0000-0000000be7c0"
)

// configParams is what the generated gatebot config points at.
type configParams struct {
	Listen      string
	AppID       string
	AppPassword string
	MetadataURL string
	TokenURL    string
	ServiceURL  string
	RedisURL    string
	Prefix      string
	HookURLs    map[string]string
	Secret      string
	LogLevel    string
	PollEvery   time.Duration
	// Engine is the engine: section (leases), nil for serve's defaults.
	Engine map[string]any
	// Extra are more webhook pipelines, pipeline name → hook (a provider
	// section of that name pointing at HookURLs[hook]).
	Extra map[string]string
	// Approvals is the approvals: section (retention), nil for serve's
	// defaults.
	Approvals map[string]any
	// Omit are pipelines this replica's config leaves out (--rolling).
	Omit []string
}

// gatebotConfig renders a gatebot config: auth on against the fake IdP,
// the fake Connector trusted as a loopback http serviceUrl, real Redis
// with a unique prefix, and two webhook pipelines that need two
// approvals other than the requester.
func gatebotConfig(p configParams) ([]byte, error) {
	pipeline := func(provider string) map[string]any {
		return map[string]any{
			"provider": provider, "description": "gatebot-bench " + provider, "channel": channelName,
			"inputs":     map[string]any{"version": map[string]any{"type": "string", "required": true, "pattern": `^\d+\.\d+\.\d+$`}},
			"approval":   map[string]any{"required": 2, "allow_self_approval": false, "timeout": "1h"},
			"poll_every": p.PollEvery.String(),
		}
	}
	cfg := map[string]any{
		"listen": p.Listen,
		"log":    map[string]any{"level": p.LogLevel, "format": "json"},
		"bot": map[string]any{
			"app_id": p.AppID, "app_password": p.AppPassword,
			"openid_metadata_url": p.MetadataURL, "issuer": "https://api.botframework.com", "token_url": p.TokenURL,
			"trusted_service_urls": []string{p.ServiceURL}, "allowed_tenants": []string{tenantID},
		},
		"redis":    map[string]any{"url": p.RedisURL, "prefix": p.Prefix},
		"channels": map[string]any{channelName: map[string]any{"service_url": p.ServiceURL, "conversation_id": channelConversation, "tenant_id": tenantID}},
		"providers": map[string]any{
			hookFast: map[string]any{"type": "webhook", "url": p.HookURLs[hookFast], "secret": p.Secret},
			hookHang: map[string]any{"type": "webhook", "url": p.HookURLs[hookHang], "secret": p.Secret},
		},
		"pipelines": map[string]any{pipelineFast: pipeline(hookFast), pipelineHang: pipeline(hookHang)},
		// The bench measures gatebot, not the per-token API limiter.
		"api": map[string]any{"rate_limit": 1000, "rate_burst": 2000},
	}
	if p.Engine != nil {
		cfg["engine"] = p.Engine
	}
	for name, hook := range p.Extra {
		cfg["providers"].(map[string]any)[hook] = map[string]any{"type": "webhook", "url": p.HookURLs[hook], "secret": p.Secret}
		cfg["pipelines"].(map[string]any)[name] = pipeline(hook)
	}
	if p.Approvals != nil {
		cfg["approvals"] = p.Approvals
	}
	for _, name := range p.Omit {
		delete(cfg["pipelines"].(map[string]any), name)
	}
	return yaml.Marshal(cfg)
}

// freeLoopbackAddr returns a loopback address with a port free right now.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// buildGatebot compiles ./cmd/gatebot of this module into dir.
func buildGatebot(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run gatebot-bench inside the gatebot module, or pass --gatebot PATH")
	}
	bin := filepath.Join(dir, "gatebot")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/gatebot")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/gatebot: %w\n%s", err, out)
	}
	return bin, nil
}

// process is a gatebot the bench started.
type process struct {
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error
}

// startGatebot runs `bin serve --config cfg [extra…]`, its output in
// logPath.
func startGatebot(bin, cfg, logPath string, extra ...string) (*process, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append([]string{"serve", "--config", cfg}, extra...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), "GATEBOT_CONFIG="+cfg)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start gatebot: %w", err)
	}
	p := &process{cmd: cmd, log: f, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

// stop sends SIGTERM, waits up to grace, then kills. Only this process is
// signalled, by its pid.
func (p *process) stop(grace time.Duration) {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	p.log.Close()
}

// waitReady polls /readyz (then /healthz) until 200, the process exits or
// ctx ends.
func waitReady(ctx context.Context, base string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, path := range []string{"/readyz", "/healthz"} {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
				if resp.StatusCode != http.StatusNotFound {
					break // /readyz exists and says not ready
				}
			}
		}
		select {
		case <-exited:
			return errors.New("gatebot exited before it was ready")
		case <-ctx.Done():
			return fmt.Errorf("gatebot at %s not ready: %w", base, ctx.Err())
		case <-tick.C:
		}
	}
}

// createToken runs `gatebot token create` for the API scenario and
// returns the token (printed alone on stdout).
func createToken(ctx context.Context, bin, cfg, name string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, "token", "create", "--config", cfg, "--name", name,
		"--scopes", "gates:write,gates:read", "--pipelines", "*", "--expires", "1h", "--creator", "gatebot-bench")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("gatebot token create: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	tok := strings.TrimSpace(string(out))
	if !strings.HasPrefix(tok, "gbt_") {
		return "", errors.New("gatebot token create printed no gbt_ token")
	}
	return tok, nil
}

// cleanupRedis deletes every key under prefix.
func cleanupRedis(ctx context.Context, redisURL, prefix string) (int, error) {
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return 0, err
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	n := 0
	iter := rdb.Scan(ctx, 0, prefix+"*", 500).Iterator()
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := rdb.Del(ctx, batch...).Err()
		n += len(batch)
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 500 {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return n, err
	}
	return n, flush()
}

// procSample is one reading of a process's CPU time and memory.
type procSample struct {
	CPU time.Duration // utime + stime
	RSS int64         // bytes
}

// userHZ is the unit of /proc/<pid>/stat times: fixed at 100 by the Linux
// user ABI (USER_HZ), whatever the kernel's HZ.
const userHZ = 100

// readProc reads utime+stime from /proc/<pid>/stat and VmRSS from
// /proc/<pid>/status.
func readProc(pid int) (procSample, error) {
	var s procSample
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name may contain spaces and parentheses: fields start
	// after the last ')'. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, errors.New("unparsable /proc stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return s, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s, errors.New("unparsable utime/stime")
	}
	s.CPU = time.Duration(ut+st) * time.Second / userHZ
	status, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	defer status.Close()
	sc := bufio.NewScanner(status)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			s.RSS = kb << 10
		}
	}
	return s, sc.Err()
}

// procMonitor samples a process until stopped, keeping the peak RSS.
type procMonitor struct {
	pid   int
	start procSample
	stop  chan struct{}
	done  chan struct{}

	mu      sync.Mutex
	last    procSample
	peakRSS int64
	err     error
}

func monitorProc(pid int, every time.Duration) *procMonitor {
	m := &procMonitor{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	m.start, m.err = readProc(pid)
	m.last, m.peakRSS = m.start, m.start.RSS
	go func() {
		defer close(m.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
				m.sample()
			}
		}
	}()
	return m
}

func (m *procMonitor) sample() {
	s, err := readProc(m.pid)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.err = err
		return
	}
	m.last = s
	m.peakRSS = max(m.peakRSS, s.RSS)
}

// finish takes a last sample and returns CPU used since the start, the
// last and the peak RSS.
func (m *procMonitor) finish() (cpu time.Duration, rss, peak int64, err error) {
	m.sample()
	close(m.stop)
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last.CPU - m.start.CPU, m.last.RSS, m.peakRSS, m.err
}
