package engine

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/pipelines"
)

// TestTracing: with a Tracer, a trigger is a span with the provider call
// as its child, both naming the gate; a failed call marks its span as an
// error; polls and card syncs have spans of their own.
func TestTracing(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		s := newStore(t, rdb, prefix)
		p := newProvider("ci")
		p.errs = []error{&pipelines.APIError{StatusCode: 400, Message: "bad ref"}}
		runWith(t, s, newTeams(), "traced", map[string]*Pipeline{"deploy": pipeline(p, "ci")}, func(o *Options) { o.Tracer = tp.Tracer("test") })
		failed := approvedGate(t, s, "deploy")
		eventually(t, "the failed trigger", func() bool { return stateOf(t, s, failed.ID) == approvals.StateTriggerFailed })
		ok := approvedGate(t, s, "deploy")
		eventually(t, "the run to succeed", func() bool { return stateOf(t, s, ok.ID) == approvals.StateSucceeded })
		time.Sleep(50 * time.Millisecond) // the last spans end after the state is written

		byName := map[string][]sdktrace.ReadOnlySpan{}
		for _, sp := range rec.Ended() {
			byName[sp.Name()] = append(byName[sp.Name()], sp)
		}
		for _, name := range []string{"engine.trigger", "provider.trigger", "engine.poll", "provider.status", "engine.card_sync"} {
			if len(byName[name]) == 0 {
				t.Errorf("no %s span (have %v)", name, keys(byName))
			}
		}
		for _, call := range byName["provider.trigger"] {
			var parent sdktrace.ReadOnlySpan
			for _, tr := range byName["engine.trigger"] {
				if tr.SpanContext().SpanID() == call.Parent().SpanID() {
					parent = tr
				}
			}
			if parent == nil {
				t.Fatal("a provider.trigger span is not a child of an engine.trigger span")
			}
			gate := ""
			for _, a := range parent.Attributes() {
				if a.Key == "gatebot.gate_id" {
					gate = a.Value.AsString()
				}
			}
			wantErr := gate == failed.ID
			if got := call.Status().Code == codes.Error; got != wantErr {
				t.Errorf("provider.trigger of gate %s: error status %v, want %v", gate, got, wantErr)
			}
			if gate != failed.ID && gate != ok.ID {
				t.Errorf("engine.trigger span names gate %q", gate)
			}
		}
	})
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
