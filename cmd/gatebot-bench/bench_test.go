package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/gatebot/gatebot/cmd/gatebot-bench/internal/fakes"
)

func TestSummarizeNearestRank(t *testing.T) {
	t.Parallel()
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := summarize(ds)
	want := summary{N: 100, P50: 50, P95: 95, P99: 99, Max: 100}
	if got != want {
		t.Fatalf("summarize = %+v, want %+v", got, want)
	}
	if got := summarize(nil); got != (summary{}) {
		t.Fatalf("empty = %+v", got)
	}
	if got := summarize([]time.Duration{3 * time.Millisecond}); got.P50 != 3 || got.P99 != 3 {
		t.Fatalf("one value = %+v", got)
	}
}

func TestReadProcSelf(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	// Burn a little CPU so utime+stime is visibly positive.
	deadline := time.Now().Add(30 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	s, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.CPU <= 0 || s.RSS < 1<<20 {
		t.Fatalf("implausible sample %+v", s)
	}
}

func TestFlags(t *testing.T) {
	t.Parallel()
	var help bytes.Buffer
	if _, err := parseFlags([]string{"-h"}, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, want := range []string{"flow", "hang", "conn-down", "echo", "api", "-rolling", "-assert-exact", "-duration", "-gates", "-target", "-json", "-hang", "-down-mode", "-rate", "-reference", "-profile-dir", "soak", "-gate-rate", "-api-rate", "-sample-every", "-warmup", "-window", "-retention", "-max-growth"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("-h does not document %q", want)
		}
	}
	bad := []struct {
		args []string
		want string
	}{
		{[]string{"--scenario", "nope"}, "--scenario"},
		{[]string{"--scenario", "flow", "--rolling"}, "--rolling needs"},
		{[]string{"--scenario", "echo", "--replicas", "1", "--rolling"}, "--rolling needs"},
		{[]string{"--scenario", "flow", "--replicas", "2", "--rolling", "--kill-one-after", "1s"}, "--rolling excludes"},
		{[]string{"--scenario", "hang", "--conversations", "1"}, "--conversations"},
		{[]string{"--duration", "2h"}, "--duration"},
		{[]string{"--redis", "redis://10.0.0.1:6379/0"}, "--redis"},
		{[]string{"--target", "http://gatebot.example.com"}, "--target"},
		{[]string{"--fakes-listen", "0.0.0.0:0"}, "--fakes-listen"},
		{[]string{"--scenario", "api", "--target", "http://127.0.0.1:3978"}, "--token"},
		{[]string{"extra"}, "unexpected argument"},
		{[]string{"--scenario", "echo", "--reference", "botkit"}, "--reference"},
		{[]string{"--scenario", "flow", "--reference", "botbuilder-js"}, "--scenario echo only"},
		{[]string{"--scenario", "echo", "--reference", "botbuilder-js", "--gatebot", "/tmp/gatebot"}, "excludes"},
		{[]string{"--target", "http://127.0.0.1:3978", "--profile-dir", "/tmp/p"}, "--profile-dir"},
	}
	for _, b := range bad {
		_, err := parseFlags(b.args, &bytes.Buffer{})
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%v: err = %v, want a usage error naming %s", b.args, err, b.want)
		}
	}
	if _, err := parseFlags([]string{"--scenario", "flow", "--conversations", "4", "--gates", "8", "--duration", "20s", "--assert-exact"}, &bytes.Buffer{}); err != nil {
		t.Fatalf("the CI command line is refused: %v", err)
	}
	if _, err := parseFlags([]string{"--scenario", "echo", "--reference", "botbuilder-js", "--conversations", "200"}, &bytes.Buffer{}); err != nil {
		t.Fatalf("the reference command line is refused: %v", err)
	}
}

