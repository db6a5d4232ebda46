package cards_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/cards"
	"github.com/gatebot/gatebot/pipelines"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the current output")

var t0 = time.Date(2026, 3, 10, 14, 0, 0, 0, time.UTC)

var (
	alice = approvals.Person{ID: "29:alice", AADObjectID: "a11ce", UPN: "alice@example.com", Name: "Alice Example"}
	bob   = approvals.Person{ID: "29:bob", AADObjectID: "b0b", UPN: "bob@example.com", Name: "Bob Builder"}
	carol = approvals.Person{ID: "29:carol", AADObjectID: "ca201", UPN: "carol@example.com", Name: "Carol"}
)

// gate returns a deploy-api gate requested by Alice at t0, changed by opts.
func gate(opts ...func(*approvals.Gate)) *approvals.Gate {
	g := &approvals.Gate{
		ID:        "g-01HX",
		Pipeline:  "deploy-api",
		Inputs:    map[string]any{"version": "1.4.2", "dry_run": false, "replicas": float64(3)},
		Message:   "Hotfix for the login bug",
		Requester: alice,
		Origin:    "teams",
		Policy: approvals.Policy{Required: 2, Approvers: []string{"bob@example.com", "carol@example.com"},
			Timeout: time.Hour},
		State:     approvals.StatePending,
		CreatedAt: t0,
		Deadline:  t0.Add(time.Hour),
		UpdatedAt: t0,
	}
	for _, o := range opts {
		o(g)
	}
	return g
}

func state(s approvals.State) func(*approvals.Gate) {
	return func(g *approvals.Gate) { g.State = s }
}

func approvedBy(ps ...approvals.Person) func(*approvals.Gate) {
	return func(g *approvals.Gate) {
		for i, p := range ps {
			g.Votes = append(g.Votes, approvals.Vote{By: p, Approve: true, At: t0.Add(time.Duration(5*(i+1)) * time.Minute)})
		}
	}
}

func run(status, url, detail string) func(*approvals.Gate) {
	return func(g *approvals.Gate) {
		g.Run = &pipelines.Run{ID: "42", URL: url, Status: pipelines.Status(status), Detail: detail}
	}
}

func updated(d time.Duration) func(*approvals.Gate) {
	return func(g *approvals.Gate) { g.UpdatedAt = t0.Add(d) }
}

func decidedBy(p approvals.Person, reason string) func(*approvals.Gate) {
	return func(g *approvals.Gate) { g.DecidedBy = &p; g.Reason = reason }
}

type gateCase struct {
	name string
	gate *approvals.Gate
	view cards.GateView
}

// view is the default view: described pipeline, input order, Now = t0+13m.
func view(mod ...func(*cards.GateView)) cards.GateView {
	v := cards.GateView{
		Description:       "Deploy the API to production",
		InputOrder:        []string{"version", "replicas", "dry_run"},
		InputDescriptions: map[string]string{"version": "Image tag to deploy", "dry_run": "Plan only, change nothing"},
		Now:               t0.Add(13 * time.Minute),
		Names:             map[string]string{"carol@example.com": "Carol Danvers"},
		Eligible:          []approvals.Person{bob, carol},
	}
	for _, m := range mod {
		m(&v)
	}
	return v
}

const runURL = "https://ci.example.com/runs/42"

