package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Outcome values shared by the *_total{outcome} series; the alerts in
// docs/operations.md treat everything but OK as a failure.
const (
	OK = "ok"
)

// scrapeTimeout bounds the Redis reads a scrape makes (open gates), so a
// Redis outage makes /metrics omit those series instead of hanging.
const scrapeTimeout = time.Second

// Buckets of the latency histograms, in seconds. Teams shows the user an
// error about 5 s after a click, so the invoke buckets are dense below it;
// provider calls may take tens of seconds.
var (
	invokeBuckets   = []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 8}
	providerBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60}
)

// Options configures Metrics.
type Options struct {
	// Version is the build's version, for gatebot_build_info. Required.
	Version string
	// GoVersion is the toolchain that built the binary (runtime.Version()).
	// Required.
	GoVersion string
	// OpenGates counts gates per open state for gatebot_open_gates. It is
	// called on every scrape with a context bounded to one second; an
	// error leaves the series out of that scrape (the Redis error is
	// counted by the Redis hook). Nil leaves gatebot_open_gates out.
	OpenGates func(ctx context.Context) (map[string]int64, error)
	// Replicas reports, from the replica registry, how many replicas are
	// live and how many different version-and-config combinations they run
	// (1 when they agree), for gatebot_replicas and
	// gatebot_replica_configs. Nil leaves both out.
	Replicas func() (live, configs int)
	// Logger receives scrape-time read failures at debug level; nil
	// discards them.
	Logger *slog.Logger
}

// Metrics records gatebot's metrics. Its methods are safe for concurrent
// use; a nil *Metrics records nothing, so optional wiring needs no checks.
type Metrics struct {
	reg *prometheus.Registry

	activities     *prometheus.CounterVec
	authFailures   *prometheus.CounterVec
	refused        *prometheus.CounterVec
	invoke         prometheus.Histogram
	transitions    *prometheus.CounterVec
	providerCalls  *prometheus.CounterVec
	providerTime   *prometheus.HistogramVec
	connectorCalls *prometheus.CounterVec
	connRetries    prometheus.Counter
	connThrottled  prometheus.Counter
	outboxDepth    *prometheus.GaugeVec
	outboxOldest   *prometheus.GaugeVec
	redisErrors    prometheus.Counter
}

// New registers gatebot's metrics on reg. reg is the registry the
// /metrics handler serves (see Handler); pass a fresh one per server.
func New(reg *prometheus.Registry, o Options) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("metrics: nil registry")
	}
	if o.Version == "" || o.GoVersion == "" {
		return nil, errors.New("metrics: Version and GoVersion are required for gatebot_build_info")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{
		reg: reg,
		activities: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatebot_activities_total",
			Help: "Bot Framework activities handled, by activity type and outcome (ok, error, unavailable, rejected, refused).",
		}, []string{"type", "outcome"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatebot_auth_failures_total",
			Help: "Requests to /api/messages refused by Bot Framework authentication, by reason.",
		}, []string{"reason"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatebot_refused_total",
			Help: "Activities dropped at a trust boundary, by kind (tenant, conversation, service_url).",
		}, []string{"kind"}),
		invoke: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gatebot_invoke_duration_seconds",
			Help:    "Time to answer a card action (adaptiveCard/action invoke).",
			Buckets: invokeBuckets,
		}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatebot_gate_transitions_total",
			Help: "Gates entering a state, by pipeline and the state entered.",
		}, []string{"pipeline", "state"}),
		providerCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatebot_provider_calls_total",
			Help: "Calls to CI/CD providers, by provider, operation and outcome.",
		}, []string{"provider", "op", "outcome"}),
		providerTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatebot_provider_call_duration_seconds",
			Help:    "Duration of calls to CI/CD providers, by provider and operation.",
			Buckets: providerBuckets,
		}, []string{"provider", "op"}),
		connectorCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatebot_connector_calls_total",
			Help: "Bot Connector calls (send, reply, update, delete, create, member), by outcome after retries.",
		}, []string{"op", "outcome"}),
		connRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatebot_connector_retries_total",
			Help: "Bot Connector attempts repeated after a retryable answer.",
		}),
		connThrottled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatebot_connector_throttled_total",
			Help: "Bot Connector calls that Teams throttled (HTTP 429) at least once.",
		}),
		outboxDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gatebot_outbox_depth",
			Help: "Undelivered outbox entries (card updates, callbacks), by kind.",
		}, []string{"kind"}),
		outboxOldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gatebot_outbox_oldest_seconds",
			Help: "Age of the oldest undelivered outbox entry, by kind; 0 when empty.",
		}, []string{"kind"}),
		redisErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatebot_redis_errors_total",
			Help: "Redis commands and pipelines that failed (not counting a missing key or a lost optimistic transaction).",
		}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "gatebot_build_info",
		Help:        "Always 1; the labels name the running build.",
		ConstLabels: prometheus.Labels{"version": o.Version, "goversion": o.GoVersion},
	})
	build.Set(1)
	cs := []prometheus.Collector{
		m.activities, m.authFailures, m.refused, m.invoke, m.transitions, m.providerCalls, m.providerTime,
		m.connectorCalls, m.connRetries, m.connThrottled, m.outboxDepth, m.outboxOldest, m.redisErrors, build,
	}
	if o.OpenGates != nil {
		cs = append(cs, &openGates{count: o.OpenGates, log: o.Logger, desc: prometheus.NewDesc(
			"gatebot_open_gates", "Gates in each open state, read from Redis at scrape time (the same for every replica: aggregate with max, not sum).",
			[]string{"state"}, nil)})
	}
	if o.Replicas != nil {
		cs = append(cs,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "gatebot_replicas",
				Help: "Live replicas on this Redis prefix, from the replica registry (the same for every replica).",
			}, func() float64 { n, _ := o.Replicas(); return float64(n) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "gatebot_replica_configs",
				Help: "Different version and config combinations among the live replicas: 1 when they agree, more during a rolling upgrade.",
			}, func() float64 { _, n := o.Replicas(); return float64(n) }))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Handler serves the registry in the Prometheus exposition format. A
