package northflank_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/northflank"
)

const gate = "g_abcdefghij0123456789"

func TestRunName(t *testing.T) {
	tests := []struct{ prefix, gate, want string }{
		{"deploy-api", gate, "deploy-api gabcdefghij0123456789"},
		{"Deploy API!!", gate, "Deploy-API gabcdefghij0123456789"},
		{"2fast_2furious", gate, "fast-2furious gabcdefghij0123456789"},
		{"", gate, "gatebot gabcdefghij0123456789"},
		{"🚀 ", gate, "gatebot gabcdefghij0123456789"},
		{"a-very-long-pipeline-name-that-goes-on", gate, "a-very-long-pipel gabcdefghij0123456789"},
		{"abcdefghijklmnop-rest", gate, "abcdefghijklmnop gabcdefghij0123456789"},
		{"x", "g-1", "x g1"},
		{"deploy", "gate id with a really long tail 0123456789abcdef", "deploy g"}, // hashed uid, checked below
	}
	for _, tt := range tests {
		got, err := northflank.RunName(tt.prefix, tt.gate)
		if err != nil {
			t.Errorf("RunName(%q, %q): %v", tt.prefix, tt.gate, err)
			continue
		}
		if !strings.HasPrefix(got, tt.want) || (len(tt.want) > 9 && got != tt.want) {
			t.Errorf("RunName(%q, %q) = %q, want %q", tt.prefix, tt.gate, got, tt.want)
		}
		if err := northflank.CheckName(got); err != nil {
			t.Errorf("RunName(%q) = %q fails the pattern: %v", tt.prefix, got, err)
		}
	}
	if _, err := northflank.RunName("x", "__"); err == nil {
		t.Error("gate id without letters accepted")
	}
	a, _ := northflank.RunName("deploy", strings.Repeat("x", 40)+"1")
	b, _ := northflank.RunName("deploy", strings.Repeat("x", 40)+"2")
	if a == b || len(a) > 39 {
		t.Errorf("hashed names %q, %q", a, b)
	}
}

// TestRunNameAlwaysValid throws random prefixes at RunName: the result must
// always satisfy Northflank's rules and keep the gate id's unique part.
func TestRunNameAlwaysValid(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("aZ09 -_.!@#éü🚀\t")
	for i := 0; i < 5000; i++ {
		n := r.IntN(60)
		var b strings.Builder
		for j := 0; j < n; j++ {
			b.WriteRune(alphabet[r.IntN(len(alphabet))])
		}
		got, err := northflank.RunName(b.String(), gate)
		if err != nil {
			t.Fatalf("RunName(%q): %v", b.String(), err)
		}
		if err := northflank.CheckName(got); err != nil || !strings.HasSuffix(got, " gabcdefghij0123456789") {
			t.Fatalf("RunName(%q) = %q: %v", b.String(), got, err)
		}
	}
}

func FuzzRunName(f *testing.F) {
	f.Add("deploy-api", gate)
	f.Add("", "g_1")
	f.Fuzz(func(t *testing.T, prefix, gateID string) {
		got, err := northflank.RunName(prefix, gateID)
		if err != nil {
			return // gate ids without letters or digits are refused
		}
		if err := northflank.CheckName(got); err != nil {
			t.Fatalf("RunName(%q, %q) = %q: %v", prefix, gateID, got, err)
		}
	})
}

func TestCheckNameAndDescription(t *testing.T) {
	for _, ok := range []string{"Example Run", "abc", "a-b c-d", strings.Repeat("a", 39)} {
		if err := northflank.CheckName(ok); err != nil {
			t.Errorf("CheckName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"ab", "1abc", "a--b", "a b ", "a_b", strings.Repeat("a", 40), "déploy"} {
		if err := northflank.CheckName(bad); err == nil {
			t.Errorf("CheckName(%q) accepted", bad)
		}
	}
	if err := northflank.CheckDescription("This is a description for the release-flow run."); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"", "mail me @ home", "#1", "<b>", strings.Repeat("a", 201)} {
		if err := northflank.CheckDescription(bad); err == nil {
			t.Errorf("CheckDescription(%q) accepted", bad)
		}
	}
}

func TestDescription(t *testing.T) {
	req := pipelines.Request{GateID: gate, Requester: "Zoë <zoe@example.com>", Approvers: []string{"alice", "bob #2"}, Message: "ship it 🚀"}
	got := northflank.Description("", req)
	want := "ship it - Approved in Teams by alice, bob 2, requested by Zo zoe at example.com (gatebot gate g_abcdefghij0123456789)"
	if got != want {
		t.Errorf("Description = %q\nwant          %q", got, want)
	}
	if err := northflank.CheckDescription(got); err != nil {
		t.Error(err)
	}
	long := northflank.Description("", pipelines.Request{GateID: gate, Message: strings.Repeat("word ", 100)})
	if len(long) > 200 || northflank.CheckDescription(long) != nil {
		t.Errorf("long description %d chars", len(long))
	}
	if got := northflank.Description("Nightly <release>", req); got != "Nightly release" {
		t.Errorf("configured = %q", got)
	}
}
