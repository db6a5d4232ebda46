package cards_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/cards"
	"github.com/gatebot/gatebot/pipelines"
)

// allCards is every card the tests know how to build, by name.
func allCards() map[string]*cards.Card {
	m := map[string]*cards.Card{}
	for _, tc := range gateCases() {
		m["gate_"+tc.name] = cards.Gate(tc.gate, tc.view)
	}
	for _, tc := range extraGateCases() {
		m["gate_"+tc.name] = cards.Gate(tc.gate, tc.view)
	}
	m["confirm_approve"] = cards.ConfirmApprove(gate(approvedBy(bob)), view(func(v *cards.GateView) { v.Confirm = true; v.Target = "prod" }))
	m["notice"] = cards.Notice("Unknown pipeline \"deploy-ap\"", "Did you mean deploy-api?", "Known pipelines: deploy-api, demo")
	m["message_info"] = cards.Message(cards.ToneInfo, "You already approved this gate.")
	m["message_success"] = cards.Message(cards.ToneSuccess, "Your approval is recorded (1 of 2)", "Waiting for one more approval.")
	m["message_refusal"] = cards.Message(cards.ToneRefusal, "You cannot approve your own request", "Ask Bob Builder or Carol to approve it.")
	m["help"] = cards.Help(helpPipelines())
	m["help_empty"] = cards.Help(nil)
	m["pipelines"] = cards.PipelineList(formPipelines())
	m["pipelines_empty"] = cards.PipelineList(nil)
	m["form"] = cards.Form(formPipelines()[0], nil, nil)
	m["form_errors"] = cards.Form(formPipelines()[0], map[string]string{"version": "1.4", "replicas": "30", "env": "prod"},
		map[string]string{"version": "must match ^[0-9]+\\.[0-9]+\\.[0-9]+$", "replicas": "at most 10", "": "2 inputs are not valid"})
	m["form_no_inputs"] = cards.Form(formPipelines()[1], nil, nil)
	m["pending_list"] = cards.GateList("Waiting in this conversation", gateLines())
	m["pending_list_empty"] = cards.GateList("Waiting in this conversation", nil)
	return m
}

// maxCardBytes is Teams' limit on a message with a card.
const maxCardBytes = 28 * 1024

func TestCardsUnderTeamsLimit(t *testing.T) {
	for name, c := range allCards() {
		raw, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) > maxCardBytes {
			t.Errorf("%s: %d bytes, over Teams' %d", name, len(raw), maxCardBytes)
		}
	}
}

