package bot

import (
	"errors"
	"fmt"
	"os"
	"testing"
)

// reportCPU adds a cpu-ns/op metric: process CPU time per iteration, which
// stays meaningful when the benchmark shares a loaded machine.
func reportCPU(b *testing.B) func() {
	start, ok := processCPU()
	return func() {
		end, ok2 := processCPU()
		if ok && ok2 && b.N > 0 {
			b.ReportMetric(float64((end-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}
}

// BenchmarkAuthenticate measures validation of a Teams token with a warm
// key cache: header checks, JWT decoding, RS256 verification and claims.
func BenchmarkAuthenticate(b *testing.B) {
	f := newAuthFixture(b, nil)
	header := "Bearer " + signRS256(b, testKeys()[0], "k0", channelClaims(f.clock.Now()))
	ctx := b.Context()
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		id, err := f.auth.Authenticate(ctx, header)
		if err != nil {
			b.Fatal(err)
		}
		if err := id.Check(testServiceURL, "msteams"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticateUncached is BenchmarkAuthenticate for a token seen
// for the first time: the RS256 signature is verified on every iteration.
func BenchmarkAuthenticateUncached(b *testing.B) {
	f := newAuthFixture(b, nil)
	header := "Bearer " + signRS256(b, testKeys()[0], "k0", channelClaims(f.clock.Now()))
	ctx := b.Context()
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		f.auth.verified.m = nil
		id, err := f.auth.Authenticate(ctx, header)
		if err != nil {
			b.Fatal(err)
		}
		if err := id.Check(testServiceURL, "msteams"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInboundTurn measures the protocol side of an authenticated
// message turn: authenticate, decode the activity, bind the token to it and
// extract the command text.
func BenchmarkInboundTurn(b *testing.B) {
	f := newAuthFixture(b, nil)
	body, err := os.ReadFile("testdata/teams_channel_message.json")
	if err != nil {
		b.Fatal(err)
	}
	const serviceURL = "https://smba.trafficmanager.net/emea/"
	claims := channelClaims(f.clock.Now())
	claims["serviceurl"] = serviceURL
	header := "Bearer " + signRS256(b, testKeys()[0], "k0", claims)
	ctx := b.Context()
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		id, err := f.auth.Authenticate(ctx, header)
		if err != nil {
			b.Fatal(err)
		}
		act, err := DecodeActivity(body)
		if err != nil {
			b.Fatal(err)
		}
		if err := id.Check(act.ServiceURL, act.ChannelID); err != nil {
			b.Fatal(err)
		}
		if act.TextWithoutRecipientMention() == "" {
			b.Fatal("no text")
		}
	}
}

// BenchmarkAuthenticateRejectGarbage shows that junk headers are refused
// before any expensive work.
func BenchmarkAuthenticateRejectGarbage(b *testing.B) {
	f := newAuthFixture(b, nil)
	ctx := b.Context()
	b.ReportAllocs()
	defer reportCPU(b)()
	for i := 0; b.Loop(); i++ {
		_, err := f.auth.Authenticate(ctx, fmt.Sprintf("Bearer x%d", i%10))
		if !errors.Is(err, ErrUnauthorized) {
			b.Fatal(err)
		}
	}
}
