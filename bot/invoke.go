package bot

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// Invoke response body types (Universal Actions response contract).
const (
	InvokeTypeCard    = "application/vnd.microsoft.card.adaptive"
	InvokeTypeMessage = "application/vnd.microsoft.activity.message"
	InvokeTypeError   = "application/vnd.microsoft.error"
)

// InvokeResponse is the synchronous answer to an invoke activity: Status is
// the HTTP status of the response to the channel's POST, Body its JSON body
// (nil: no body). Only Body is serialized, never the wrapper.
type InvokeResponse struct {
	Status int
	Body   any
}

// AdaptiveCardInvokeResponse is the body of an adaptiveCard/action answer.
type AdaptiveCardInvokeResponse struct {
	StatusCode int    `json:"statusCode"`
	Type       string `json:"type"`
	Value      any    `json:"value"`
}

// InvokeError is the value of an error invoke response.
type InvokeError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// CardResponse answers an adaptiveCard/action with a card that replaces the
// clicked one, for the clicking user only (PUT the message to update it for
// everyone).
func CardResponse(card any) InvokeResponse {
	return InvokeResponse{Status: http.StatusOK, Body: AdaptiveCardInvokeResponse{
		StatusCode: http.StatusOK, Type: InvokeTypeCard, Value: card,
	}}
}

// MessageResponse answers an adaptiveCard/action with a short message shown
// to the clicking user, leaving the card as it is.
func MessageResponse(text string) InvokeResponse {
	return InvokeResponse{Status: http.StatusOK, Body: AdaptiveCardInvokeResponse{
		StatusCode: http.StatusOK, Type: InvokeTypeMessage, Value: text,
	}}
}

// ErrorResponse answers an adaptiveCard/action with an error. The HTTP
// status stays 200 as the protocol requires; statusCode in the body
// (typically 400 or 500) carries the failure. code is a short machine code
// such as "BadRequest"; message is shown to the user, so it must be safe.
func ErrorResponse(statusCode int, code, message string) InvokeResponse {
	return InvokeResponse{Status: http.StatusOK, Body: AdaptiveCardInvokeResponse{
		StatusCode: statusCode, Type: InvokeTypeError,
		Value: InvokeError{Code: code, Message: message},
	}}
}

// NotImplementedResponse answers an invoke whose name the bot does not
// handle, as botbuilder's ActivityHandler does: HTTP 501.
func NotImplementedResponse() InvokeResponse {
	return InvokeResponse{Status: http.StatusNotImplemented, Body: AdaptiveCardInvokeResponse{
		StatusCode: http.StatusNotImplemented, Type: InvokeTypeError,
		Value: InvokeError{Code: "NotImplemented", Message: "This invoke is not supported."},
	}}
}

// Write sends the response: the status and, when Body is not nil, Body as
// JSON.
func (r InvokeResponse) Write(w http.ResponseWriter) error {
	status := r.Status
	if status == 0 {
		status = http.StatusOK
	}
	if r.Body == nil {
		w.WriteHeader(status)
		return nil
	}
	b, err := marshalBody(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return fmt.Errorf("bot: marshal invoke response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, err = w.Write(b)
	return err
}

// marshalBody encodes an invoke body. A card answer whose value encodes
// itself (an Adaptive Card builder's MarshalJSON) is assembled around that
// output directly: encoding/json would re-validate and re-compact the whole
// card, which is most of the cost of answering a click.
func marshalBody(body any) ([]byte, error) {
	ac, ok := body.(AdaptiveCardInvokeResponse)
	if !ok {
		return json.Marshal(body)
	}
	m, ok := ac.Value.(json.Marshaler)
	if !ok {
		return json.Marshal(body)
	}
	v, err := m.MarshalJSON()
	if err != nil {
		return nil, err
	}
	typ, err := json.Marshal(ac.Type)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(v)+len(typ)+40)
	b = append(b, `{"statusCode":`...)
	b = strconv.AppendInt(b, int64(ac.StatusCode), 10)
	b = append(b, `,"type":`...)
	b = append(b, typ...)
	b = append(b, `,"value":`...)
	b = append(b, v...)
	return append(b, '}'), nil
}
