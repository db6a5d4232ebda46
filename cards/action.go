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
	// VerbConfirmApprove asks for the ConfirmApprove card (approval.confirm).
	VerbConfirmApprove = "confirm-approve"
	// VerbForm asks for the run form of ActionData.Pipeline.
	VerbForm = "form"
	// VerbRun submits the run form: Pipeline and the Inputs typed into it.
	VerbRun = "run"
)

// VerbConfirm is VerbConfirmApprove by its short name.
const VerbConfirm = VerbConfirmApprove

// InputIDPrefix starts the id of each run form field ("in.version"), so
// that Teams, which merges field values into the action data by id, cannot
// let an input named "verb" overwrite the verb.
const InputIDPrefix = "in."

// ReasonInputID is the id of the reject card's text input. Teams merges input
// values into the action data under their id, so it is also ActionData's
// "reason" key.
const ReasonInputID = "reason"

// MaxReasonRunes caps the reject reason, in the input and when parsing.
const MaxReasonRunes = 500

// ActionData is what a button click carries back to the bot.
type ActionData struct {
	Verb   string `json:"verb"`
	GateID string `json:"gateId,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Pipeline is the pipeline of VerbForm and VerbRun.
	Pipeline string `json:"pipeline,omitempty"`
	// Inputs are the run form's values by input name (VerbRun only), as
	// the client sent them; the pipeline's definition validates them.
	Inputs map[string]string `json:"-"`
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
// reason is trimmed and cut to MaxReasonRunes. Gate verbs need gateId;
// VerbForm and VerbRun need pipeline instead, and VerbRun collects every
// InputIDPrefix field into Inputs (strings, numbers and booleans as text).
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
	if d.Pipeline, err = str("pipeline"); err != nil {
		return ActionData{}, err
	}
	d.Verb = strings.TrimSpace(d.Verb)
	d.GateID = strings.TrimSpace(d.GateID)
	d.Pipeline = strings.TrimSpace(d.Pipeline)
	key, keyName := d.GateID, "gateId"
	if d.Verb == VerbForm || d.Verb == VerbRun {
		key, keyName = d.Pipeline, "pipeline"
	}
	var missing []string
	if d.Verb == "" {
		missing = append(missing, "verb")
	}
	if key == "" {
		missing = append(missing, keyName)
	}
	if len(missing) > 0 {
		return ActionData{}, &actionDataError{"missing " + strings.Join(missing, " and ")}
	}
	switch d.Verb {
	case VerbApprove, VerbReject, VerbCancel, VerbRetry, VerbRefresh, VerbConfirmApprove, VerbForm:
	case VerbRun:
		in, err := formInputs(fields)
		if err != nil {
			return ActionData{}, err
		}
		d.Inputs = in
	default:
		return ActionData{}, &actionDataError{fmt.Sprintf("unknown verb %q", truncate(d.Verb, 40))}
	}
	d.Reason = truncate(strings.TrimSpace(d.Reason), MaxReasonRunes)
	return d, nil
}

// maxFormInputs and maxFormValueBytes bound what a run form may send.
const (
	maxFormInputs     = 100
	maxFormValueBytes = 4096
)

// formInputs collects the run form's fields from the merged action data.
func formInputs(fields map[string]json.RawMessage) (map[string]string, error) {
	out := map[string]string{}
	for k, raw := range fields {
		name, ok := strings.CutPrefix(k, InputIDPrefix)
		if !ok || string(raw) == "null" {
			continue
		}
		if name == "" || len(out) == maxFormInputs {
			return nil, &actionDataError{"too many or unnamed form inputs"}
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, &actionDataError{k + " is not valid JSON"}
		}
		switch tv := v.(type) {
		case string:
			out[name] = tv
		case float64, bool:
			out[name] = formatValue(tv)
		default:
			return nil, &actionDataError{k + " is not a string, number or boolean"}
		}
		if len(out[name]) > maxFormValueBytes {
			return nil, &actionDataError{k + " is too long"}
		}
	}
	return out, nil
}

// execute builds an Action.Execute with an Action.Submit fallback carrying
// the same data, for clients without Universal Actions.
func execute(title, verb, gateID string) ActionExecute {
	return executeData(title, ActionData{Verb: verb, GateID: gateID})
}

// executeData is execute for any data.
func executeData(title string, data ActionData) ActionExecute {
	verb := data.Verb
	return ActionExecute{
		Title:    title,
		Verb:     verb,
		Data:     data,
		Fallback: ActionSubmit{Title: title, Data: data},
	}
}
