package engine

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// noSpan is the span of work done with tracing off: it records nothing
// and costs nothing.
var noSpan = trace.SpanFromContext(context.Background())

// span starts a span named name under ctx's, or does nothing when tracing
// is off (Options.Tracer nil).
func (e *Engine) span(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if e.opts.Tracer == nil {
		return ctx, noSpan
	}
	return e.opts.Tracer.Start(ctx, name, trace.WithAttributes(attrs...))
}

// endSpan records err (if any) on span and ends it.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// gateAttrs names a gate's work in its spans.
func gateAttrs(gateID, pipeline string) []attribute.KeyValue {
	return []attribute.KeyValue{attribute.String("gatebot.gate_id", gateID), attribute.String("gatebot.pipeline", pipeline)}
}
