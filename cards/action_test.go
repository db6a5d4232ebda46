package cards_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/gatebot/gatebot/cards"
	"github.com/google/go-cmp/cmp"
)

func TestParseActionData(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    cards.ActionData
		wantErr string // substring; empty = success
	}{
		{"approve", `{"verb":"approve","gateId":"g1"}`, cards.ActionData{Verb: "approve", GateID: "g1"}, ""},
		{"teams extras ignored", `{"verb":"reject","gateId":"g1","msteams":{"type":"messageBack"},"other":3}`, cards.ActionData{Verb: "reject", GateID: "g1"}, ""},
		{"reason merged and trimmed", `{"verb":"reject","gateId":"g1","reason":"  too risky \n"}`, cards.ActionData{Verb: "reject", GateID: "g1", Reason: "too risky"}, ""},
		{"null reason", `{"verb":"reject","gateId":"g1","reason":null}`, cards.ActionData{Verb: "reject", GateID: "g1"}, ""},
		{"every verb: cancel", `{"verb":"cancel","gateId":"g1"}`, cards.ActionData{Verb: "cancel", GateID: "g1"}, ""},
		{"every verb: retry", `{"verb":"retry","gateId":"g1"}`, cards.ActionData{Verb: "retry", GateID: "g1"}, ""},
		{"every verb: refresh", `{"verb":"refresh","gateId":"g1"}`, cards.ActionData{Verb: "refresh", GateID: "g1"}, ""},
		{"missing verb", `{"gateId":"g1"}`, cards.ActionData{}, "missing verb"},
		{"missing gateId", `{"verb":"approve"}`, cards.ActionData{}, "missing gateId"},
		{"missing both", `{"msteams":{}}`, cards.ActionData{}, "missing verb and gateId"},
		{"blank gateId", `{"verb":"approve","gateId":"  "}`, cards.ActionData{}, "missing gateId"},
		{"verb not a string", `{"verb":1,"gateId":"g1"}`, cards.ActionData{}, "verb is not a string"},
		{"gateId not a string", `{"verb":"approve","gateId":{"id":1}}`, cards.ActionData{}, "gateId is not a string"},
		{"reason not a string", `{"verb":"reject","gateId":"g1","reason":[1]}`, cards.ActionData{}, "reason is not a string"},
		{"unknown verb", `{"verb":"delete","gateId":"g1"}`, cards.ActionData{}, `unknown verb "delete"`},
		{"array", `[]`, cards.ActionData{}, "not a JSON object"},
		{"null", `null`, cards.ActionData{}, "not a JSON object"},
		{"empty", ``, cards.ActionData{}, "not a JSON object"},
		{"string", `"approve"`, cards.ActionData{}, "not a JSON object"},
		{"broken", `{"verb":`, cards.ActionData{}, "not a JSON object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cards.ParseActionData(json.RawMessage(tc.raw))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to say %q", err, tc.wantErr)
				}
				if !errors.Is(err, cards.ErrInvalidActionData) {
					t.Errorf("err %v does not match ErrInvalidActionData", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseActionDataCapsReason(t *testing.T) {
	raw, _ := json.Marshal(map[string]string{"verb": "reject", "gateId": "g", "reason": strings.Repeat("é", 2000)})
	d, err := cards.ParseActionData(raw)
	if err != nil {
		t.Fatal(err)
	}
	if n := len([]rune(d.Reason)); n != cards.MaxReasonRunes || !strings.HasSuffix(d.Reason, "…") {
		t.Errorf("reason has %d runes (ends %q), want %d ending in an ellipsis", n, d.Reason[len(d.Reason)-6:], cards.MaxReasonRunes)
	}
}

// TestCardDataRoundTrips parses the data every button on a pending card
// would send, the way Teams sends it (inputs merged into data), for both the
// Universal Action and its Submit fallback.
func TestCardDataRoundTrips(t *testing.T) {
	raw, _ := json.Marshal(cards.Gate(gate(), view()))
	var card struct {
		Actions []json.RawMessage `json:"actions"`
	}
	if err := json.Unmarshal(raw, &card); err != nil {
		t.Fatal(err)
	}
	type action struct {
		Type     string          `json:"type"`
		Verb     string          `json:"verb"`
		Data     json.RawMessage `json:"data"`
		Fallback *struct {
			Data json.RawMessage `json:"data"`
		} `json:"fallback"`
		Card *struct {
			Actions []json.RawMessage `json:"actions"`
		} `json:"card"`
	}
	var got []cards.ActionData
	var visit func(json.RawMessage)
	visit = func(r json.RawMessage) {
		var a action
		if err := json.Unmarshal(r, &a); err != nil {
			t.Fatal(err)
		}
		if a.Card != nil {
			for _, in := range a.Card.Actions {
				visit(in)
			}
			return
		}
		for _, data := range []json.RawMessage{a.Data, a.Fallback.Data} {
			var m map[string]any
			_ = json.Unmarshal(data, &m)
			if a.Verb == cards.VerbReject {
				m["reason"] = "freeze" // what Teams merges from the input
			}
			merged, _ := json.Marshal(m)
			d, err := cards.ParseActionData(merged)
			if err != nil {
				t.Fatalf("%s data %s: %v", a.Verb, merged, err)
			}
			got = append(got, d)
		}
	}
	for _, r := range card.Actions {
		visit(r)
	}
	want := []cards.ActionData{
		{Verb: "approve", GateID: "g-01HX"}, {Verb: "approve", GateID: "g-01HX"},
		{Verb: "reject", GateID: "g-01HX", Reason: "freeze"}, {Verb: "reject", GateID: "g-01HX", Reason: "freeze"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func FuzzParseActionData(f *testing.F) {
	f.Add([]byte(`{"verb":"approve","gateId":"g1"}`))
	f.Add([]byte(`{"verb":"reject","gateId":"g1","reason":"x"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := cards.ParseActionData(raw)
		if err != nil {
			if !errors.Is(err, cards.ErrInvalidActionData) {
				t.Fatalf("error %v does not match ErrInvalidActionData", err)
			}
			return
		}
		if d.Verb == "" || d.GateID == "" || len([]rune(d.Reason)) > cards.MaxReasonRunes {
			t.Fatalf("accepted incomplete data %+v from %q", d, raw)
		}
	})
}
