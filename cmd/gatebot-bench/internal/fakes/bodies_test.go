package fakes

import (
	"testing"
	"time"
)

// TestDropBody: only the named call loses its body; the record stays.
func TestDropBody(t *testing.T) {
	t.Parallel()
	r := newRig(t, time.Now)
	for range 2 {
		if resp := r.post(t, "19:drop"); resp.StatusCode != 201 && resp.StatusCode != 200 {
			t.Fatalf("post: %d", resp.StatusCode)
		}
	}
	r.conn.DropBody("19:drop", 0)
	r.conn.DropBody("19:drop", 7) // out of range: ignored
	calls := r.conn.Calls("19:drop")
	if len(calls) != 2 || calls[0].Body != nil || calls[0].BodyHash == "" || !calls[0].OK() || len(calls[1].Body) == 0 {
		t.Fatalf("calls after DropBody: %+v", calls)
	}
}