// checkCard asserts the basics every card must meet and returns the types
// of actions that reach the bot (Execute, Submit, ShowCard) in it.
func checkCard(t *testing.T, name string, c *cards.Card) (botActions []string) {
	t.Helper()
	raw, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("%s: marshal: %v", name, err)
	}
	var root map[string]any
	if err := json.Unmarshal(raw, &root); err != nil {
		t.Fatalf("%s: not a JSON object: %v", name, err)
	}
	if root["type"] != "AdaptiveCard" || root["version"] != "1.5" ||
		root["$schema"] != "http://adaptivecards.io/schemas/adaptive-card.json" {
		t.Errorf("%s: root type/version/$schema = %v/%v/%v", name, root["type"], root["version"], root["$schema"])
	}
	if _, ok := root["body"].([]any); !ok {
		t.Errorf("%s: body is not an array", name)
	}
	inputs := map[string]bool{}
	var walk func(path string, v any, inRefresh bool)
	walk = func(path string, v any, inRefresh bool) {
		switch v := v.(type) {
		case []any:
			for i, e := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), e, inRefresh)
			}
		case map[string]any:
			typ, _ := v["type"].(string)
			switch typ {
			case "Action.Execute":
				botActions = append(botActions, typ)
				verb, _ := v["verb"].(string)
				data, _ := v["data"].(map[string]any)
				key := "gateId"
				if verb == cards.VerbForm || verb == cards.VerbRun {
					key = "pipeline"
				}
				if verb == "" || data == nil || data[key] == "" || data[key] == nil || data["verb"] != verb {
					t.Errorf("%s %s: Action.Execute needs verb and data{verb same, %s}: %v", name, path, key, v)
				}
				if st, ok := v["style"]; ok && st != "positive" && st != "destructive" {
					t.Errorf("%s %s: action style %v", name, path, st)
				}
				if !inRefresh {
					fb, _ := v["fallback"].(map[string]any)
					if fb == nil || fb["type"] != "Action.Submit" {
						t.Errorf("%s %s: Action.Execute without an Action.Submit fallback", name, path)
					} else if fmt.Sprint(fb["data"]) != fmt.Sprint(data) {
						t.Errorf("%s %s: fallback data %v differs from %v", name, path, fb["data"], data)
					}
				}
			case "Action.Submit", "Action.ShowCard":
				botActions = append(botActions, typ)
			case "Action.OpenUrl":
				u, _ := v["url"].(string)
				if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
					t.Errorf("%s %s: OpenUrl with url %q", name, path, u)
				}
			case "TextBlock":
				if c, ok := v["color"]; ok && (c == "good" || c == "warning") {
					t.Errorf("%s %s: low-contrast %v text", name, path, c)
				}
			case "Container", "ColumnSet":
				switch st := v["style"]; st {
				case nil, "default", "emphasis", "good", "attention", "warning", "accent":
				default:
					t.Errorf("%s %s: container style %v", name, path, st)
				}
			case "Image":
				if u, _ := v["url"].(string); !strings.HasPrefix(u, "data:image/png;base64,") {
					t.Errorf("%s %s: image is not a PNG data URI", name, path)
				}
			case "Input.Text", "Input.Number", "Input.Toggle", "Input.ChoiceSet":
				id, _ := v["id"].(string)
				if id == "" || inputs[id] {
					t.Errorf("%s %s: input id %q missing or repeated", name, path, id)
				}
				inputs[id] = true
			case "":
				if !strings.HasSuffix(path, ".data") && !strings.HasSuffix(path, ".msteams") && !strings.Contains(path, ".facts[") &&
					!strings.HasSuffix(path, ".refresh") && !strings.Contains(path, ".choices[") && !strings.HasSuffix(path, ".mentioned") {
					t.Errorf("%s %s: object without type", name, path)
				}
			}
			for k, e := range v {
				walk(path+"."+k, e, inRefresh || k == "refresh")
			}
		}
	}
	walk("$", root, false)
	return botActions
}

func TestCardsValid(t *testing.T) {
	for name, c := range allCards() {
		checkCard(t, name, c)
	}
}

func TestFinalCardsHaveNoBotActions(t *testing.T) {
	for _, tc := range gateCases() {
		acts := checkCard(t, tc.name, cards.Gate(tc.gate, tc.view))
		if tc.gate.State.Final() && len(acts) > 0 {
			t.Errorf("%s: final card has actions that reach the bot: %v", tc.name, acts)
		}
		if tc.gate.State == approvals.StatePending && len(acts) == 0 {
			t.Errorf("%s: pending card has no buttons", tc.name)
		}
	}
}

