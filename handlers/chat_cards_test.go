package handlers

import (
	"testing"
	"time"
)

func TestShortIDAndAge(t *testing.T) {
	t.Parallel()
	ids := []struct{ in, want string }{
		{"g_abcdefgh12345678abcd", "g_abcdefgh"},
		{"g_abcdefgh", "g_abcdefgh"},
		{"g_abc", "g_abc"},
		{"custom-id-0123456789", "custom-id-0123456789"},
	}
	for _, c := range ids {
		if got := shortID(c.in); got != c.want {
			t.Errorf("shortID(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	ages := []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"}, {45 * time.Second, "45s"}, {12*time.Minute + 59*time.Second, "12m"},
		{3 * time.Hour, "3h"}, {47 * time.Hour, "47h"}, {50 * time.Hour, "2d"},
	}
	for _, c := range ages {
		if got := age(c.d); got != c.want {
			t.Errorf("age(%s) = %q, want %q", c.d, got, c.want)
		}
	}
}

func TestCancelReason(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"cancel g_abcdefgh", ""},
		{"cancel g_abcdefgh wrong version", "wrong version"},
		{`/cancel g_abcdefgh "wrong  version" reason=typo`, "wrong  version reason=typo"},
		{`cancel g_abcdefgh "unclosed`, ""},
	}
	for _, c := range cases {
		if got := cancelReason(c.in); got != c.want {
			t.Errorf("cancelReason(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
