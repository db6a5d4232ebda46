package main

import (
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// fakeCollector is an OTLP/HTTP traces receiver that decodes what it is
// sent, as a collector would, and checks the exporter's headers.
type fakeCollector struct {
	t     *testing.T
	mu    sync.Mutex
	spans []*tracepb.Span
	res   []string // service.instance.id of each batch
}

func (c *fakeCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		c.t.Errorf("collector: %s %s, want POST /v1/traces", r.Method, r.URL.Path)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		c.t.Errorf("collector: Content-Type %q", ct)
	}
	if got := r.Header.Get("Api-Key"); got != "k-123" {
		c.t.Errorf("collector: Api-Key header %q, want the configured one", got)
	}
	body, _ := io.ReadAll(r.Body)
	var req collectorpb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		c.t.Errorf("collector: body is not an ExportTraceServiceRequest: %v", err)
	}
	c.mu.Lock()
	for _, rs := range req.ResourceSpans {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.instance.id" {
				c.res = append(c.res, a.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.ScopeSpans {
			c.spans = append(c.spans, ss.Spans...)
		}
	}
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&collectorpb.ExportTraceServiceResponse{})
	w.Write(out)
}

func (c *fakeCollector) span(name string) *tracepb.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.spans {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// attr returns a span attribute's value as text.
func attr(s *tracepb.Span, key string) string {
	for _, a := range s.Attributes {
		if a.Key == key {
			if v := a.GetValue(); v.GetStringValue() == "" {
				return strconv.FormatInt(v.GetIntValue(), 10)
			}
			return a.GetValue().GetStringValue()
		}
	}
	return ""
}

// TestServeTracing: with tracing.endpoint set, every request is a span
// named by its route, exported over OTLP/HTTP with the configured headers;
// an API caller's traceparent is followed; the request's log line carries
// the trace id; and the spans are flushed when serve stops.
func TestServeTracing(t *testing.T) {
	col := &fakeCollector{t: t}
	srv := httptest.NewServer(col)
	defer srv.Close()
	cfg := string(exampleConfig) + "\ntracing:\n  endpoint: " + srv.URL + "/v1/traces\n  headers: {Api-Key: k-123}\n"
	addr, logs, stop := startServeWith(t, cfg, env(nil), &serveHooks{})
	if code, _ := get(t, "http://"+addr+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d", code)
	}
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/v1/gates/g_nope", nil)
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	stop() // flushes the batch
	ready := col.span("GET /readyz")
	if ready == nil {
		t.Fatalf("no span for GET /readyz; got %d spans", len(col.spans))
	}
	if got := attr(ready, "http.response.status_code"); got != "200" {
		t.Errorf("readyz span status code %q", got)
	}
	api := col.span("GET /api/v1/gates/{id}")
	if api == nil {
		t.Fatal("no span named by the route template for GET /api/v1/gates/g_nope")
	}
	if got := hex.EncodeToString(api.TraceId); got != traceID {
		t.Errorf("the API span's trace id %s does not follow the caller's traceparent %s", got, traceID)
	}
	if got := attr(api, "http.response.status_code"); got != strconv.Itoa(res.StatusCode) {
		t.Errorf("API span status %q, answered %d", got, res.StatusCode)
	}
	if len(col.res) == 0 || !strings.Contains(col.res[0], "-") {
		t.Errorf("spans carry no service.instance.id: %v", col.res)
	}
	if !strings.Contains(logs.String(), "trace_id="+traceID) {
		t.Errorf("the API request's log line carries no trace_id=%s:\n%s", traceID, logs.String())
	}
	if strings.Contains(logs.String(), "k-123") {
		t.Error("the collector's API key reached the log")
	}
}
