package handlers

import (
	"context"
	"net/http"
	"strings"

	"github.com/gorilla/mux"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// startRequestSpan starts the server span of one request. Only the
// external API follows a caller's traceparent: its callers are CI systems
// that trace; the Bot Connector's requests start new traces. The span is
// named "METHOD unmatched" until the router matches a route, when
// nameSpan renames it by the route's template.
func (s *Server) startRequestSpan(ctx context.Context, r *http.Request, rid string) (context.Context, trace.Span) {
	if strings.HasPrefix(r.URL.Path, "/api/v1/") {
		ctx = propagation.TraceContext{}.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	return s.opt.Tracer.Start(ctx, r.Method+" unmatched", trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		attribute.String("http.request.method", r.Method),
		attribute.String("gatebot.request_id", rid),
	))
}

// nameSpan is router middleware: it names the request's span by the route
// that matched (POST /api/v1/gates/{id}), so span names stay few, without
// matching the route a second time.
func nameSpan(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
			if tpl, err := mux.CurrentRoute(r).GetPathTemplate(); err == nil {
				span.SetName(r.Method + " " + tpl)
				span.SetAttributes(attribute.String("http.route", tpl))
			}
		}
		next.ServeHTTP(w, r)
	})
}

// endRequestSpan records the answer's status: 5xx is an error of the
// server's; 4xx is the caller's and leaves the span's status unset.
func endRequestSpan(span trace.Span, status int) {
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
}