func TestGateButtons(t *testing.T) {
	verbs := func(c *cards.Card) string {
		var out []string
		raw, _ := json.Marshal(c.Actions)
		var acts []map[string]any
		if err := json.Unmarshal(raw, &acts); err != nil {
			t.Fatal(err)
		}
		for _, a := range acts {
			switch a["type"] {
			case "Action.Execute":
				out = append(out, a["verb"].(string))
			case "Action.ShowCard":
				inner := a["card"].(map[string]any)["actions"].([]any)[0].(map[string]any)
				out = append(out, "show:"+inner["verb"].(string))
			case "Action.OpenUrl":
				out = append(out, "url")
			}
		}
		return strings.Join(out, ",")
	}
	tests := []struct {
		name string
		g    *approvals.Gate
		v    cards.GateView
		want string
	}{
		{"pending", gate(), view(), "approve,show:reject"},
		{"running, may cancel", gate(state(approvals.StateRunning), run("running", runURL, "")), view(func(v *cards.GateView) { v.CanCancel = true }), "cancel,url"},
		{"running, may not cancel", gate(state(approvals.StateRunning), run("running", runURL, "")), view(), "url"},
		{"running, bad url scheme", gate(state(approvals.StateRunning), run("running", "javascript:alert(1)", "")), view(), ""},
		{"trigger failed, may retry", gate(state(approvals.StateTriggerFailed)), view(func(v *cards.GateView) { v.CanRetry = true }), "retry"},
		{"trigger failed, may not retry", gate(state(approvals.StateTriggerFailed)), view(), ""},
		{"succeeded, cancel flag ignored", gate(state(approvals.StateSucceeded), run("succeeded", runURL, "")), view(func(v *cards.GateView) { v.CanCancel = true; v.CanRetry = true }), "url"},
		{"approved", gate(state(approvals.StateApproved)), view(func(v *cards.GateView) { v.CanCancel = true; v.CanRetry = true }), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := verbs(cards.Gate(tc.g, tc.v)); got != tc.want {
				t.Errorf("buttons = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRejectReasonInput(t *testing.T) {
	raw, _ := json.Marshal(cards.Gate(gate(), view()))
	var card struct {
		Actions []struct {
			Type string `json:"type"`
			Card struct {
				Body []map[string]any `json:"body"`
			} `json:"card"`
		} `json:"actions"`
	}
	if err := json.Unmarshal(raw, &card); err != nil {
		t.Fatal(err)
	}
	for _, a := range card.Actions {
		if a.Type != "Action.ShowCard" {
			continue
		}
		in := a.Card.Body[0]
		if in["type"] != "Input.Text" || in["id"] != "reason" || in["label"] != "Reason (optional)" || in["maxLength"] != float64(500) || in["isRequired"] != nil {
			t.Errorf("reason input = %v", in)
		}
		return
	}
	t.Fatal("no Action.ShowCard on a pending card")
}

func TestRefreshOnlyWhileLive(t *testing.T) {
	for _, tc := range gateCases() {
		c := cards.Gate(tc.gate, tc.view)
		if tc.gate.State.Final() != (c.Refresh == nil) {
			t.Errorf("%s: refresh = %v on state %s", tc.name, c.Refresh, tc.gate.State)
		}
		if c.Refresh != nil {
			raw, _ := json.Marshal(c.Refresh)
			if !strings.Contains(string(raw), `"verb":"refresh"`) || len(c.Refresh.UserIDs) > 60 {
				t.Errorf("%s: refresh = %s", tc.name, raw)
			}
			for _, id := range c.Refresh.UserIDs {
				if !strings.HasPrefix(id, "29:") {
					t.Errorf("%s: refresh user id %q is not a Teams user id", tc.name, id)
				}
			}
		}
	}
}

// TestCardSizeBound feeds every state the worst inputs we can think of and
// checks the card stays far below Teams' limits (28 KB channel posts, 80 KB
// bot messages).
func TestCardSizeBound(t *testing.T) {
	const limit = 24 * 1024 // leaves room under Teams' 28 KB for the activity around the card
	nasty := []string{
		strings.Repeat("*", 5_000),        // every char escaped: 3 bytes in JSON
		strings.Repeat("😀", 5_000),        // 4-byte runes
		strings.Repeat("<\"\\", 2_500),    // HTML-, JSON- and markdown-escaped
		strings.Repeat("a\n", 2_500),      // many lines
		strings.Repeat("\u0001\u2028", 9), // control characters
	}
	for ni, s := range nasty {
		huge := func(g *approvals.Gate) {
			g.Pipeline = s
			g.Message = s
			g.Requester.Name = s
			g.Error = s
			g.Reason = s
			g.Origin = "api:" + s
			g.DecidedBy = &approvals.Person{Name: s}
			g.Inputs = map[string]any{}
			for i := range 300 {
				g.Inputs[fmt.Sprintf("%s%04d", s[:min(len(s), 300)], i)] = s
			}
			g.Policy.Required = 5000
			for i := range 2000 {
				g.Policy.Approvers = append(g.Policy.Approvers, s[:min(len(s), 400)])
				g.Votes = append(g.Votes, approvals.Vote{By: approvals.Person{ID: fmt.Sprint(i), Name: s}, Approve: true, At: t0})
			}
			g.Run = &pipelines.Run{ID: s, URL: "https://ci.example.com/" + s, Status: pipelines.Status(s), Detail: s}
		}
		for _, st := range []approvals.State{approvals.StatePending, approvals.StateApproved, approvals.StateTriggering,
			approvals.StateRunning, approvals.StateSucceeded, approvals.StateFailed, approvals.StateCancelled,
			approvals.StateTriggerFailed, approvals.StateRejected, approvals.StateExpired} {
			v := view(func(v *cards.GateView) {
				v.Description = s
				v.Notice = s
				v.CanCancel, v.CanRetry = true, true
				v.Eligible = nil
				for i := range 2000 {
					id := fmt.Sprintf("29:%0125d", i) // longer than real Teams user ids (about 80 bytes)
					v.Eligible = append(v.Eligible, approvals.Person{ID: id, AADObjectID: id, UPN: s[:min(len(s), 400)], Name: s})
				}
				v.Names = map[string]string{s[:min(len(s), 400)]: s}
				v.InputDescriptions = map[string]string{}
				for n := range 300 {
					v.InputDescriptions[fmt.Sprintf("%s%04d", s[:min(len(s), 300)], n)] = s
				}
			})
			raw, err := json.Marshal(cards.Gate(gate(huge, state(st)), v))
			if err != nil {
				t.Fatal(err)
			}
			if len(raw) > limit {
				t.Errorf("nasty #%d, %s: card is %d bytes, want ≤ %d", ni, st, len(raw), limit)
			}
			if ni < 2 && !strings.Contains(string(raw), "…") {
				t.Errorf("nasty #%d, %s: no ellipsis in a truncated card", ni, st)
			}
		}
		// Help and notices are bounded too.
		var ps []cards.PipelineInfo
		for range 100 {
			p := cards.PipelineInfo{Name: s, Description: s}
			for range 30 {
				p.Inputs = append(p.Inputs, cards.InputInfo{Name: s, Type: s, Description: s, Default: s})
			}
			ps = append(ps, p)
		}
		lines := make([]string, 300)
		for i := range lines {
			lines[i] = s
		}
		var gl []cards.GateLine
		vals, errs := map[string]string{}, map[string]string{"": s}
		for i := range 500 {
			gl = append(gl, cards.GateLine{ID: "g_" + s, Pipeline: s, Headline: s, State: approvals.StatePending, Requester: s, CanApprove: true})
			vals[s+fmt.Sprint(i)], errs[s+fmt.Sprint(i)] = s, s
		}
		form := ps[0]
		for i := range form.Inputs {
			form.Inputs[i].Name = s + fmt.Sprint(i)
			form.Inputs[i].Enum = lines
			form.Inputs[i].Pattern = s
		}
		form.Inputs[1].Type, form.Inputs[2].Type = "number", "boolean"
		for name, c := range map[string]*cards.Card{"help": cards.Help(ps), "notice": cards.Notice(s, lines...),
			"message": cards.Message(cards.ToneRefusal, s, lines...), "pipelines": cards.PipelineList(ps), "form": cards.Form(form, vals, errs),
			"gate list": cards.GateList(s, gl), "confirm": cards.ConfirmApprove(gate(func(g *approvals.Gate) {
				g.Pipeline, g.Inputs = s, map[string]any{"version": s}
			}), view(func(v *cards.GateView) { v.Target = s }))} {
			raw, _ := json.Marshal(c)
			if len(raw) > limit {
				t.Errorf("nasty #%d, %s: card is %d bytes, want ≤ %d", ni, name, len(raw), limit)
			}
		}
	}
}

// TestUserTextIsEscaped puts markdown into every user-controlled field and
// checks that no text on the card can be read as a link, emphasis, code or
// a list by a CommonMark renderer.
func TestUserTextIsEscaped(t *testing.T) {
	evil := "[click here](https://evil.example) **bold** _it_ `code` ~~s~~ ![img](https://evil.example/x.png)"
	g := gate(func(g *approvals.Gate) {
		g.Pipeline = "deploy_[api](https://evil.example)"
		g.Message = evil + "\n- item\n1. first\n# heading\n> quote"
		g.Requester.Name = "**Mallory**"
		g.Inputs = map[string]any{"url_[x](y)": evil, "list": "- not a list", "n": "2) two"}
		g.Origin = "api:*tok*"
	})
	for _, st := range []approvals.State{approvals.StatePending, approvals.StateRejected, approvals.StateTriggerFailed, approvals.StateRunning} {
		g := *g
		g.State = st
		g.DecidedBy = &approvals.Person{Name: "[x](y)"}
		g.Reason = evil
		g.Error = evil
		g.Run = &pipelines.Run{ID: "_1_", Detail: evil, Status: "running"}
		v := view(func(v *cards.GateView) { v.Description = evil; v.Notice = evil })
		for _, s := range texts(t, cards.Gate(&g, v)) {
			if m := markup(s); m != "" {
				t.Errorf("%s: text %q has live markdown %q", st, s, m)
			}
		}
	}
	for _, s := range texts(t, cards.Notice(evil, evil, "- "+evil)) {
		if m := markup(s); m != "" {
			t.Errorf("notice: text %q has live markdown %q", s, m)
		}
	}
	hp := []cards.PipelineInfo{{Name: evil, Description: evil, Inputs: []cards.InputInfo{{Name: evil, Type: evil, Description: evil, Default: evil}}}}
	helpTexts := texts(t, cards.Help(hp))
	for i, s := range helpTexts {
		if i <= slices.Index(helpTexts, "Pipelines") { // the fixed usage lines carry our own code spans
			continue
		}
		if m := markup(s); m != "" {
			t.Errorf("help: text %q has live markdown %q", s, m)
		}
	}
}

// markup returns the first piece of s a markdown renderer would treat as
// markup, ignoring the bold markers gatebot puts around names itself ("**"
// followed or preceded by an escaped or plain word). An empty result means
// the text renders literally.
func markup(s string) string {
	for line := range strings.SplitSeq(s, "\n") {
		trimmed := strings.TrimLeft(line, " ")
		for _, p := range []string{"- ", "+ ", "# ", "> ", "* "} {
			if strings.HasPrefix(trimmed, p) {
				return p
			}
		}
		if i := strings.IndexFunc(trimmed, func(r rune) bool { return r < '0' || r > '9' }); i > 0 && (trimmed[i] == '.' || trimmed[i] == ')') {
			return trimmed[:i+1]
		}
		line = strings.ReplaceAll(line, "**", "") // gatebot's own bold; escaped user stars are \*
		for i := 0; i < len(line); i++ {
			switch line[i] {
			case '\\':
				i++ // escaped: literal
			case '[', ']', '*', '_', '`', '~':
				return line[i:min(len(line), i+12)]
			}
		}
	}
	return ""
}

func TestDurationsAndTimes(t *testing.T) {
	tests := []struct {
		elapsed time.Duration
		want    string
	}{
		{0, "0s"}, {45 * time.Second, "45s"}, {3*time.Minute + 12*time.Second, "3m 12s"},
		{2*time.Hour + 5*time.Minute + 59*time.Second, "2h 05m"}, {-time.Minute, "0s"},
	}
	for _, tc := range tests {
		g := gate(state(approvals.StateRunning), run("running", "", ""), func(g *approvals.Gate) { g.Votes = nil })
		v := view(func(v *cards.GateView) { v.RunStarted = t0; v.Now = t0.Add(tc.elapsed) })
		want := "Run **42** is running · " + tc.want + " so far"
		if got := texts(t, cards.Gate(g, v)); !contains(got, want) {
			t.Errorf("elapsed %v: texts lack %q: %q", tc.elapsed, want, got)
		}
	}
}
