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

// startRequestSpan starts the server span of one request, named by its
// route template (POST /api/v1/gates/{id}), so span names stay few. Only
// the external API follows a caller's traceparent: its callers are CI
// systems that trace; the Bot Connector's requests start new traces.
func (s *Server) startRequestSpan(ctx context.Context, r *http.Request, rid string) (context.Context, trace.Span) {
	if strings.HasPrefix(r.URL.Path, "/api/v1/") {
		ctx = propagation.TraceContext{}.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	route := r.URL.Path
	var m mux.RouteMatch
	if s.router.Match(r, &m) && m.Route != nil {
		if tpl, err := m.Route.GetPathTemplate(); err == nil {
			route = tpl
		}
	} else {
		route = "unmatched"
	}
	return s.opt.Tracer.Start(ctx, r.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		attribute.String("http.request.method", r.Method),
		attribute.String("http.route", route),
		attribute.String("gatebot.request_id", rid),
	))
}

// endRequestSpan records the answer's status: 5xx is an error of the
// server's; 4xx is the caller's and leaves the span's status unset.
func endRequestSpan(span trace.Span, status int) {
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
}
