package approvals

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// InputSchema checks and types a request's raw inputs against what a
// pipeline declares. *pipelines.Definition implements it; its errors
// (pipelines.InputErrors) come back from Open wrapped, for errors.As.
type InputSchema interface {
	Resolve(raw map[string]any) (map[string]any, error)
}

// Opening is one request to open a gate, from a chat turn or an API call,
// as the caller read it. Open is the only way a gate is opened, so the
// runners rule, input checks and text rules hold for every origin alike.
type Opening struct {
	Pipeline string
	Schema   InputSchema // the pipeline's inputs; required
	Runners  []string    // UPNs or aad:<id> who may open it; empty = anyone
	Policy   Policy
	// RawInputs are the inputs as given (strings from chat, JSON values
	// from the API); Schema types them.
	RawInputs map[string]any
	Message   string
	// Requester is who asks, as gatebot authenticated them: a Teams user,
	// or an API token (ID "api:<name>#<token id>") and its owner. A caller-
	// supplied display name may be in Name; it never counts as identity.
	Requester Person
	Origin    string // "teams" or "api:<token name>"
	TokenID   string
	// Tenant and Conversations bind the gate to where its card is posted
	// (see Gate.PostedIn).
	Tenant        string
	Conversations []string
	// Post is where the card will be posted, when already known (a chat
	// turn's conversation).
	Post           Post
	CallbackURL    string
	IdempotencyKey string
}

// Limits on free text in a gate.
const (
	MaxMessage       = 2000
	MaxRequesterName = 200
	MaxReason        = 500
)

// ErrNotRunner is Open's answer when the requester may not run the
// pipeline (see MayRun).
var ErrNotRunner = errors.New("not allowed to run this pipeline")

// InvalidError names a field of an Opening (or a decision) that breaks a
// rule: "message", "requester" or "reason".
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Reason }

// MayRun reports whether who may open a gate on a pipeline with this
// runners list: anyone when it is empty, else a person it names by UPN or
// aad:<object id>. An API token without an owner carries neither, so it may
// open gates only on pipelines without runners.
func MayRun(runners []string, who Person) bool {
	if len(runners) == 0 {
		return true
	}
	for _, r := range runners {
		if who.Matches(r) {
			return true
		}
	}
	return false
}

// MayManage reports whether who may cancel or retry g: its requester, or
// anyone eligible to approve it.
func MayManage(g *Gate, who Person) bool {
	if who.Same(g.Requester) {
		return true
	}
	return Policy{Approvers: g.Policy.Approvers}.Eligible(who, g.Requester, false) == nil
}

// CheckText refuses text a person typed that would be unsafe to store and
// show: more than max runes, or control and bidirectional-formatting
// characters (a newline in a name forges audit lines; U+202E reverses
// what a reader sees). Newlines and tabs are allowed when multiline.
func CheckText(field, s string, max int, multiline bool) error {
	if !utf8.ValidString(s) {
		return &InvalidError{Field: field, Reason: "is not valid UTF-8"}
	}
	if n := utf8.RuneCountInString(s); n > max {
		return &InvalidError{Field: field, Reason: fmt.Sprintf("at most %d characters (got %d)", max, n)}
	}
	for _, r := range s {
		if multiline && (r == '\n' || r == '\t') {
			continue
		}
		if unicode.IsControl(r) || IsBidiControl(r) {
			return &InvalidError{Field: field, Reason: fmt.Sprintf("must not contain control or bidirectional-formatting characters (found U+%04X)", r)}
		}
	}
	return nil
}

// IsBidiControl reports the Unicode bidirectional formatting characters:
// they reorder how text after them is displayed.
func IsBidiControl(r rune) bool {
	switch {
	case r == 0x061C, r == 0x200E, r == 0x200F:
		return true
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// Open validates o and stores a new pending gate (see Create for
// idempotency: created is false for a replay of the same request). Errors:
// ErrNotRunner, *InvalidError for the message or requester name, the
// schema's input errors (wrapped), ErrIdempotencyKey, and store errors.
func (s *Store) Open(ctx context.Context, o Opening) (*Gate, bool, error) {
	if o.Schema == nil || o.Pipeline == "" {
		return nil, false, errors.New("open gate: pipeline and its input schema are required")
	}
	if !MayRun(o.Runners, o.Requester) {
		return nil, false, fmt.Errorf("%s may not run %s: %w", o.Requester.Display(), o.Pipeline, ErrNotRunner)
	}
	if err := CheckText("message", o.Message, MaxMessage, true); err != nil {
		return nil, false, err
	}
	if err := CheckText("requester", o.Requester.Name, MaxRequesterName, false); err != nil {
		return nil, false, err
	}
	inputs, err := o.Schema.Resolve(o.RawInputs)
	if err != nil {
		return nil, false, fmt.Errorf("open gate on %s: %w", o.Pipeline, err)
	}
	convs := make([]string, 0, len(o.Conversations))
	for _, c := range o.Conversations {
		if c = strings.TrimSpace(c); c != "" {
			convs = append(convs, c)
		}
	}
	g := &Gate{
		Pipeline: o.Pipeline, Inputs: inputs, Message: o.Message, Requester: o.Requester,
		Origin: o.Origin, TokenID: o.TokenID, Policy: o.Policy, Tenant: o.Tenant,
		Conversations: convs, Post: o.Post, CallbackURL: o.CallbackURL,
	}
	return s.Create(ctx, g, o.IdempotencyKey)
}
