package apitoken

import (
	"context"
	"testing"
)

// benchBackends runs fn against miniredis and against the real Redis, as
// backends does for tests.
func benchBackends(b *testing.B, fn func(b *testing.B, e *env)) {
	for _, real := range []bool{false, true} {
		name := "miniredis"
		if real {
			name = "redis"
		}
		b.Run(name, func(b *testing.B) { fn(b, newEnv(b, real)) })
	}
}

func BenchmarkAuthenticate(b *testing.B) {
	benchBackends(b, func(b *testing.B, e *env) {
		s, err := NewStore(e.rdb, Options{Prefix: e.prefix})
		if err != nil {
			b.Fatal(err)
		}
		sec, _, err := s.Create(context.Background(), ciProd)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Authenticate(ctx, sec.Reveal()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkLimiterAllow(b *testing.B) {
	benchBackends(b, func(b *testing.B, e *env) {
		l, err := NewLimiter(e.rdb, LimiterOptions{Prefix: e.prefix, Rate: 1e5, Burst: 1e5})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := l.Allow(ctx, "tok_bench"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