func gateCases() []gateCase {
	return []gateCase{
		{"pending", gate(), view()},
		{"pending_partial", gate(approvedBy(bob)), view()},
		{"pending_notice", gate(approvedBy(bob)), view(func(v *cards.GateView) { v.Notice = "You already approved this gate." })},
		{"pending_api_anyone", gate(func(g *approvals.Gate) {
			g.Origin = "api:release-bot"
			g.Policy = approvals.Policy{Required: 1, AllowSelfApproval: true}
			g.Message = ""
			g.Inputs = nil
		}), view(func(v *cards.GateView) { v.Description = "" })},
		{"approved", gate(state(approvals.StateApproved), approvedBy(bob, carol)), view()},
		{"triggering_attempt", gate(state(approvals.StateTriggering), approvedBy(bob, carol), func(g *approvals.Gate) { g.Attempts = 2 }), view()},
		{"running", gate(state(approvals.StateRunning), approvedBy(bob, carol), run("running", runURL, "Deploying step 2 of 3")),
			view(func(v *cards.GateView) { v.CanCancel = true })},
		{"running_queued", gate(state(approvals.StateRunning), approvedBy(bob, carol), run("queued", "", "")), view()},
		{"succeeded", gate(state(approvals.StateSucceeded), approvedBy(bob, carol), run("succeeded", runURL, ""), updated(21*time.Minute+30*time.Second)),
			view(func(v *cards.GateView) { v.CanCancel = true; v.Now = t0.Add(2 * time.Hour) })},
		{"failed", gate(state(approvals.StateFailed), approvedBy(bob, carol), run("failed", runURL, "Job 'migrate' exited with code 1"), updated(12*time.Minute)), view()},
		{"cancelled_run", gate(state(approvals.StateCancelled), approvedBy(bob, carol), run("cancelled", runURL, ""), decidedBy(bob, ""), updated(15*time.Minute)), view()},
		{"cancelled_pending", gate(state(approvals.StateCancelled), decidedBy(alice, "Wrong version")), view()},
		{"trigger_failed", gate(state(approvals.StateTriggerFailed), approvedBy(bob, carol), func(g *approvals.Gate) {
			g.Error = "humanitec: trigger run: HTTP 503"
			g.Attempts = 3
		}), view(func(v *cards.GateView) { v.CanRetry = true; v.CanCancel = true })},
		{"trigger_failed_readonly", gate(state(approvals.StateTriggerFailed), approvedBy(bob, carol), func(g *approvals.Gate) { g.Error = "provider unavailable" }), view()},
		{"rejected", gate(state(approvals.StateRejected), decidedBy(carol, "Not during the freeze")), view()},
		{"rejected_no_reason", gate(state(approvals.StateRejected), approvedBy(bob), decidedBy(carol, "")), view()},
		{"expired", gate(state(approvals.StateExpired), approvedBy(bob), updated(time.Hour)),
			view(func(v *cards.GateView) { v.Location = time.FixedZone("CET", 3600) })},
	}
}

// marshal encodes a card the way the golden files store it.
func marshal(t *testing.T, c *cards.Card) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(c); err != nil {
		t.Fatalf("marshal card: %v", err)
	}
	return buf.Bytes()
}

// extraGateCases are the renderings besides the shared one, and policies
// the default fixture lacks.
func extraGateCases() []gateCase {
	return []gateCase{
		{"pending_approver", gate(approvedBy(bob)), view(func(v *cards.GateView) { v.Role = cards.RoleApprover })},
		{"pending_readonly", gate(approvedBy(bob)), view(func(v *cards.GateView) { v.Role = cards.RoleObserver })},
		{"pending_confirm", gate(), view(func(v *cards.GateView) { v.Confirm = true; v.Target = "prod" })},
		{"pending_refused", gate(), view(func(v *cards.GateView) {
			v.Notice = "You cannot approve your own request."
			v.NoticeTone = cards.ToneRefusal
		})},
		{"pending_recorded", gate(approvedBy(bob)), view(func(v *cards.GateView) {
			v.Notice = "Your approval is recorded (1 of 2)."
			v.NoticeTone = cards.ToneSuccess
			v.Role = cards.RoleObserver
		})},
		{"pending_unresolved", gate(func(g *approvals.Gate) {
			g.Policy.Approvers = []string{"aad:d00d", "dave@example.com"}
			g.Requester = approvals.Person{ID: "api:release-bot", UPN: "ci@example.com"}
			g.Origin = "api:release-bot"
		}), view(func(v *cards.GateView) { v.Eligible = nil; v.Names = map[string]string{"d00d": "Dana Scully"} })},
	}
}

func golden(t *testing.T, name string, c *cards.Card) {
	t.Helper()
	got := marshal(t, c)
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cards -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs from golden (-want +got):\n%s", path, diff)
	}
}

