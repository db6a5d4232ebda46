package main

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func TestStartPprofLoopbackOnly(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:6060", "example.com:6060", "nonsense"} {
		if _, stop, err := startPprof(addr, log); err == nil {
			stop()
			t.Errorf("startPprof(%q) accepted a non-loopback address", addr)
		}
	}
}

func TestStartPprofServesProfiles(t *testing.T) {
	t.Parallel()
	addr, stop, err := startPprof("127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get("http://" + addr + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "allocs") {
		t.Fatalf("pprof index: %d %.200s", resp.StatusCode, body)
	}
}
