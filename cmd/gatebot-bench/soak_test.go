package main

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestJudgeGrowth: a measure fails only if its last-window median grows
// past both the share and the floor, or a window has no sample.
func TestJudgeGrowth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		first, last []float64
		floor       float64
		wantOK      bool
		wantGrowth  float64
		wantAllowed float64
	}{
		{"flat", []float64{30, 31, 30}, []float64{30, 30, 31}, 4, true, 0, 4},
		{"within the share", []float64{100, 100, 100}, []float64{109, 110, 108}, 4, true, 9, 10},
		{"past the share", []float64{100, 100, 100}, []float64{111, 112, 111}, 4, false, 11, 10},
		{"small value, within the floor", []float64{2, 2}, []float64{5, 5}, 4, true, 3, 4},
		{"small value, past the floor", []float64{2, 2}, []float64{7, 7}, 4, false, 5, 4},
		{"median ignores one spike", []float64{30, 30, 30}, []float64{30, 90, 30}, 4, true, 0, 4},
		{"shrinking is fine", []float64{50, 50}, []float64{20, 20}, 4, true, -30, 5},
		{"even count takes the middle two", []float64{10, 20}, []float64{10, 20, 30, 40}, 4, false, 10, 4}, // 15 → 25
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := judgeGrowth("m", tt.first, tt.last, 0.10, tt.floor)
			if v.OK != tt.wantOK || v.Growth != tt.wantGrowth || v.Allowed != tt.wantAllowed || !v.Judged {
				t.Fatalf("verdict %+v, want ok %v growth %v allowed %v", v, tt.wantOK, tt.wantGrowth, tt.wantAllowed)
			}
		})
	}
	for _, w := range [][2][]float64{{nil, {1}}, {{1}, nil}} {
		if v := judgeGrowth("m", w[0], w[1], 0.1, 4); v.OK || !v.Judged || v.Note == "" {
			t.Errorf("an empty window: %+v, want a judged failure with a note", v)
		}
	}
}

// sample builds a soak sample with the given readings.
func sample(rss, gor, keysKiB float64, keys map[string]int, members map[string]int64) soakSample {
	return soakSample{RSSMiB: rss, HeapMiB: 8, Goroutines: gor, RedisMiB: 50, Keys: keys, Members: members,
		KeyKiB: map[string]float64{"g": keysKiB, "posting": float64(keys["posting"]) / 10}}
}