func TestGolden(t *testing.T) {
	all := allCards()
	if *update {
		old, _ := filepath.Glob(filepath.Join("testdata", "*.golden.json"))
		for _, f := range old {
			if _, ok := all[strings.TrimSuffix(filepath.Base(f), ".golden.json")]; !ok {
				_ = os.Remove(f)
			}
		}
	}
	for name, c := range all {
		t.Run(name, func(t *testing.T) { golden(t, name, c) })
	}
	// Every golden file is a card the tests still build.
	files, _ := filepath.Glob(filepath.Join("testdata", "*.golden.json"))
	for _, f := range files {
		if _, ok := all[strings.TrimSuffix(filepath.Base(f), ".golden.json")]; !ok && !*update {
			t.Errorf("%s: no card builds it any more", f)
		}
	}
}

func TestGateIsDeterministic(t *testing.T) {
	// Map iteration order must not leak into the card (inputs outside
	// InputOrder are sorted).
	g := gate(func(g *approvals.Gate) {
		g.Inputs = map[string]any{}
		for _, k := range strings.Fields("k z y x w v u t s r q p o n m l") {
			g.Inputs[k] = k
		}
	})
	first := marshal(t, cards.Gate(g, view()))
	for range 20 {
		if got := marshal(t, cards.Gate(g, view())); !bytes.Equal(first, got) {
			t.Fatalf("card changed between builds:\n%s\n%s", first, got)
		}
	}
}

func TestGateNil(t *testing.T) {
	c := cards.Gate(nil, view())
	if !strings.Contains(string(marshal(t, c)), "no longer exists") {
		t.Errorf("nil gate card = %s", marshal(t, c))
	}
}

