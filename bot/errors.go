package bot

import (
	"errors"
	"fmt"
)

var (
	// ErrUnauthorized is wrapped by every inbound authentication failure.
	// The wrapping error says precisely why, for logs; the HTTP response
	// must not.
	ErrUnauthorized = errors.New("bot: unauthorized")

	// ErrUntrustedServiceURL is wrapped when a serviceUrl is not on the
	// trusted list, so the bearer token must not be sent to it.
	ErrUntrustedServiceURL = errors.New("bot: untrusted serviceUrl")

	// ErrMalformedActivity is wrapped when a request body is not a valid
	// activity (bad JSON or no type).
	ErrMalformedActivity = errors.New("bot: malformed activity")
)

// APIError is a non-2xx answer from the Bot Connector, decoded from its
// ErrorResponse body. Code is the Teams error code (for example
// "ConversationNotFound", "MessageSizeTooBig") and CorrelationID the
// X-Correlating-OperationId header Microsoft support asks for.
type APIError struct {
	StatusCode    int
	Code          string
	Message       string
	CorrelationID string
}

// Error describes the failure; it never contains the request's token.
func (e *APIError) Error() string {
	s := fmt.Sprintf("bot: connector returned %d", e.StatusCode)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.CorrelationID != "" {
		s += " (correlation id " + e.CorrelationID + ")"
	}
	return s
}
