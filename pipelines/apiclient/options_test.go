package apiclient_test

import (
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/gatebot/gatebot/pipelines/apiclient"
)

func TestApplyOptions(t *testing.T) {
	s, err := apiclient.ApplyOptions(nil)
	if err != nil || s.HTTPClient != nil || s.Logger == nil || s.Now == nil {
		t.Fatalf("defaults: %+v, %v", s, err)
	}
	hc := &http.Client{}
	l := slog.New(slog.DiscardHandler)
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	s, err = apiclient.ApplyOptions([]apiclient.Option{
		apiclient.WithHTTPClient("p", hc), apiclient.WithLogger(l), apiclient.WithNow("p", func() time.Time { return t0 }),
	})
	if err != nil || s.HTTPClient != hc || s.Logger != l || !s.Now().Equal(t0) {
		t.Errorf("set: %+v, %v", s, err)
	}
	if s, err := apiclient.ApplyOptions([]apiclient.Option{apiclient.WithLogger(nil)}); err != nil || s.Logger == nil {
		t.Errorf("nil logger: %+v, %v", s, err)
	}
	for _, tt := range []struct {
		opt  apiclient.Option
		want string
	}{
		{apiclient.WithHTTPClient("gitlab", nil), "gitlab: WithHTTPClient: nil client"},
		{apiclient.WithNow("jenkins", nil), "jenkins: WithNow: nil clock"},
	} {
		if _, err := apiclient.ApplyOptions([]apiclient.Option{tt.opt}); err == nil || err.Error() != tt.want {
			t.Errorf("err = %v, want %q", err, tt.want)
		}
	}
}
