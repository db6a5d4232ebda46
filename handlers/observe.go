package handlers

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/bot"
)

// Metrics is what the HTTP side records; *metrics.Metrics implements it.
// Outcome values are those documented on activityOutcome.
type Metrics interface {
	Activity(typ, outcome string)
	AuthFailure(reason string)
	Refused(kind string)
	Invoke(d time.Duration)
}

type noMetrics struct{}

func (noMetrics) Activity(string, string) {}
func (noMetrics) AuthFailure(string)      {}
func (noMetrics) Refused(string)          {}
func (noMetrics) Invoke(time.Duration)    {}

// Auth failure reasons: a bounded set, since the error text names tokens'
// claims and must not become a label.
const (
	authNoToken = "no_token" // no Authorization header
	authToken   = "token"    // the token was refused (signature, issuer, audience, expiry, keys)
	authBinding = "binding"  // a valid token for another serviceUrl or channel
)

// Activity outcomes for gatebot_activities_total.
const (
	outcomeOK          = "ok"
	outcomeRefused     = "refused"     // dropped at the tenant boundary
	outcomeUnavailable = "unavailable" // the store could not record it
	outcomeRejected    = "rejected"    // answered with a 4xx (bad activity, unsupported invoke)
	outcomeError       = "error"       // a 5xx
)

// turnKey holds the *turnOutcome of the activity being handled.
const turnKey ctxKey = loggerKey + 100

// turnOutcome lets code deep in a turn (storeDown, checkTenant) say how it
// ended without changing every signature in between.
type turnOutcome struct{ outcome string }

func withTurn(ctx context.Context) (context.Context, *turnOutcome) {
	t := &turnOutcome{}
	return context.WithValue(ctx, turnKey, t), t
}

// markTurn records how the current turn ended, if one is being tracked.
// The first mark wins: it is the cause.
func markTurn(ctx context.Context, outcome string) {
	if t, ok := ctx.Value(turnKey).(*turnOutcome); ok && t.outcome == "" {
		t.outcome = outcome
	}
}

// activityOutcome is the outcome of a finished turn: what was marked, else
// what the handler returned or answered.
func activityOutcome(t *turnOutcome, err error, inv *bot.InvokeResponse) string {
	if t.outcome != "" {
		return t.outcome
	}
	status := http.StatusOK
	switch {
	case err != nil:
		status = http.StatusInternalServerError
		var he *HTTPError
		if errors.As(err, &he) {
			status = he.Status
		} else if errors.Is(err, approvals.ErrUnavailable) {
			return outcomeUnavailable
		}
	case inv != nil:
		status = inv.Status
		if body, ok := inv.Body.(bot.AdaptiveCardInvokeResponse); ok && body.StatusCode != 0 {
			status = body.StatusCode
			if ie, ok := body.Value.(bot.InvokeError); ok && ie.Code == "ServiceUnavailable" {
				return outcomeUnavailable
			}
		}
	}
	switch {
	case status == http.StatusNotImplemented:
		return outcomeRejected // an invoke gatebot does not handle
	case status >= 500:
		return outcomeError
	case status >= 400:
		return outcomeRejected
	}
	return outcomeOK
}
