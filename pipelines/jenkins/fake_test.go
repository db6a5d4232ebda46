package jenkins_test

import (
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the requests the tests make")

// exchange is one request the fake API expects (compared with
// testdata/<golden>.golden, byte for byte) and the answer it gives; "{BASE}"
// in header values and the body becomes the fake's own http://host:port.
type exchange struct {
	golden string
	status int
	header map[string]string
	body   string
	block  bool // hold the answer until the client gives up
}

// fakeAPI serves script in order and fails the test on any request beyond
// it or any exchange left unused.
func fakeAPI(t *testing.T, script ...exchange) string {
	t.Helper()
	var mu sync.Mutex
	next := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		if next >= len(script) {
			mu.Unlock()
			t.Errorf("unexpected request %s %s", r.Method, r.URL.RequestURI())
			http.Error(w, "unexpected", http.StatusTeapot)
			return
		}
		ex := script[next]
		next++
		mu.Unlock()
		checkGolden(t, ex.golden, dumpRequest(r, body))
		if ex.block {
			<-r.Context().Done()
			return
		}
		base := "http://" + r.Host
		for k, v := range ex.header {
			w.Header().Set(k, strings.ReplaceAll(v, "{BASE}", base))
		}
		w.WriteHeader(ex.status)
		io.WriteString(w, strings.ReplaceAll(ex.body, "{BASE}", base))
	}))
	t.Cleanup(func() {
		srv.Close()
		mu.Lock()
		defer mu.Unlock()
		if next != len(script) {
			t.Errorf("fake API: %d of %d expected requests were made", next, len(script))
		}
	})
	return srv.URL
}

// dumpRequest renders what the client sent: method, path with raw query,
// headers (minus transport ones) and the exact body.
func dumpRequest(r *http.Request, body []byte) string {
	var b strings.Builder
	b.WriteString(r.Method + " " + r.URL.RequestURI() + "\n")
	var names []string
	for k := range r.Header {
		switch k {
		case "Accept-Encoding", "Content-Length":
			continue
		}
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		for _, v := range r.Header[k] {
			b.WriteString(k + ": " + v + "\n")
		}
	}
	b.WriteString("\n")
	b.Write(body)
	return b.String()
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	if name == "" {
		return
	}
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Error(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("%v (run go test -update to create it)", err)
		return
	}
	if string(want) != got {
		t.Errorf("request differs from %s:\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}