// TestSoakVerdicts: which measures are judged, which only shown, and what
// fails.
func TestSoakVerdicts(t *testing.T) {
	t.Parallel()
	steady := func(seen, posting int) soakSample {
		return sample(30, 40, 10, map[string]int{"g": 100, "seen": seen, "posting": posting}, map[string]int64{"ix:all": 100, "audit": 500})
	}
	tests := []struct {
		name     string
		first    []soakSample
		last     []soakSample
		j        soakJudging
		wantFail []string // measures that must fail
		wantShow []string // measures shown, not judged
	}{
		{
			name:  "steady, markers grow by design",
			first: []soakSample{steady(1000, 100)}, last: []soakSample{steady(5000, 100)},
			j:        soakJudging{share: 0.1, messages: 6000},
			wantShow: []string{"seen keys"},
		},
		{
			name:  "posting leases outlive a short warm-up",
			first: []soakSample{steady(1000, 50)}, last: []soakSample{steady(2000, 400)},
			j:        soakJudging{share: 0.1, messages: 3000, postingByDesign: true},
			wantShow: []string{"seen keys", "posting keys"},
		},
		{
			name:  "posting keys judged after a long warm-up",
			first: []soakSample{steady(1000, 50)}, last: []soakSample{steady(2000, 400)},
			j:        soakJudging{share: 0.1, messages: 3000},
			wantFail: []string{"keys under the prefix but seen"},
		},
		{
			name:  "more markers than messages",
			first: []soakSample{steady(10, 0)}, last: []soakSample{steady(20, 0)},
			j:        soakJudging{share: 0.1, messages: 15},
			wantFail: []string{"dedupe markers ≤ messages sent"},
		},
		{
			name:  "RSS and goroutines leak",
			first: []soakSample{sample(30, 40, 10, nil, nil)}, last: []soakSample{sample(40, 100, 10, nil, nil)},
			j:        soakJudging{share: 0.1},
			wantFail: []string{"gatebot RSS MiB", "gatebot goroutines less connection goroutines"},
		},
		{
			name:  "goroutines that follow the bench's connections",
			first: []soakSample{{RSSMiB: 30, Goroutines: 190, Conns: 100, OutConns: 35, Sockets: 145, FDs: 155}},
			last:  []soakSample{{RSSMiB: 30, Goroutines: 315, Conns: 165, OutConns: 75, Sockets: 250, FDs: 261}},
			j:     soakJudging{share: 0.1},
		},
		{
			name:     "open files leak",
			first:    []soakSample{{RSSMiB: 30, Goroutines: 40, Conns: 20, Sockets: 25, FDs: 30}},
			last:     []soakSample{{RSSMiB: 30, Goroutines: 40, Conns: 20, Sockets: 25, FDs: 130}},
			j:        soakJudging{share: 0.1},
			wantFail: []string{"gatebot open files less TCP connections"},
		},
		{
			name:  "an index not pruned",
			first: []soakSample{steady(0, 0)}, last: []soakSample{sample(30, 40, 10, map[string]int{"g": 100}, map[string]int64{"ix:all": 900, "audit": 500})},
			j:        soakJudging{share: 0.1},
			wantFail: []string{"length of ix:all"},
		},
		{
			name:     "gate records grow in Redis",
			first:    []soakSample{sample(30, 40, 800, nil, nil)},
			last:     []soakSample{sample(30, 40, 2000, nil, nil)},
			j:        soakJudging{share: 0.1},
			wantFail: []string{"Redis memory of the run's keys"},
		},
		{
			name:     "posting leases' memory is not judged while they grow by design",
			first:    []soakSample{sample(30, 40, 800, map[string]int{"posting": 100}, nil)},
			last:     []soakSample{sample(30, 40, 800, map[string]int{"posting": 40000}, nil)}, // +4000 KiB of leases
			j:        soakJudging{share: 0.1, postingByDesign: true},
			wantShow: []string{"seen keys", "posting keys"},
		},
		{
			name:  "a shared server's memory is shown, not judged",
			first: []soakSample{sample(30, 40, 800, nil, nil)}, last: []soakSample{sample(30, 40, 800, nil, nil)},
			j: soakJudging{share: 0.1, shared: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			vs := soakVerdicts(tt.first, tt.last, tt.j)
			var failed, shownOnly []string
			for _, v := range vs {
				switch {
				case !v.Judged:
					shownOnly = append(shownOnly, v.Measure)
				case !v.OK:
					failed = append(failed, v.Measure)
				}
			}
			if !sameSet(failed, tt.wantFail) {
				t.Errorf("failed %q, want %q", failed, tt.wantFail)
			}
			want := append([]string{"Redis used_memory", "gatebot goroutines", "gatebot TCP connections"}, tt.wantShow...)
			if tt.wantShow == nil {
				want = append(want, "seen keys")
			}
			if !sameSet(shownOnly, want) {
				t.Errorf("shown only %q, want %q", shownOnly, want)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		found := false
		for _, y := range b {
			found = found || strings.HasPrefix(x, y)
		}
		if !found {
			return false
		}
	}
	return true
}

// TestSoakFailures: errors, unfinished gates, lost runs and log errors
// fail the soak even when nothing grew.
func TestSoakFailures(t *testing.T) {
	t.Parallel()
	ok := growthVerdict{Measure: "m", Judged: true, OK: true}
	tests := []struct {
		name string
		sr   soakReport
		rep  report
		want string
	}{
		{"clean", soakReport{Verdicts: []growthVerdict{ok}, Samples: []soakSample{{}}}, report{Gates: 3, Succeeded: 3, ExactOnce: true}, ""},
		{"growth", soakReport{Verdicts: []growthVerdict{{Measure: "RSS", Judged: true, First: 30, Last: 50, Growth: 20, Allowed: 4}}, Samples: []soakSample{{}}}, report{ExactOnce: true}, "RSS grew 20.0"},
		{"shown is not a failure", soakReport{Verdicts: []growthVerdict{{Measure: "seen", OK: true}}, Samples: []soakSample{{}}}, report{ExactOnce: true}, ""},
		{"turn errors", soakReport{Echo: echoReport{Failed: 2}, Samples: []soakSample{{}}}, report{ExactOnce: true}, "2 help turns failed"},
		{"unfinished gate", soakReport{Samples: []soakSample{{}}}, report{Gates: 3, Succeeded: 2, ExactOnce: true}, "1 of 3 gates"},
		{"duplicate run", soakReport{Samples: []soakSample{{}}}, report{Runs: runs{Duplicate: 1}}, "1 duplicate"},
		{"log errors", soakReport{LogErrors: map[string]int{"boom": 2}, Samples: []soakSample{{}}}, report{ExactOnce: true}, "logged 2 errors"},
		{"no samples", soakReport{}, report{ExactOnce: true}, "no samples"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sr := tt.sr
			sr.fail(&tt.rep)
			got := strings.Join(sr.Failures, "; ")
			if sr.OK != (tt.want == "") || !strings.Contains(got, tt.want) {
				t.Fatalf("ok %v, failures %q; want %q", sr.OK, got, tt.want)
			}
		})
	}
}

func TestKeyClass(t *testing.T) {
	t.Parallel()
	for k, want := range map[string]string{
		"g:g_abc": "g", "seen:act:19:x|1": "seen", "posting:g_abc": "posting", "idem:k": "idem",
		"cb:ev:e1": "cb:ev", "cb:due": "", "tok:h:ab12": "tok", "ix:all": "", "ix:s:pending": "", "audit": "", "conv:c": "conv",
	} {
		if got := keyClass(k); got != want {
			t.Errorf("keyClass(%q) = %q, want %q", k, got, want)
		}
	}
}

func TestStructName(t *testing.T) {
	t.Parallel()
	for k, want := range map[string]string{"ob:cs:a7": "ob:cs:*", "dict:0f3a": "dict:*", "dict": "dict", "ob:card": "ob:card", "ix:ps:pending:deploy": "ix:ps:pending:deploy"} {
		if got := structName(k); got != want {
			t.Errorf("structName(%q) = %q, want %q", k, got, want)
		}
	}
}

func TestParseRedisInfo(t *testing.T) {
	t.Parallel()
	info := "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\n\r\n# Keyspace\r\ndb0:keys=12,expires=3,avg_ttl=100\r\ndb2:keys=5,expires=0,avg_ttl=0\r\n"
	if used, keys := parseRedisInfo(info); used != 1<<20 || keys != 17 {
		t.Fatalf("used %d keys %d", used, keys)
	}
}

func TestParseGauges(t *testing.T) {
	t.Parallel()
	text := "# HELP go_goroutines x\n# TYPE go_goroutines gauge\ngo_goroutines 42\ngo_memstats_heap_inuse_bytes 8.388608e+06\ngo_gc_duration_seconds{quantile=\"0\"} 1e-05\n"
	m, err := parseGauges(bufio.NewScanner(strings.NewReader(text)), "go_goroutines", "go_memstats_heap_inuse_bytes")
	if err != nil || m["go_goroutines"] != 42 || m["go_memstats_heap_inuse_bytes"] != 8<<20 {
		t.Fatalf("%v %v", m, err)
	}
	if _, err := parseGauges(bufio.NewScanner(strings.NewReader("go_goroutines 1\n")), "go_goroutines", "go_memstats_heap_inuse_bytes"); err == nil {
		t.Fatal("a missing gauge was not reported")
	}
}

// TestSoakWindows: the automatic windows of the 10-minute soak start after
// the card-post lease; short runs scale down and keep the two apart.
func TestSoakWindows(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    time.Duration
		want soakWindow
	}{
		{10 * time.Minute, soakWindow{warmup: 4*time.Minute + 30*time.Second, window: time.Minute, every: 10 * time.Second, retention: time.Minute}},
		{40 * time.Second, soakWindow{warmup: 20 * time.Second, window: 10 * time.Second, every: 1600 * time.Millisecond, retention: 10 * time.Second}},
	}
	for _, tt := range tests {
		o := options{scenario: "soak", duration: tt.d}
		if got := o.soakWindows(); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.d, got, tt.want)
		}
	}
}

