package cards

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Verbs carried by gate buttons, in Action.Execute's verb and in the data of
// both Action.Execute and its Action.Submit fallback.
const (
	VerbApprove = "approve"
	VerbReject  = "reject"
	VerbCancel  = "cancel"
	VerbRetry   = "retry"
	VerbRefresh = "refresh"
)

// ReasonInputID is the id of the reject card's text input. Teams merges input
// values into the action data under their id, so it is also ActionData's
// "reason" key.
const ReasonInputID = "reason"

// MaxReasonRunes caps the reject reason, in the input and when parsing.
const MaxReasonRunes = 500

// ActionData is what a button click carries back to the bot.
type ActionData struct {
	Verb   string `json:"verb"`
	GateID string `json:"gateId"`
	Reason string `json:"reason,omitempty"`
}

// ErrInvalidActionData is matched (errors.Is) by every ParseActionData error.
var ErrInvalidActionData = errors.New("invalid card action data")

// actionDataError names what is wrong with the data; it matches
// ErrInvalidActionData.
type actionDataError struct{ msg string }

func (e *actionDataError) Error() string        { return "card action data: " + e.msg }
func (e *actionDataError) Is(target error) bool { return target == ErrInvalidActionData }

// ParseActionData decodes the data of an Action.Execute invoke
// (value.action.data) or an Action.Submit message (value). Unknown fields
// (such as Teams' "msteams") are ignored. It fails, with an error naming the
// problem and matching ErrInvalidActionData, when the JSON is not an object,
// verb or gateId is missing or not a string, or the verb is unknown. The
// reason is trimmed and cut to MaxReasonRunes.
func ParseActionData(raw json.RawMessage) (ActionData, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return ActionData{}, &actionDataError{"not a JSON object"}
	}
	str := func(key string) (string, error) {
		v, ok := fields[key]
		if !ok || string(v) == "null" {
			return "", nil
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", &actionDataError{key + " is not a string"}
		}
		return s, nil
	}
	var d ActionData
	var err error
	if d.Verb, err = str("verb"); err != nil {
		return ActionData{}, err
	}
	if d.GateID, err = str("gateId"); err != nil {
		return ActionData{}, err
	}
	if d.Reason, err = str(ReasonInputID); err != nil {
		return ActionData{}, err
	}
	d.Verb = strings.TrimSpace(d.Verb)
	d.GateID = strings.TrimSpace(d.GateID)
	var missing []string
	if d.Verb == "" {
		missing = append(missing, "verb")
	}
	if d.GateID == "" {
		missing = append(missing, "gateId")
	}
	if len(missing) > 0 {
		return ActionData{}, &actionDataError{"missing " + strings.Join(missing, " and ")}
	}
	switch d.Verb {
	case VerbApprove, VerbReject, VerbCancel, VerbRetry, VerbRefresh:
	default:
		return ActionData{}, &actionDataError{fmt.Sprintf("unknown verb %q", truncate(d.Verb, 40))}
	}
	d.Reason = truncate(strings.TrimSpace(d.Reason), MaxReasonRunes)
	return d, nil
}

// execute builds an Action.Execute with an Action.Submit fallback carrying
// the same data, for clients without Universal Actions.
func execute(title, verb, gateID string) ActionExecute {
	data := ActionData{Verb: verb, GateID: gateID}
	return ActionExecute{
		Title:    title,
		Verb:     verb,
		Data:     data,
		Fallback: ActionSubmit{Title: title, Data: data},
	}
}
