package main

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/gatebot/gatebot/cmd/gatebot-bench/internal/fakes"
)

// TestFaultFlags: the fault scenarios and flags are documented in -h and
// their bounds refused with a usage error.
func TestFaultFlags(t *testing.T) {
	t.Parallel()
	var help bytes.Buffer
	if _, err := parseFlags([]string{"-h"}, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, want := range []string{"redis-restart", "provider-faults", "-restart-after", "-outage", "-down-for", "-fail-first", "-throttle-first", "-retry-after", "unreachable"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("-h does not document %q", want)
		}
	}
	bad := []struct {
		args []string
		want string
	}{
		{[]string{"--scenario", "conn-down", "--down-mode", "418"}, "--down-mode"},
		{[]string{"--scenario", "conn-down", "--down-for", "40s", "--duration", "30s"}, "--down-for"},
		{[]string{"--scenario", "redis-restart", "--restart-after", "10s", "--outage", "25s", "--duration", "30s"}, "--outage"},
		{[]string{"--scenario", "redis-restart", "--target", "http://127.0.0.1:3978"}, "excludes --target"},
		{[]string{"--scenario", "provider-faults", "--conversations", "3"}, "--conversations"},
		{[]string{"--scenario", "provider-faults", "--throttle-first", "11"}, "--throttle-first"},
		{[]string{"--scenario", "provider-faults", "--hang", "3s", "--fault-provider-timeout", "3s"}, "--hang"},
	}
	for _, b := range bad {
		_, err := parseFlags(b.args, &bytes.Buffer{})
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%v: err = %v, want a usage error naming %s", b.args, err, b.want)
		}
	}
	for _, ok := range [][]string{
		{"--scenario", "conn-down", "--down-mode", "unreachable", "--down-for", "3s", "--conversations", "3", "--gates", "6", "--duration", "15s"},
		{"--scenario", "redis-restart", "--conversations", "3", "--gates", "30", "--restart-after", "2s", "--outage", "2s", "--duration", "20s"},
		{"--scenario", "provider-faults", "--conversations", "4", "--gates", "6", "--duration", "15s"},
	} {
		if _, err := parseFlags(ok, &bytes.Buffer{}); err != nil {
			t.Errorf("the CI command line %v is refused: %v", ok, err)
		}
	}
}

// TestRetryGaps: the wait after each failed call is measured, and a call
// sooner than a 429's Retry-After is counted.
func TestRetryGaps(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	calls := []fakes.Call{
		{Op: fakes.OpUpdate, At: at(0), Status: 200},
		{Op: fakes.OpUpdate, At: at(10), Status: 429},
		{Op: fakes.OpUpdate, At: at(2010), Status: 429}, // waited 2 s
		{Op: fakes.OpUpdate, At: at(2500), Status: 503}, // 490 ms after a 429: early
		{Op: fakes.OpUpdate, At: at(3500), Status: 200},
	}
	gaps, early := retryGaps(calls)
	want := []time.Duration{2000 * time.Millisecond, 490 * time.Millisecond, time.Second}
	if len(gaps) != len(want) || early != 1 {
		t.Fatalf("gaps %v early %d, want %v and 1", gaps, early, want)
	}
	for i := range want {
		if gaps[i] != want[i] {
			t.Errorf("gap %d = %s, want %s", i, gaps[i], want[i])
		}
	}
}

// TestFaultyGateCheck: a gate's provider calls are bounded, at most one
// run starts, and the card's end must match whether a call was accepted.
func TestFaultyGateCheck(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	b := &bench{opt: options{faultOptions: faultOptions{retryAfter: time.Second}}}
	cases := []struct {
		name  string
		stage string
		ts    []fakes.Trigger
		ok    bool
	}{
		{"503 once, could not start", endedOn + "could not start", []fakes.Trigger{{Status: 503, At: t0}}, true},
		{"429 twice then 200, succeeded", "succeeded", []fakes.Trigger{{Status: 429, At: t0}, {Status: 429, At: t0.Add(time.Second)}, {Status: 200, At: t0.Add(2 * time.Second)}}, true},
		{"429 retried too soon", "succeeded", []fakes.Trigger{{Status: 429, At: t0}, {Status: 200, At: t0.Add(100 * time.Millisecond)}}, false},
		{"accepted yet could not start", endedOn + "could not start", []fakes.Trigger{{Status: 200, At: t0}}, false},
		{"two runs", "succeeded", []fakes.Trigger{{Status: 200, At: t0}, {Status: 200, At: t0.Add(time.Second)}}, false},
		{"five calls", endedOn + "could not start", []fakes.Trigger{{Status: 503}, {Status: 503}, {Status: 503}, {Status: 503}, {Status: 503}}, false},
		{"hang: abandoned, could not start", endedOn + "could not start", []fakes.Trigger{{Status: 200, At: t0, Abandoned: true}}, true},
	}
	for _, c := range cases {
		f := &faultReport{Latencies: map[string]summary{}}
		b.faultyGateCheck(f, &gateResult{Pipeline: "p", Approved: true, Stage: c.stage}, c.ts)
		f.finish()
		if f.OK != c.ok {
			t.Errorf("%s: ok = %v, want %v (%s)", c.name, f.OK, c.ok, f.failed())
		}
	}
}