// texts returns every text a card shows: TextBlock texts and fact titles and
// values, in order.
func texts(t *testing.T, c *cards.Card) []string {
	t.Helper()
	var doc any
	if err := json.Unmarshal(marshal(t, c), &doc); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			switch v["type"] {
			case "TextBlock":
				out = append(out, v["text"].(string))
			case "FactSet":
				for _, f := range v["facts"].([]any) {
					f := f.(map[string]any)
					out = append(out, f["title"].(string), f["value"].(string))
				}
			}
			for _, k := range []string{"body", "items", "columns", "actions", "card"} {
				walk(v[k])
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(doc)
	return out
}

func TestGateTexts(t *testing.T) {
	// The sentences the brief promises, checked independently of goldens.
	tests := []struct {
		name string
		gate *approvals.Gate
		view cards.GateView
		want []string
	}{
		{"pending quorum", gate(approvedBy(bob)), view(), []string{"deploy-api 1.4.2", "**Approval needed** · 1 of 2 approved · expires in 47 min",
			"Approved by Bob Builder · {{DATE(2026-03-10T14:05:00Z, SHORT)}} {{TIME(2026-03-10T14:05:00Z)}}",
			"Waiting for 1 more approval from <at>Carol Danvers</at>",
			"Expires {{DATE(2026-03-10T15:00:00Z, SHORT)}} {{TIME(2026-03-10T15:00:00Z)}} (in 47 min)", "Gate g-01HX"}},
		{"approver view", gate(approvedBy(bob)), view(func(v *cards.GateView) { v.Role = cards.RoleApprover }),
			[]string{"**Your approval is requested** · 1 more approval needed", "Can approve: <at>Carol Danvers</at>"}},
		{"anyone may approve", gate(func(g *approvals.Gate) { g.Policy.Approvers = nil }), view(),
			[]string{"Waiting for 2 more approvals from anyone in this conversation except the requester"}},
		{"unresolved approvers by name", gate(func(g *approvals.Gate) { g.Policy.Approvers = []string{"aad:d00d", "dave@example.com"} }),
			view(func(v *cards.GateView) { v.Eligible = nil; v.Names = map[string]string{"d00d": "Dana Scully"} }),
			[]string{"Waiting for 2 more approvals from **Dana Scully** or **dave@example.com**"}},
		{"approved", gate(state(approvals.StateApproved), approvedBy(bob, carol)), view(), []string{"**Approved**",
			"Approved by Bob Builder · {{DATE(2026-03-10T14:05:00Z, SHORT)}} {{TIME(2026-03-10T14:05:00Z)}}", "Starting the pipeline…"}},
		{"running elapsed", gate(state(approvals.StateRunning), approvedBy(bob, carol), run("running", "", "")), view(),
			[]string{"**Running** · run 42", "Run **42** is running · 3m 00s so far"}},
		{"queued is its own word", gate(state(approvals.StateRunning), approvedBy(bob, carol), run("queued", "", "")), view(),
			[]string{"**Queued** · run 42", "Run **42** is queued at the provider · 3m 00s so far"}},
		{"run started override", gate(state(approvals.StateRunning), approvedBy(bob, carol), run("running", "", "")),
			view(func(v *cards.GateView) { v.RunStarted = t0.Add(12 * time.Minute) }), []string{"Run **42** is running · 1m 00s so far"}},
		{"succeeded once", gate(state(approvals.StateSucceeded), approvedBy(bob, carol), run("succeeded", "", ""), updated(21*time.Minute+30*time.Second)), view(),
			[]string{"**Succeeded** · run 42", "Run **42** succeeded in 11m 30s"}},
		{"rejected", gate(state(approvals.StateRejected), decidedBy(carol, "Not now")), view(),
			[]string{"Rejected by **Carol Danvers** · {{DATE(2026-03-10T14:00:00Z, SHORT)}} {{TIME(2026-03-10T14:00:00Z)}}", "“Not now”"}},
		{"expired", gate(state(approvals.StateExpired)), view(), []string{"Expired {{DATE(2026-03-10T15:00:00Z, SHORT)}} {{TIME(2026-03-10T15:00:00Z)}} with 0 of 2 approvals"}},
		{"cancelled", gate(state(approvals.StateCancelled), decidedBy(bob, "")), view(), []string{"Cancelled by **Bob Builder** · {{DATE(2026-03-10T14:00:00Z, SHORT)}} {{TIME(2026-03-10T14:00:00Z)}}"}},
		{"trigger failed", gate(state(approvals.StateTriggerFailed), approvedBy(bob, carol), func(g *approvals.Gate) { g.Error = "HTTP 503" }), view(),
			[]string{"**Could not start**", "Could not start the pipeline: HTTP 503"}},
		{"short id", gate(func(g *approvals.Gate) { g.ID = "g_abcd1234efgh5678" }), view(), []string{`Gate g\_abcd1234`}},
		{"notice first", gate(), view(func(v *cards.GateView) { v.Notice = "You already approved this gate." }), []string{"You already approved this gate."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := texts(t, cards.Gate(tc.gate, tc.view))
			for _, w := range tc.want {
				if !contains(got, w) {
					t.Errorf("card texts lack %q; have:\n%s", w, strings.Join(got, "\n"))
				}
			}
		})
	}
	// The notice, when set, is the very first line.
	got := texts(t, cards.Gate(gate(), view(func(v *cards.GateView) { v.Notice = "Heads up" })))
	if got[0] != "Heads up" && !strings.HasPrefix(got[0], "Heads up") {
		t.Errorf("first text = %q, want the notice", got[0])
	}
}

func TestGateInputOrder(t *testing.T) {
	g := gate(func(g *approvals.Gate) {
		g.Inputs = map[string]any{"b": "2", "a": "1", "zeta": "z", "alpha": true, "n": 1.5}
	})
	v := view(func(v *cards.GateView) { v.InputOrder = []string{"zeta", "missing", "b"} })
	got := texts(t, cards.Gate(g, v))
	var titles []string
	for i, s := range got {
		if i+1 < len(got) && (s == "zeta" || s == "b" || s == "a" || s == "alpha" || s == "n") {
			titles = append(titles, s+"="+got[i+1])
		}
	}
	want := []string{"zeta=z", "b=2", "a=1", "alpha=true", "n=1.5"}
	if diff := cmp.Diff(want, titles); diff != "" {
		t.Errorf("input facts (-want +got):\n%s", diff)
	}
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

func BenchmarkGatePendingMarshal(b *testing.B) {
	g, v := gate(approvedBy(bob)), view()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(cards.Gate(g, v)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGatePendingMarshalOnly isolates encoding from building: the card
// is built once and marshalled inside an outer value, as the bot does when
// it sends the card as an activity attachment.
func BenchmarkGatePendingMarshalOnly(b *testing.B) {
	c := cards.Gate(gate(approvedBy(bob)), view())
	att := struct {
		ContentType string `json:"contentType"`
		Content     any    `json:"content"`
	}{cards.ContentType, c}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(att); err != nil {
			b.Fatal(err)
		}
	}
}
