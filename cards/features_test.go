package cards_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/cards"
	"github.com/google/go-cmp/cmp"
)

func TestParseActionDataNewVerbs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw string
		want      cards.ActionData
		wantErr   string
	}{
		{"confirm-approve", `{"verb":"confirm-approve","gateId":"g1"}`, cards.ActionData{Verb: cards.VerbConfirmApprove, GateID: "g1"}, ""},
		{"form", `{"verb":"form","pipeline":"deploy-api"}`, cards.ActionData{Verb: cards.VerbForm, Pipeline: "deploy-api"}, ""},
		{"run with inputs", `{"verb":"run","pipeline":"deploy-api","in.version":"1.4.2","in.replicas":3,"in.dry_run":"false","in.verb":"x","other":1}`,
			cards.ActionData{Verb: cards.VerbRun, Pipeline: "deploy-api", Inputs: map[string]string{"version": "1.4.2", "replicas": "3", "dry_run": "false", "verb": "x"}}, ""},
		{"run without pipeline", `{"verb":"run","gateId":"g1"}`, cards.ActionData{}, "missing pipeline"},
		{"form without pipeline", `{"verb":"form"}`, cards.ActionData{}, "missing pipeline"},
		{"run input object", `{"verb":"run","pipeline":"p","in.x":{"a":1}}`, cards.ActionData{}, "in.x is not a string"},
		{"pipeline not a string", `{"verb":"form","pipeline":3}`, cards.ActionData{}, "pipeline is not a string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := cards.ParseActionData(json.RawMessage(tc.raw))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestMentionsMatchText checks every @mention entity's text appears in a
// text block (Teams drops the mention otherwise) and that only people with a
// Teams or Entra id are mentioned.
func TestMentionsMatchText(t *testing.T) {
	t.Parallel()
	for name, c := range allCards() {
		all := strings.Join(texts(t, c), "\n")
		if c.MSTeams == nil {
			continue
		}
		for _, m := range c.MSTeams.Entities {
			if m.Type != "mention" || !strings.Contains(all, m.Text) || m.Mentioned.ID == "" {
				t.Errorf("%s: mention %+v not in the card's text or without id", name, m)
			}
		}
		if strings.Count(all, "<at>") > 0 && len(c.MSTeams.Entities) == 0 {
			t.Errorf("%s: <at> text without entities", name)
		}
	}
	pending := cards.Gate(gate(), view())
	var ids []string
	for _, m := range pending.MSTeams.Entities {
		ids = append(ids, m.Mentioned.ID)
	}
	if diff := cmp.Diff([]string{"29:alice", "29:bob", "29:carol"}, ids); diff != "" {
		t.Errorf("pending card mentions (-want +got):\n%s", diff)
	}
	api := cards.Gate(gate(func(g *approvals.Gate) { g.Requester = approvals.Person{ID: "api:ci", UPN: "ci@example.com"} }), view(func(v *cards.GateView) { v.Eligible = nil }))
	if api.MSTeams != nil && len(api.MSTeams.Entities) > 0 {
		t.Errorf("mentions without ids: %+v", api.MSTeams.Entities)
	}
}

func TestRolesAndConfirm(t *testing.T) {
	t.Parallel()
	verbs := func(c *cards.Card) []string {
		var out []string
		for _, a := range c.Actions {
			switch a := a.(type) {
			case cards.ActionExecute:
				out = append(out, a.Verb+":"+a.Style)
			case cards.ActionShowCard:
				out = append(out, "show:"+a.Style)
			}
		}
		return out
	}
	tests := []struct {
		name string
		v    cards.GateView
		want []string
	}{
		{"shared", view(), []string{"approve:positive", "show:destructive"}},
		{"approver", view(func(v *cards.GateView) { v.Role = cards.RoleApprover }), []string{"approve:positive", "show:destructive"}},
		{"observer", view(func(v *cards.GateView) { v.Role = cards.RoleObserver }), nil},
		{"confirm", view(func(v *cards.GateView) { v.Confirm = true }), []string{"confirm-approve:positive", "show:destructive"}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, verbs(cards.Gate(gate(), tc.v))); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
	c := cards.ConfirmApprove(gate(), view(func(v *cards.GateView) { v.Target = "prod" }))
	if got := texts(t, c)[0]; got != "Approve deploy-api 1.4.2 to prod?" {
		t.Errorf("confirm question = %q", got)
	}
	if diff := cmp.Diff([]string{"approve:positive", "refresh:"}, verbs(c)); diff != "" {
		t.Errorf("confirm buttons (-want +got):\n%s", diff)
	}
	if c := cards.ConfirmApprove(gate(state(approvals.StateApproved)), view()); len(verbs(c)) != 0 {
		t.Errorf("confirm on a decided gate offers %v", verbs(c))
	}
}

func TestSummary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		g    *approvals.Gate
		want string
	}{
		{gate(), "Approval needed: deploy-api 1.4.2"},
		{gate(state(approvals.StateRunning), run("queued", "", "")), "Queued: deploy-api 1.4.2"},
		{gate(state(approvals.StateTriggerFailed)), "Could not start: deploy-api 1.4.2"},
		{gate(func(g *approvals.Gate) { g.Inputs = map[string]any{"ref": "main\n**x**"} }), "Approval needed: deploy-api main **x**"},
		{nil, "Approval no longer exists"},
	}
	for _, tc := range tests {
		if got := cards.Summary(tc.g); got != tc.want {
			t.Errorf("Summary = %q, want %q", got, tc.want)
		}
	}
	if got := cards.Summary(gate(func(g *approvals.Gate) { g.Pipeline = strings.Repeat("p", 500) })); len([]rune(got)) > 120 {
		t.Errorf("summary is %d runes", len([]rune(got)))
	}
}

func TestFormFields(t *testing.T) {
	t.Parallel()
	raw, _ := json.Marshal(cards.Form(formPipelines()[0], map[string]string{"env": "prod"}, nil))
	var card struct {
		Body    []map[string]any `json:"body"`
		Actions []map[string]any `json:"actions"`
	}
	if err := json.Unmarshal(raw, &card); err != nil {
		t.Fatal(err)
	}
	fields := map[string]map[string]any{}
	for _, e := range card.Body {
		if id, ok := e["id"].(string); ok {
			fields[id] = e
		}
	}
	checks := []struct {
		id, key string
		want    any
	}{
		{"in.version", "type", "Input.Text"}, {"in.version", "isRequired", true}, {"in.version", "regex", `^[0-9]+\.[0-9]+\.[0-9]+$`},
		{"in.env", "type", "Input.ChoiceSet"}, {"in.env", "value", "prod"},
		{"in.replicas", "type", "Input.Number"}, {"in.replicas", "min", float64(1)}, {"in.replicas", "max", float64(10)}, {"in.replicas", "value", float64(3)},
		{"in.dry_run", "type", "Input.Toggle"}, {"in.dry_run", "value", "false"}, {"in.dry_run", "label", "dry_run"},
	}
	for _, c := range checks {
		if got := fields[c.id][c.key]; got != c.want {
			t.Errorf("%s.%s = %v, want %v", c.id, c.key, got, c.want)
		}
	}
	run := card.Actions[0]
	if run["verb"] != "run" || run["data"].(map[string]any)["pipeline"] != "deploy-api" {
		t.Errorf("run action = %v", run)
	}
	// A Go-only pattern is left to the bot rather than sent to a JS client.
	p := cards.PipelineInfo{Name: "x", Inputs: []cards.InputInfo{{Name: "a", Pattern: `(?i)^abc\z`}}}
	if s, _ := json.Marshal(cards.Form(p, nil, nil)); strings.Contains(string(s), `"regex"`) {
		t.Errorf("Go-only pattern sent to the client: %s", s)
	}
}
