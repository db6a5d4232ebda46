package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
)

// contract is every series and its labels, as deploy/dashboard_test.go
// and the alerts in docs/operations.md read them.
var contract = map[string][]string{
	"gatebot_activities_total":               {"outcome", "type"},
	"gatebot_auth_failures_total":            {"reason"},
	"gatebot_refused_total":                  {"kind"},
	"gatebot_invoke_duration_seconds":        nil,
	"gatebot_gate_transitions_total":         {"pipeline", "state"},
	"gatebot_open_gates":                     {"state"},
	"gatebot_provider_calls_total":           {"op", "outcome", "provider"},
	"gatebot_provider_call_duration_seconds": {"op", "provider"},
	"gatebot_connector_calls_total":          {"op", "outcome"},
	"gatebot_connector_retries_total":        nil,
	"gatebot_connector_throttled_total":      nil,
	"gatebot_outbox_depth":                   {"kind"},
	"gatebot_outbox_oldest_seconds":          {"kind"},
	"gatebot_redis_errors_total":             nil,
	"gatebot_build_info":                     {"goversion", "version"},
}

func newTest(t *testing.T, open func(context.Context) (map[string]int64, error)) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := New(reg, Options{Version: "v1.2.3", GoVersion: "go1.26.8", OpenGates: open})
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

func TestEverySeriesHasItsContractLabels(t *testing.T) {
	t.Parallel()
	m, reg := newTest(t, func(context.Context) (map[string]int64, error) {
		return map[string]int64{"pending": 3, "approved": 0}, nil
	})
	m.Activity("invoke", OK)
	m.AuthFailure("token")
	m.Refused("tenant")
	m.Invoke(300 * time.Millisecond)
	m.GateTransition("deploy-api", "approved")
	m.ProviderCall("humanitec", "trigger", OK, 2*time.Second)
	m.ConnectorCall("send", OK, 2, true)
	m.OutboxDepth("card", 4, 90*time.Second)
	m.RedisError()

	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range fams {
		want, ok := contract[f.GetName()]
		if !ok {
			t.Errorf("%s is not in the dashboard's contract", f.GetName())
			continue
		}
		seen[f.GetName()] = true
		for _, s := range f.GetMetric() {
			var got []string
			for _, l := range s.GetLabel() {
				got = append(got, l.GetName())
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s labels = %v, want %v", f.GetName(), got, want)
			}
		}
	}
	for name := range contract {
		if !seen[name] {
			t.Errorf("%s was not exported", name)
		}
	}
	if got := testutil.ToFloat64(m.connRetries); got != 2 {
		t.Errorf("retries = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.outboxOldest.WithLabelValues("card")); got != 90 {
		t.Errorf("outbox oldest = %v, want 90", got)
	}
}

func TestBuildInfoAndOpenGatesText(t *testing.T) {
	t.Parallel()
	_, reg := newTest(t, func(context.Context) (map[string]int64, error) {
		return map[string]int64{"pending": 3, "running": 1}, nil
	})
	want := `
# HELP gatebot_build_info Always 1; the labels name the running build.
# TYPE gatebot_build_info gauge
gatebot_build_info{goversion="go1.26.8",version="v1.2.3"} 1
# HELP gatebot_open_gates Gates in each open state, read from Redis at scrape time (the same for every replica: aggregate with max, not sum).
# TYPE gatebot_open_gates gauge
gatebot_open_gates{state="pending"} 3
gatebot_open_gates{state="running"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "gatebot_build_info", "gatebot_open_gates"); err != nil {
		t.Error(err)
	}
}

// A Redis outage leaves gatebot_open_gates out of the scrape rather than
// reporting zero open gates or failing the whole scrape.
func TestOpenGatesErrorOmitsTheSeries(t *testing.T) {
	t.Parallel()
	_, reg := newTest(t, func(ctx context.Context) (map[string]int64, error) {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("the open-gates count runs without a deadline")
		}
		return nil, errors.New("redis down")
	})
	if n, err := testutil.GatherAndCount(reg, "gatebot_open_gates"); err != nil || n != 0 {
		t.Errorf("open gates series = %d (%v), want 0", n, err)
	}
	if n, err := testutil.GatherAndCount(reg, "gatebot_build_info"); err != nil || n != 1 {
		t.Errorf("build info series = %d (%v), want 1", n, err)
	}
}

func TestHandlerServesTheRegistry(t *testing.T) {
	t.Parallel()
	m, _ := newTest(t, nil)
	m.Activity("message", "unavailable")
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `gatebot_activities_total{outcome="unavailable",type="message"} 1`) {
		t.Errorf("status %d, body:\n%s", res.StatusCode, body)
	}
	if strings.Contains(string(body), "gatebot_open_gates") {
		t.Error("gatebot_open_gates exported without a counter")
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	if _, err := New(nil, Options{Version: "v", GoVersion: "go"}); err == nil {
		t.Error("nil registry accepted")
	}
	if _, err := New(prometheus.NewRegistry(), Options{}); err == nil {
		t.Error("missing build info accepted")
	}
	reg := prometheus.NewRegistry()
	if _, err := New(reg, Options{Version: "v", GoVersion: "go"}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(reg, Options{Version: "v", GoVersion: "go"}); err == nil {
		t.Error("registering twice on one registry accepted")
	}
}

func TestNilMetricsRecordsNothing(t *testing.T) {
	t.Parallel()
	var m *Metrics
	m.Activity("message", OK)
	m.AuthFailure("x")
	m.Refused("tenant")
	m.Invoke(time.Second)
	m.GateTransition("p", "s")
	m.ProviderCall("p", "trigger", OK, time.Second)
	m.ConnectorCall("send", OK, 1, true)
	m.OutboxDepth("card", 1, time.Second)
	m.RedisError()
}

func TestRedisHookCountsFailuresOnly(t *testing.T) {
	t.Parallel()
	m, _ := newTest(t, nil)
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	defer rdb.Close()
	rdb.AddHook(m.RedisHook())
	ctx := context.Background()

	if err := rdb.Get(ctx, "missing").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET missing: %v", err)
	}
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Get(ctx, "missing")
		return nil
	}); !errors.Is(err, redis.Nil) {
		t.Fatalf("pipelined GET missing: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_ = rdb.Ping(cctx).Err()
	if got := testutil.ToFloat64(m.redisErrors); got != 0 {
		t.Fatalf("errors after ordinary answers = %v, want 0", got)
	}
	if err := rdb.Do(ctx, "NOSUCHCOMMAND").Err(); err == nil {
		t.Fatal("unknown command succeeded")
	}
	mr.Close()
	_ = rdb.Ping(ctx).Err()
	_, _ = rdb.Pipelined(ctx, func(p redis.Pipeliner) error { p.Ping(ctx); return nil })
	if got := testutil.ToFloat64(m.redisErrors); got != 3 {
		t.Errorf("errors = %v, want 3 (unknown command, ping and pipeline while down)", got)
	}
}
