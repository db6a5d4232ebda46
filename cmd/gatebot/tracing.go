package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TracingConfig turns on OpenTelemetry tracing: spans for every HTTP
// request (a Teams turn, an API call), every trigger, poll and card sync
// of the engine and each provider call, exported over OTLP/HTTP. Off
// when Endpoint is empty.
type TracingConfig struct {
	// Endpoint is the collector's OTLP/HTTP traces URL, such as
	// http://otel-collector:4318/v1/traces (http only on loopback or
	// inside a cluster; https otherwise).
	Endpoint string `yaml:"endpoint"`
	// SampleRatio is the share of new traces kept, 0 < r ≤ 1, default 1. A
	// caller's sampled traceparent is always followed.
	SampleRatio float64 `yaml:"sample_ratio" check:"nonnegative"`
	// Headers are sent with every export (a collector's API key).
	Headers map[string]Secret `yaml:"headers"`
}

// check reports an endpoint that is not a URL and a ratio above 1.
func (t *TracingConfig) check(ps *problems) {
	if t.Endpoint != "" {
		u, err := url.Parse(t.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			ps.add("tracing.endpoint", "%q is not an http(s) URL such as http://otel-collector:4318/v1/traces", t.Endpoint)
		}
	}
	if t.SampleRatio > 1 {
		ps.add("tracing.sample_ratio", "%v is above 1 (the share of traces kept)", t.SampleRatio)
	}
}

// startTracing builds the tracer provider, or returns nil tracing when it
// is off: every component then skips span work entirely.
func startTracing(ctx context.Context, c TracingConfig, instance string) (trace.TracerProvider, func(context.Context) error, error) {
	if c.Endpoint == "" {
		return nil, func(context.Context) error { return nil }, nil
	}
	headers := make(map[string]string, len(c.Headers))
	for k, v := range c.Headers {
		headers[k] = v.Reveal()
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(c.Endpoint), otlptracehttp.WithHeaders(headers),
		otlptracehttp.WithTimeout(10*time.Second))
	if err != nil {
		return nil, nil, fmt.Errorf("tracing.endpoint: %w", err)
	}
	ratio := c.SampleRatio
	if ratio == 0 {
		ratio = 1
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
		sdktrace.WithResource(resource.NewSchemaless(serviceAttrs(instance)...)),
	)
	return tp, tp.Shutdown, nil
}

// propagator reads and writes W3C traceparent headers.
var propagator = propagation.TraceContext{}

// tracingTransport sends the current span's traceparent with every
// outbound call, so a provider or collector that traces can join the trace.
type tracingTransport struct{ next http.RoundTripper }

func (t tracingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if trace.SpanContextFromContext(r.Context()).IsValid() {
		r = r.Clone(r.Context())
		propagator.Inject(r.Context(), propagation.HeaderCarrier(r.Header))
	}
	return t.next.RoundTrip(r)
}

// traceLogs adds trace_id and span_id to every line logged with a
// context that carries a span, so a log line leads to its trace.
type traceLogs struct{ next slog.Handler }

func (h traceLogs) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }
func (h traceLogs) WithAttrs(as []slog.Attr) slog.Handler          { return traceLogs{h.next.WithAttrs(as)} }
func (h traceLogs) WithGroup(name string) slog.Handler             { return traceLogs{h.next.WithGroup(name)} }
func (h traceLogs) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.next.Handle(ctx, r)
}

// serviceAttrs names this process in every span.
func serviceAttrs(instance string) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("service.name", "gatebot"),
		attribute.String("service.version", version),
		attribute.String("service.instance.id", instance),
	}
}

// redactedURL is u for a log line, without a password in it.
func redactedURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable)"
	}
	return p.Redacted()
}
