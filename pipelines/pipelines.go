// Package pipelines is gatebot's vocabulary for starting and following
// pipeline runs on CI/CD systems: the Provider interface that every
// provider sub-package implements, the run states they are all mapped onto,
// pipeline definitions with typed inputs, and the typed errors callers branch
// on.
//
// It must not import any other gatebot package, nor anything that knows about
// HTTP serving, Teams or Redis: providers are plain API clients.
package pipelines

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Status is a run's state, normalised across providers.
type Status string

// The five run states every provider status is mapped onto.
const (
	StatusQueued    Status = "queued"
	StatusRunning   Status = "running"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusCancelled Status = "cancelled"
)

// Terminal reports whether no further change of the run is expected.
func (s Status) Terminal() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusCancelled
}

// Valid reports whether s is one of the five known states.
func (s Status) Valid() bool {
	switch s {
	case StatusQueued, StatusRunning, StatusSucceeded, StatusFailed, StatusCancelled:
		return true
	}
	return false
}

// Run identifies one run on a provider and carries its last known state.
// A Run is persisted with the gate that started it, so everything a provider
// needs to find the run again after a restart must be in ID or Ref.
//
// Its JSON form is the one stored on a gate (approvals.Gate.Run): short
// field names, kept stable because stored records must stay readable.
type Run struct {
	// ID is the provider's run identifier (for display and lookups).
	ID string `json:"id,omitempty"`
	// URL links a person to the run in the provider's UI, when known.
	URL string `json:"url,omitempty"`
	// Status is the normalised state.
	Status Status `json:"st,omitempty"`
	// Detail is the provider's own status string or message, for display.
	Detail string `json:"dt,omitempty"`
	// Ref holds provider-specific coordinates needed to poll or cancel the
	// run later (an etag, a queue item URL, a run counter).
	Ref map[string]string `json:"ref,omitempty"`
}

// Request is everything a provider needs to start a run.
type Request struct {
	// GateID identifies the approval gate; providers use it as an
	// idempotency key and stamp it into a field the provider keeps.
	GateID string
	// Pipeline is gatebot's name for the pipeline.
	Pipeline string
	// Target is the pipeline's provider-specific target section from config.
	Target map[string]any
	// Inputs are validated and typed as the pipeline declares them.
	Inputs map[string]any
	// Message is the requester's free text, if any.
	Message string
	// Requester and Approvers are display names, for descriptions and audit
	// trails on the provider's side.
	Requester string
	Approvers []string
	// Since, when set, is a time before which no run for this gate can
	// have been created (the gate's creation, or when its trigger began):
	// providers that look an earlier run up list only runs created after
	// it. Zero means unknown; they then look back a bounded window.
	Since time.Time
}

// Provider starts runs and reports their status. Implementations must be
// safe for concurrent use.
type Provider interface {
	// Trigger starts a run. It must be safe to call again with the same
	// GateID after a crash: either the provider honours an idempotency key,
	// or the implementation first looks for a run stamped with the gate id.
	Trigger(ctx context.Context, req Request) (Run, error)
	// Status fetches the current state of a run returned by Trigger.
	Status(ctx context.Context, run Run) (Run, error)
}

// Canceler is implemented by providers that can stop a run.
type Canceler interface {
	Cancel(ctx context.Context, run Run) error
}

// Idempotent is implemented by providers whose Trigger may, for some or all
// targets, be repeated for the same gate without starting a second run:
// the provider recognises an earlier call (Trigger first finds a run
// stamped with the gate id, or the provider documents replaying an
// idempotency key). gatebot repeats a trigger whose outcome is unknown (a
// timeout, a 5xx, a worker that died mid-call) only when RepeatableTrigger
// says so; otherwise the gate goes to trigger_failed and a person decides.
type Idempotent interface {
	// RepeatableTrigger reports whether a repeated Trigger for req.GateID
	// is recognised at the provider for req's target, so gatebot may call
	// Trigger again after a 5xx, a timeout or a crash. It answers false
	// when it cannot tell (a lookup failed): the safe side is never a
	// second run.
	RepeatableTrigger(ctx context.Context, req Request) bool
}

// Rejecter is implemented by providers that must hear of a gate that was
// rejected or expired, such as a pipeline task waiting for the decision.
// It is called once, after the gate ended; reason is user-supplied text.
type Rejecter interface {
	Reject(ctx context.Context, req Request, reason string) error
}

// Checker is implemented by providers that can validate a pipeline
// definition at config-check time (target keys, reserved input names).
type Checker interface {
	CheckPipeline(def Definition) []error
}

// ErrNoRun reports that the provider accepted the request but created no
// run (Humanitec's 204, for example).
var ErrNoRun = errors.New("provider accepted the request but created no run")

// ErrRunLost reports that a run the provider started can no longer be found
// there; following it further is pointless.
var ErrRunLost = errors.New("the run can no longer be found at the provider")

// ErrNotSupported reports an operation the provider does not offer.
var ErrNotSupported = errors.New("operation not supported by this provider")

// APIError is a failed call to a provider's API. Its Error text never
// contains credentials.
type APIError struct {
	Provider   string        // provider type, e.g. "humanitec"
	Op         string        // what gatebot was doing, e.g. "trigger run"
	StatusCode int           // HTTP status, 0 for transport errors
	Code       string        // the provider's own error code, if any
	Message    string        // the provider's message, size-capped
	RetryAfter time.Duration // from Retry-After or rate-limit headers
	// RateLimited marks a refusal for a rate limit whatever its status
	// (GitHub answers 403 with X-RateLimit-Remaining: 0 or Retry-After):
	// nothing ran, and the call may be repeated after RetryAfter.
	RateLimited bool
	Err         error // underlying transport error, if any
}

func (e *APIError) Error() string {
	s := e.Provider + ": " + e.Op
	if e.StatusCode != 0 {
		s += fmt.Sprintf(": HTTP %d", e.StatusCode)
	}
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *APIError) Unwrap() error { return e.Err }

// Temporary reports whether repeating the call may succeed: transport
// errors, 408, 429, 5xx and any refusal marked RateLimited.
func (e *APIError) Temporary() bool {
	switch {
	case e.RateLimited:
		return true
	case e.StatusCode == 0:
		return e.Err != nil
	case e.StatusCode == 408, e.StatusCode == 429, e.StatusCode >= 500:
		return true
	}
	return false
}

// IsTemporary reports whether err is an *APIError that is Temporary.
func IsTemporary(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Temporary()
}