// TestFailureReason: failures are counted by cause, not by connection.
func TestFailureReason(t *testing.T) {
	t.Parallel()
	a := reason(errors.New(`Post "http://127.0.0.1:41234/api/messages": read tcp 127.0.0.1:50694->127.0.0.1:41234: read: connection reset by peer`))
	b := reason(errors.New(`Post "http://127.0.0.1:41234/api/messages": read tcp 127.0.0.1:50700->127.0.0.1:41234: read: connection reset by peer`))
	if a != b || strings.Contains(a, "50694") || !strings.HasPrefix(a, `Post "http://ADDR/api/messages"`) {
		t.Fatalf("reasons %q and %q", a, b)
	}
	if long := reason(errors.New(strings.Repeat("x", 500))); len(long) != 100 {
		t.Fatalf("reason not cut: %d bytes", len(long))
	}
}

// TestGatebotConfig: auth on, pointed at the fakes, the connector trusted
// as a loopback http serviceUrl, two approvals other than the requester.
func TestGatebotConfig(t *testing.T) {
	t.Parallel()
	out, err := gatebotConfig(configParams{
		Listen: "127.0.0.1:1", AppID: "app", AppPassword: "pw", MetadataURL: "http://127.0.0.1:2/idp/meta",
		TokenURL: "http://127.0.0.1:2/idp/token", ServiceURL: "http://127.0.0.1:2/teams/", RedisURL: "redis://127.0.0.1:6379/0",
		Prefix: "gatebot-bench:x:", HookURLs: map[string]string{hookFast: "http://127.0.0.1:2/ci/hooks/fast", hookHang: "http://127.0.0.1:2/ci/hooks/hang"},
		Secret: "whsec_x", LogLevel: "warn", PollEvery: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Bot struct {
			InsecureSkipAuth   bool     `yaml:"insecure_skip_auth"`
			TrustedServiceURLs []string `yaml:"trusted_service_urls"`
			OpenIDMetadataURL  string   `yaml:"openid_metadata_url"`
		} `yaml:"bot"`
		Redis     struct{ Prefix string } `yaml:"redis"`
		Pipelines map[string]struct {
			Approval struct {
				Required          int  `yaml:"required"`
				AllowSelfApproval bool `yaml:"allow_self_approval"`
			} `yaml:"approval"`
		} `yaml:"pipelines"`
	}
	if err := yaml.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Bot.InsecureSkipAuth || cfg.Bot.OpenIDMetadataURL != "http://127.0.0.1:2/idp/meta" ||
		len(cfg.Bot.TrustedServiceURLs) != 1 || cfg.Bot.TrustedServiceURLs[0] != "http://127.0.0.1:2/teams/" || cfg.Redis.Prefix != "gatebot-bench:x:" {
		t.Fatalf("config = %+v\n%s", cfg, out)
	}
	for _, name := range []string{pipelineFast, pipelineHang} {
		if a := cfg.Pipelines[name].Approval; a.Required != 2 || a.AllowSelfApproval {
			t.Errorf("%s approval = %+v", name, a)
		}
	}
}

// TestCountRuns: the exactly-once account behind --assert-exact.
func TestCountRuns(t *testing.T) {
	t.Parallel()
	approved := map[string]bool{"g_once": true, "g_twice": true, "g_never": true}
	triggers := map[string][]fakes.Trigger{
		"g_once":  {{GateID: "g_once"}},
		"g_twice": {{GateID: "g_twice"}, {GateID: "g_twice"}},
		"g_stray": {{GateID: "g_stray"}},
	}
	got := countRuns(approved, triggers)
	want := runs{Approved: 3, Exactly1: 1, Missing: 1, Duplicate: 1, Unexpected: 1, Calls: 4}
	if got != want {
		t.Fatalf("countRuns = %+v, want %+v", got, want)
	}
	if got := countRuns(map[string]bool{"g": true}, map[string][]fakes.Trigger{"g": {{}}}); got.Missing+got.Duplicate+got.Unexpected != 0 {
		t.Fatalf("a clean run = %+v", got)
	}
}