// collector that fails is reported in the log and the rest is served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Activity counts one activity of type typ (message, invoke, …) with its
// outcome (OK, or why not).
func (m *Metrics) Activity(typ, outcome string) {
	if m != nil {
		m.activities.WithLabelValues(typ, outcome).Inc()
	}
}

// AuthFailure counts a request refused by inbound authentication.
func (m *Metrics) AuthFailure(reason string) {
	if m != nil {
		m.authFailures.WithLabelValues(reason).Inc()
	}
}

// Refused counts an activity dropped at a trust boundary (kind tenant,
// conversation or service_url).
func (m *Metrics) Refused(kind string) {
	if m != nil {
		m.refused.WithLabelValues(kind).Inc()
	}
}

// Invoke records how long a card action took to answer.
func (m *Metrics) Invoke(d time.Duration) {
	if m != nil {
		m.invoke.Observe(d.Seconds())
	}
}

// GateTransition counts a gate of pipeline entering state. Call it once
// per recorded change (after the store accepted it), not per attempt.
func (m *Metrics) GateTransition(pipeline, state string) {
	if m != nil {
		m.transitions.WithLabelValues(pipeline, state).Inc()
	}
}

// ProviderCall records one call to a CI/CD provider: provider is the
// configured provider name, op what was asked (trigger, status, cancel,
// reject), outcome OK or a short failure class.
func (m *Metrics) ProviderCall(provider, op, outcome string, d time.Duration) {
	if m != nil {
		m.providerCalls.WithLabelValues(provider, op, outcome).Inc()
		m.providerTime.WithLabelValues(provider, op).Observe(d.Seconds())
	}
}

// ConnectorCall records one Bot Connector call after all its attempts:
// retries is how many attempts were repeated, throttled whether Teams
// answered 429 at least once.
func (m *Metrics) ConnectorCall(op, outcome string, retries int, throttled bool) {
	if m == nil {
		return
	}
	m.connectorCalls.WithLabelValues(op, outcome).Inc()
	if retries > 0 {
		m.connRetries.Add(float64(retries))
	}
	if throttled {
		m.connThrottled.Inc()
	}
}

// OutboxDepth sets the outbox gauges of kind: n undelivered entries, the
// oldest waiting for oldest (0 when n is 0). The outbox lives in Redis,
// so every replica reports the same figures: whoever reads it last wins.
func (m *Metrics) OutboxDepth(kind string, n int, oldest time.Duration) {
	if m == nil {
		return
	}
	if n == 0 {
		oldest = 0
	}
	m.outboxDepth.WithLabelValues(kind).Set(float64(n))
	m.outboxOldest.WithLabelValues(kind).Set(oldest.Seconds())
}

// RedisError counts one failed Redis command or pipeline. RedisHook calls
// it; other callers need not.
func (m *Metrics) RedisError() {
	if m != nil {
		m.redisErrors.Inc()
	}
}

// openGates is gatebot_open_gates, read when Prometheus scrapes, so it is
// right after a restart and costs nothing between scrapes.
type openGates struct {
	count func(ctx context.Context) (map[string]int64, error)
	log   *slog.Logger
	desc  *prometheus.Desc
}

func (o *openGates) Describe(ch chan<- *prometheus.Desc) { ch <- o.desc }

func (o *openGates) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	counts, err := o.count(ctx)
	if err != nil {
		o.log.Debug("metrics: cannot count open gates", "err", err)
		return
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(o.desc, prometheus.GaugeValue, float64(n), state)
	}
}
