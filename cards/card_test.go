package cards_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/gatebot/gatebot/cards"
	"github.com/google/go-cmp/cmp"
)

// TestZeroValuesMarshal pins what zero structs write inside a card: their
// type, and [] where Adaptive Cards require an array. The expected JSON is
// what the per-struct MarshalJSON methods wrote before the type became a
// field of its own.
func TestZeroValuesMarshal(t *testing.T) {
	const head = `{"type":"AdaptiveCard","$schema":"http://adaptivecards.io/schemas/adaptive-card.json","version":"1.5",`
	tests := []struct {
		name string
		card *cards.Card
		want string
	}{
		{"zero card", &cards.Card{}, head + `"body":[]}`},
		{"zero elements", &cards.Card{Body: []cards.Element{
			cards.TextBlock{}, cards.FactSet{}, cards.Container{}, cards.InputText{},
		}}, head + `"body":[{"type":"TextBlock","text":""},{"type":"FactSet","facts":[]},{"type":"Container","items":[]},{"type":"Input.Text","id":""}]}`},
		{"nested and pointer elements", &cards.Card{Body: []cards.Element{
			cards.TextBlock{Text: "a"},
			cards.Container{Items: []cards.Element{cards.FactSet{}, cards.Container{Items: []cards.Element{}}, cards.Container{}}},
			&cards.FactSet{}, &cards.Container{}, (*cards.Container)(nil),
		}}, head + `"body":[{"type":"TextBlock","text":"a"},{"type":"Container","items":[{"type":"FactSet","facts":[]},{"type":"Container","items":[]},{"type":"Container","items":[]}]},{"type":"FactSet","facts":[]},{"type":"Container","items":[]},null]}`},
		{"zero actions and refresh", &cards.Card{Body: []cards.Element{}, Actions: []cards.Action{
			cards.ActionExecute{Fallback: cards.ActionSubmit{}}, cards.ActionShowCard{}, cards.ActionShowCard{Card: &cards.Card{}}, cards.ActionOpenURL{},
		}, Refresh: &cards.Refresh{}, MSTeams: &cards.MSTeams{}},
			head + `"body":[],"actions":[{"type":"Action.Execute","verb":"","data":{"verb":""},"fallback":{"type":"Action.Submit","data":{"verb":""}}},` +
				`{"type":"Action.ShowCard","title":"","card":null},{"type":"Action.ShowCard","title":"","card":` + head + `"body":[]}},{"type":"Action.OpenUrl","title":"","url":""}],` +
				`"refresh":{"action":{"type":"Action.Execute","verb":"","data":{"verb":""}},"userIds":[]},"msteams":{}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := fmt.Sprintf("%#v", tc.card.Body)
			raw, err := json.Marshal(tc.card)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, string(raw)); diff != "" {
				t.Errorf("JSON (-want +got):\n%s", diff)
			}
			if after := fmt.Sprintf("%#v", tc.card.Body); after != before {
				t.Errorf("marshalling changed the card's body:\n%s", cmp.Diff(before, after))
			}
		})
	}
}

// TestElementsDecode checks that decoding an element ignores its "type", as
// it did when "type" was not a field.
func TestElementsDecode(t *testing.T) {
	var tb cards.TextBlock
	if err := json.Unmarshal([]byte(`{"type":"TextBlock","text":"hi","wrap":true}`), &tb); err != nil || tb.Text != "hi" || !tb.Wrap {
		t.Errorf("TextBlock = %+v, %v", tb, err)
	}
	var a cards.ActionOpenURL
	if err := json.Unmarshal([]byte(`{"type":"Action.OpenUrl","title":"t","url":"https://x"}`), &a); err != nil || a.URL != "https://x" {
		t.Errorf("ActionOpenURL = %+v, %v", a, err)
	}
}
