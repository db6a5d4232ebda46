// Package pipelinestest holds test helpers for gatebot's pipeline provider
// clients: a scripted httptest server that compares every request it
// receives with a golden file, and log capture for secret-leak checks.
//
// It registers the -update test flag (rewrite golden files instead of
// comparing); test packages that import it must not define their own.
//
// Usage:
//
//	srv := pipelinestest.NewServer(t,
//		pipelinestest.Exchange{Golden: "trigger", Status: 201, Body: `{"id":"r1"}`},
//	)
//	c, _ := humanitec.New(humanitec.Config{BaseURL: srv.URL, ...})
//
// The golden file testdata/trigger.golden then holds the exact request:
// method, path and query, every header except transport ones, and the body
// (JSON indented, key order kept).
//
// It must not import any gatebot package other than pipelines.
package pipelinestest

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gatebot/gatebot/pipelines"
)

// update is the conventional golden-file flag; being a test helper package,
// registering it here is the point.
var update = flag.Bool("update", false, "rewrite testdata/*.golden files with the requests received")

// Updating reports whether the -update flag was given.
func Updating() bool { return *update }

// BaseURL stands, in an Exchange's Header values and Body, for the server's
// own "http://host:port", which is not known when the script is written
// (for Location headers and self links the client must follow).
const BaseURL = "{BASE}"

// Exchange is one expected request and the canned answer.
type Exchange struct {
	// Golden names testdata/<Golden>.golden, the exact expected request.
	// Several exchanges may share one file.
	Golden string
	// Status is the response status (0 means 200).
	Status int
	// Header is added to the response; BaseURL in a value is replaced.
	Header http.Header
	// Body is the response body; BaseURL in it is replaced.
	Body string
	// Hang makes the handler wait until the client gives up, for timeout
	// tests.
	Hang bool
}

// Server is an httptest.Server that plays Exchanges in order and fails the
// test on any unexpected, extra or missing request.
type Server struct {
	*httptest.Server
	t    testing.TB
	stop chan struct{}
	mu   sync.Mutex
	next int
	ex   []Exchange
	reqs []string
}

// NewServer starts a Server for the exchanges; it is closed, and checked
// for exchanges that never happened, when the test ends.
func NewServer(t testing.TB, exchanges ...Exchange) *Server {
	t.Helper()
	s := &Server{t: t, ex: exchanges, stop: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		close(s.stop)
		s.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.next < len(s.ex) {
			t.Errorf("pipelinestest: %d of %d expected requests never arrived (next: %s)", len(s.ex)-s.next, len(s.ex), s.ex[s.next].Golden)
		}
	})
	return s
}

// Requests returns the rendered requests received so far.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	got := RenderRequest(r)
	s.mu.Lock()
	s.reqs = append(s.reqs, got)
	if s.next >= len(s.ex) {
		s.mu.Unlock()
		s.t.Errorf("pipelinestest: unexpected request #%d:\n%s", len(s.reqs), got)
		http.Error(w, "unexpected request", http.StatusTeapot)
		return
	}
	ex := s.ex[s.next]
	s.next++
	s.mu.Unlock()

	CheckGolden(s.t, ex.Golden, []byte(got))
	if ex.Hang {
		// RenderRequest consumed the body, so net/http cancels r's context
		// when the client hangs up.
		select {
		case <-r.Context().Done():
		case <-s.stop:
		}
		return
	}
	base := "http://" + r.Host
	for k, vs := range ex.Header {
		for _, v := range vs {
			w.Header().Add(k, strings.ReplaceAll(v, BaseURL, base))
		}
	}
	st := ex.Status
	if st == 0 {
		st = http.StatusOK
	}
	w.WriteHeader(st)
	_, _ = io.WriteString(w, strings.ReplaceAll(ex.Body, BaseURL, base))
}

// Headers added by the transport, not by the client under test.
var transportHeaders = []string{"Accept-Encoding", "Connection", "Content-Length"}

// RenderRequest renders r canonically: "METHOD /path?query", the headers
// sorted (one line per value, transport headers left out), a blank line and
// the body, JSON bodies indented with their key order kept. It consumes
// r.Body.
func RenderRequest(r *http.Request) string {
	var b strings.Builder
	b.WriteString(r.Method + " " + r.URL.RequestURI() + "\n")
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		if !slices.Contains(transportHeaders, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range r.Header[k] {
			b.WriteString(k + ": " + v + "\n")
		}
	}
	body, _ := io.ReadAll(r.Body)
	if len(body) > 0 {
		b.WriteString("\n")
		var ind bytes.Buffer
		if json.Valid(body) && json.Indent(&ind, body, "", "  ") == nil {
			b.Write(ind.Bytes())
		} else {
			b.Write(body)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// CheckGolden compares got with testdata/<name>.golden, or writes it there
// when -update is set.
func CheckGolden(t testing.TB, name string, got []byte) {
	t.Helper()
	if name == "" {
		t.Errorf("pipelinestest: exchange without a golden file name; got request:\n%s", got)
		return
	}
	path := filepath.Join("testdata", name+".golden")
	if *update {
		// Errorf, not Fatal: this runs on server goroutines too.
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Errorf("pipelinestest: %v", err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Errorf("pipelinestest: %v", err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("pipelinestest: %v (run go test -update to create it); got:\n%s", err, got)
		return
	}
	if !bytes.Equal(want, got) {
		t.Errorf("pipelinestest: request differs from %s\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}

// Logger returns a debug-level JSON logger writing into the returned
// buffer, for asserting that no secret reaches a log line.
func Logger() (*slog.Logger, *SyncBuffer) {
	var buf SyncBuffer
	return slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// AssertNoSecret fails the test if secret occurs in any of texts.
func AssertNoSecret(t testing.TB, secret string, texts ...string) {
	t.Helper()
	if secret == "" {
		t.Fatal("pipelinestest: AssertNoSecret needs a non-empty secret")
	}
	for i, s := range texts {
		if strings.Contains(s, secret) {
			t.Errorf("secret leaked in text #%d: %s", i, s)
		}
	}
}

// Redeliver plays gatebot's trigger worker against p for a trigger whose
// outcome stays unknown: it calls Trigger, and after each ambiguous failure
// (pipelines.IsTemporary: a 5xx, a timeout, a transport error) it stands
// for a redelivery, calling Trigger again only if p is pipelines.Idempotent
// and RepeatableTrigger(req) is true, at most deliveries times in all. It
// returns the last run and error and how many times Trigger was called.
// Tests pair it with a fake provider that records every run it starts.
func Redeliver(ctx context.Context, p pipelines.Provider, req pipelines.Request, deliveries int) (pipelines.Run, int, error) {
	var run pipelines.Run
	var err error
	calls := 0
	for calls < deliveries {
		if calls > 0 {
			idem, ok := p.(pipelines.Idempotent)
			if !ok || !idem.RepeatableTrigger(ctx, req) {
				break
			}
		}
		calls++
		run, err = p.Trigger(ctx, req)
		if err == nil || !pipelines.IsTemporary(err) {
			break
		}
	}
	return run, calls, err
}
