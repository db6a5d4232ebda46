package approvals

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRecordCodec(t *testing.T) {
	now := time.Date(2025, 3, 1, 10, 0, 0, 123e6, time.UTC)
	big := typicalGate()
	big.ID, big.State, big.CreatedAt, big.UpdatedAt, big.Deadline, big.Version = "g_abc", StatePending, now, now, now.Add(time.Hour), 3
	for _, p := range typicalVoters() {
		if _, err := big.Decide(p, true, "ok", now); err != nil {
			t.Fatal(err)
		}
	}
	small := &Gate{ID: "g_s", Pipeline: "p", State: StatePending, CreatedAt: now, Version: 1}
	odd := &Gate{ID: "g_o", Pipeline: strings.Repeat("ü€", 200), Inputs: map[string]any{"n": 1.5, "b": true, "l": []any{"x"}}, Version: 1}
	var c recordCodec
	tests := []struct {
		name     string
		g        *Gate
		wantTag  byte
		maxRatio float64
	}{
		{"typical gate is compressed", big, tagDeflateV1, 0.5},
		{"small gate stays plain JSON", small, '{', 1},
		{"unusual content round-trips", odd, tagDeflateV1, 1},
	}
	for _, tt := range tests {
		rec, err := c.encode(tt.g)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		js, _ := json.Marshal(tt.g)
		if rec[0] != tt.wantTag || float64(len(rec)) > tt.maxRatio*float64(len(js)) {
			t.Errorf("%s: tag %#x, %d bytes for %d of JSON", tt.name, rec[0], len(rec), len(js))
		}
		got, err := c.decode(rec)
		if err != nil {
			t.Fatalf("%s: decode: %v", tt.name, err)
		}
		var want Gate
		_ = json.Unmarshal(js, &want) // what a JSON round trip gives (numbers as float64)
		if diff := cmp.Diff(&want, got); diff != "" {
			t.Errorf("%s: round trip (-want +got):\n%s", tt.name, diff)
		}
		// Plain JSON written by any version stays readable.
		if got, err := c.decode(js); err != nil || got.ID != tt.g.ID {
			t.Errorf("%s: plain JSON: %v", tt.name, err)
		}
	}
	for _, bad := range [][]byte{nil, {0x7f, 1}, {tagDeflateV1, 0xff, 0xff}, []byte("{not json")} {
		if _, err := c.decode(bad); err == nil {
			t.Errorf("decode(%q) accepted", bad)
		}
	}
	// Pooled compressors are safe to share.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				rec, err := c.encode(big)
				if err != nil {
					t.Error(err)
					return
				}
				if g, err := c.decode(rec); err != nil || len(g.Votes) != 2 {
					t.Errorf("concurrent round trip: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkCodec measures one encode and one decode of a typical gate
// with two votes, as every change of a gate does.
func BenchmarkCodec(b *testing.B) {
	now := time.Date(2025, 3, 1, 10, 0, 0, 123e6, time.UTC)
	g := typicalGate()
	g.ID, g.State, g.CreatedAt, g.UpdatedAt, g.Deadline, g.Version = "g_abcdefghijklmnopqrst", StatePending, now, now, now.Add(time.Hour), 3
	for _, p := range typicalVoters()[:2] {
		if _, err := g.Decide(p, true, "", now); err != nil {
			b.Fatal(err)
		}
	}
	var c recordCodec
	rec, _ := c.encode(g)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.encode(g); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(rec)), "bytes/record")
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.decode(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}