func TestSoakFlags(t *testing.T) {
	t.Parallel()
	o, err := parseFlags([]string{"--scenario", "soak"}, &bytes.Buffer{})
	if err != nil || o.duration != soakDefaultDuration || o.conversations != soakDefaultConversations || o.rate != 500 {
		t.Fatalf("soak defaults: %v, duration %s, conversations %d, rate %g", err, o.duration, o.conversations, o.rate)
	}
	if o, _ := parseFlags([]string{"--scenario", "soak", "--conversations", "100"}, &bytes.Buffer{}); o.rate != 40 {
		t.Fatalf("--conversations 100: rate %g, want 40", o.rate)
	}
	if o, _ := parseFlags([]string{"--scenario", "echo"}, &bytes.Buffer{}); o.rate != 0 || o.conversations != 4 {
		t.Fatalf("the soak changed echo's defaults: rate %g, conversations %d", o.rate, o.conversations)
	}
	if a := o.approvalsSection(); a["retention"] != "1m0s" || a["audit_max_age"] != "1m0s" {
		t.Fatalf("approvals section %v", a)
	}
	if o, _ := parseFlags([]string{"--scenario", "flow"}, &bytes.Buffer{}); o.duration != 30*time.Second || o.approvalsSection() != nil {
		t.Fatalf("the soak changed flow's defaults: %s %v", o.duration, o.approvalsSection())
	}
	for _, args := range [][]string{
		{"--scenario", "soak", "--duration", "40s", "--warmup", "35s"},
		{"--scenario", "soak", "--gate-rate", "-1"},
		{"--scenario", "soak", "--replicas", "2"},
	} {
		if _, err := parseFlags(args, &bytes.Buffer{}); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	if _, err := parseFlags([]string{"--scenario", "soak", "--duration", "40s", "--conversations", "100", "--assert-exact"}, &bytes.Buffer{}); err != nil {
		t.Fatalf("the short form is refused: %v", err)
	}
}

func TestCountConns(t *testing.T) {
	t.Parallel()
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 11 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 12 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 13 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:1F90 0100007F:C351 06 00000000:00000000 03:00000000 00000000     0        0 0 3 0000000000000000
   4: 0100007F:1F90 0100007F:C352 01 00000000:00000000 00:00000000 00000000     0        0 14 1 0000000000000000 20 4 30 10 -1
   5: 0100007F:C360 0100007F:2328 01 00000000:00000000 00:00000000 00000000     0        0 15 1 0000000000000000 20 4 30 10 -1
   6: 0100007F:C361 0100007F:18EB 01 00000000:00000000 00:00000000 00000000     0        0 16 1 0000000000000000 20 4 30 10 -1
`
	// gatebot (sockets 11, 12, 14, 15, 16) listens on 8080 (1F90); the
	// fakes are on 9000 (2328), Redis on 6379 (18EB). Socket 13 is the
	// bench's end, 0 a TIME_WAIT, 11 the listener.
	mine := map[string]bool{"11": true, "12": true, "14": true, "15": true, "16": true}
	if got, want := countConns(table, mine, 8080, 9000), (connCount{in: 2, out: 1, all: 4}); got != want {
		t.Fatalf("countConns = %+v, want %+v", got, want)
	}
}
