package apiclient

import (
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// Settings are the dependencies every provider client takes through the
// options of its New: they feed Options.HTTPClient, Logger and Now.
type Settings struct {
	// HTTPClient is nil unless set (New then uses its default).
	HTTPClient *http.Client
	// Logger is never nil after ApplyOptions (nil discards).
	Logger *slog.Logger
	// Now is never nil after ApplyOptions (default time.Now).
	Now func() time.Time
}

// Option adjusts Settings. Provider packages declare
// "type Option = apiclient.Option" and wrap the With functions, so that
// their New keeps its own documented options.
type Option func(*Settings) error

// WithHTTPClient sets the HTTP client; nil is an error naming pkg.
func WithHTTPClient(pkg string, hc *http.Client) Option {
	return func(s *Settings) error {
		if hc == nil {
			return errors.New(pkg + ": WithHTTPClient: nil client")
		}
		s.HTTPClient = hc
		return nil
	}
}

// WithLogger sets the logger; nil discards.
func WithLogger(l *slog.Logger) Option {
	return func(s *Settings) error { s.Logger = l; return nil }
}

// WithNow replaces the clock; nil is an error naming pkg.
func WithNow(pkg string, now func() time.Time) Option {
	return func(s *Settings) error {
		if now == nil {
			return errors.New(pkg + ": WithNow: nil clock")
		}
		s.Now = now
		return nil
	}
}

// ApplyOptions applies opts in order to the defaults (no HTTP client, a
// discarding logger, time.Now) and returns the first error.
func ApplyOptions(opts []Option) (Settings, error) {
	s := Settings{Now: time.Now}
	for _, opt := range opts {
		if err := opt(&s); err != nil {
			return Settings{}, err
		}
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	return s, nil
}
