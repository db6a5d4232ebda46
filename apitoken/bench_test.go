package apitoken

import (
	"context"
	"testing"
)

func BenchmarkAuthenticate(b *testing.B) {
	for _, real := range []bool{false, true} {
		name := "miniredis"
		if real {
			name = "redis"
		}
		b.Run(name, func(b *testing.B) {
			e := newEnv(b, real)
			s, _ := NewStore(e.rdb, Options{Prefix: e.prefix})
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
}

func BenchmarkLimiterAllow(b *testing.B) {
	for _, real := range []bool{false, true} {
		name := "miniredis"
		if real {
			name = "redis"
		}
		b.Run(name, func(b *testing.B) {
			e := newEnv(b, real)
			l, _ := NewLimiter(e.rdb, LimiterOptions{Prefix: e.prefix, Rate: 1e5, Burst: 1e5})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := l.Allow(ctx, "tok_bench"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
