package bot

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", name, diff)
	}
}

func mustDecodeFile(t *testing.T, name string) *Activity {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	a, err := DecodeActivity(b)
	if err != nil {
		t.Fatalf("DecodeActivity(%s): %v", name, err)
	}
	return a
}

func TestDecodeActivityTeamsChannelMessage(t *testing.T) {
	a := mustDecodeFile(t, "teams_channel_message.json")
	if a.Type != TypeMessage || a.ID != "1772446501123" || a.ChannelID != "msteams" {
		t.Errorf("type/id/channel = %q/%q/%q", a.Type, a.ID, a.ChannelID)
	}
	if a.From.AadObjectID != "6b1f1a5e-3c34-4a8a-9b3e-0d1f2e3a4b5c" {
		t.Errorf("from.aadObjectId = %q", a.From.AadObjectID)
	}
	if a.Conversation.ConversationType != ConversationChannel {
		t.Errorf("conversationType = %q", a.Conversation.ConversationType)
	}
	if got, want := a.TextWithoutRecipientMention(), "run deploy-api version=1.4.2"; got != want {
		t.Errorf("TextWithoutRecipientMention = %q, want %q", got, want)
	}
	wantCD := TeamsChannelData{}
	wantCD.Tenant.ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	wantCD.Team.ID, wantCD.Team.Name = "19:team456@thread.tacv2", "Platform"
	wantCD.Channel.ID, wantCD.Channel.Name = "19:abc123@thread.tacv2", "deployments"
	if diff := cmp.Diff(wantCD, a.TeamsChannelData()); diff != "" {
		t.Errorf("TeamsChannelData (-want +got):\n%s", diff)
	}
	if len(a.Mentions()) != 1 {
		t.Errorf("Mentions = %+v, want exactly the mention entity", a.Mentions())
	}
	if _, ok := a.CardAction(); ok {
		t.Error("plain message reported as a card action")
	}
}

func TestDecodeActivityTolerance(t *testing.T) {
	tests := []struct {
		name         string
		body         string
		wantValue    string
		wantCD       string
		wantEntities int
	}{
		{"value string", `{"type":"message","value":"hi"}`, `"hi"`, "", 0},
		{"value array", `{"type":"message","value":[1,2]}`, `[1,2]`, "", 0},
		{"value number", `{"type":"message","value":42}`, `42`, "", 0},
		{"value null", `{"type":"message","value":null}`, ``, "", 0},
		{"channelData string", `{"type":"message","channelData":"x"}`, ``, `"x"`, 0},
		{"channelData array", `{"type":"message","channelData":[true]}`, ``, `[true]`, 0},
		{"entities object", `{"type":"message","entities":{"type":"mention"}}`, ``, "", 0},
		{"entities string", `{"type":"message","entities":"nope"}`, ``, "", 0},
		{"entities mixed", `{"type":"message","entities":[1,"a",{"type":"mention"},null]}`, ``, "", 4},
		{"unknown fields", `{"type":"event","whatever":{"a":[1]},"name":"x"}`, ``, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := DecodeActivity([]byte(tt.body))
			if err != nil {
				t.Fatalf("DecodeActivity: %v", err)
			}
			if string(a.Value) != tt.wantValue {
				t.Errorf("value = %s, want %s", a.Value, tt.wantValue)
			}
			if string(a.ChannelData) != tt.wantCD {
				t.Errorf("channelData = %s, want %s", a.ChannelData, tt.wantCD)
			}
			if len(a.Entities) != tt.wantEntities {
				t.Errorf("entities = %d, want %d", len(a.Entities), tt.wantEntities)
			}
			// Accessors never panic and give zero values on odd shapes.
			_ = a.Mentions()
			_ = a.TextWithoutRecipientMention()
			_ = a.TeamsChannelData()
			_, _ = a.CardAction()
			_ = a.Reference()
		})
	}
}

func TestDecodeActivityMalformed(t *testing.T) {
	tests := []struct{ name, body string }{
		{"empty", ``},
		{"whitespace", "  \n"},
		{"null", `null`},
		{"array", `[{"type":"message"}]`},
		{"string", `"message"`},
		{"truncated", `{"type":"message"`},
		{"trailing garbage", `{"type":"message"} x`},
		{"missing type", `{"text":"hi"}`},
		{"blank type", `{"type":"  "}`},
		{"type not string", `{"type":1}`},
		{"text not string", `{"type":"message","text":{}}`},
		{"from not object", `{"type":"message","from":"x"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := DecodeActivity([]byte(tt.body))
			if !errors.Is(err, ErrMalformedActivity) {
				t.Fatalf("DecodeActivity = %+v, %v; want ErrMalformedActivity", a, err)
			}
		})
	}
}

func TestActivityMarshalClean(t *testing.T) {
	tests := []struct {
		name string
		act  Activity
		want string
	}{
		{"zero", Activity{}, `{"type":""}`},
		{"text", Activity{Type: TypeMessage, Text: "hi"}, `{"type":"message","text":"hi"}`},
		{"null raw fields dropped", Activity{Type: TypeMessage, Value: json.RawMessage("null"), ChannelData: json.RawMessage(" "), Entities: []json.RawMessage{nil, json.RawMessage("null")}}, `{"type":"message"}`},
		{"partial account kept", Activity{Type: TypeMessage, Conversation: ConversationAccount{ID: "c1"}}, `{"type":"message","conversation":{"id":"c1"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.act)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("got %s, want %s", b, tt.want)
			}
		})
	}
}

func TestActivityOutgoingGolden(t *testing.T) {
	act := &Activity{
		Type:        TypeMessage,
		Attachments: []Attachment{AdaptiveCardAttachment(map[string]any{"type": "AdaptiveCard", "version": "1.5"})},
		Entities:    []json.RawMessage{MentionEntity(Mention{Mentioned: ChannelAccount{ID: "29:1", Name: "Ada"}, Text: "<at>Ada</at>"})},
		ChannelData: json.RawMessage(`{"notification":{"alert":true}}`),
	}
	b, err := json.MarshalIndent(act, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "outgoing_activity.golden.json", append(b, '\n'))
}

func TestActivityRoundTrip(t *testing.T) {
	in := mustDecodeFile(t, "teams_channel_message.json")
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeActivity(b)
	if err != nil {
		t.Fatal(err)
	}
	// Raw fields are compared semantically: compaction may differ.
	norm := func(a *Activity) {
		a.ChannelData = compact(t, a.ChannelData)
		for i := range a.Entities {
			a.Entities[i] = compact(t, a.Entities[i])
		}
	}
	norm(in)
	norm(out)
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("round trip changed the activity (-in +out):\n%s", diff)
	}
}

func compact(t *testing.T, r json.RawMessage) json.RawMessage {
	t.Helper()
	if r == nil {
		return nil
	}
	var v any
	if err := json.Unmarshal(r, &v); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(v)
	return b
}

func TestTextWithoutRecipientMention(t *testing.T) {
	const bot = "28:bot"
	mention := func(id, text string) json.RawMessage {
		return MentionEntity(Mention{Mentioned: ChannelAccount{ID: id}, Text: text})
	}
	tests := []struct {
		name     string
		text     string
		entities []json.RawMessage
		want     string
	}{
		{"no mention", "  run   deploy ", nil, "run deploy"},
		{"bot mention", "<at>Gate</at> run deploy", []json.RawMessage{mention(bot, "<at>Gate</at>")}, "run deploy"},
		{"nbsp", "<at>Gate</at>&nbsp;run&nbsp;&nbsp;deploy", []json.RawMessage{mention(bot, "<at>Gate</at>")}, "run deploy"},
		{"other user kept", "<at>Gate</at> approve <at>Ada</at>", []json.RawMessage{mention(bot, "<at>Gate</at>"), mention("29:ada", "<at>Ada</at>")}, "approve <at>Ada</at>"},
		{"name in text without entity is kept", "<at>Gate</at> run", nil, "<at>Gate</at> run"},
		{"spoofed name of another id kept", "<at>Gate</at> run", []json.RawMessage{mention("29:mallory", "<at>Gate</at>")}, "<at>Gate</at> run"},
		{"mention twice", "<at>Gate</at> run <at>Gate</at>", []json.RawMessage{mention(bot, "<at>Gate</at>")}, "run"},
		{"escaped entity text", "<at>Gate &amp; Co</at> run", []json.RawMessage{mention(bot, "<at>Gate &amp; Co</at>")}, "run"},
		{"entity escaped, text not", "<at>Gate & Co</at> run", []json.RawMessage{mention(bot, "<at>Gate &amp; Co</at>")}, "run"},
		{"html entities decoded", "run a&amp;b &lt;x&gt;", nil, "run a&b <x>"},
		{"empty mention text ignored", "run", []json.RawMessage{mention(bot, "")}, "run"},
		{"newlines collapsed", "<at>Gate</at>\nrun\r\n deploy", []json.RawMessage{mention(bot, "<at>Gate</at>")}, "run deploy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &Activity{Type: TypeMessage, Text: tt.text, Entities: tt.entities, Recipient: ChannelAccount{ID: bot}}
			if got := a.TextWithoutRecipientMention(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("no recipient id strips nothing", func(t *testing.T) {
		a := &Activity{Type: TypeMessage, Text: "<at>X</at> run", Entities: []json.RawMessage{mention("", "<at>X</at>")}}
		if got := a.TextWithoutRecipientMention(); got != "<at>X</at> run" {
			t.Errorf("got %q", got)
		}
	})
}

func TestTeamsChannelDataAndTenant(t *testing.T) {
	tests := []struct {
		name       string
		cd         string
		convTenant string
		wantTenant string
		wantTeam   string
		wantChan   string
		wantEvent  string
	}{
		{"absent", ``, "", "", "", "", ""},
		{"malformed", `{"tenant":"x"}`, "", "", "", "", ""},
		{"not object", `[1]`, "", "", "", "", ""},
		{"personal", `{"tenant":{"id":"t1"}}`, "", "t1", "", "", ""},
		{"conversation tenant wins", `{"tenant":{"id":"t1"}}`, "t0", "t0", "", "", ""},
		{"event", `{"tenant":{"id":"t1"},"team":{"id":"19:t"},"eventType":"teamMemberAdded"}`, "", "t1", "19:t", "", "teamMemberAdded"},
		{"legacy ids", `{"teamsChannelId":"19:c","teamsTeamId":"19:t"}`, "", "", "19:t", "19:c", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &Activity{Type: TypeMessage, ChannelData: json.RawMessage(tt.cd), Conversation: ConversationAccount{TenantID: tt.convTenant}}
			cd := a.TeamsChannelData()
			if a.TenantID() != tt.wantTenant || cd.Team.ID != tt.wantTeam || cd.Channel.ID != tt.wantChan || cd.EventType != tt.wantEvent {
				t.Errorf("tenant=%q team=%q channel=%q event=%q", a.TenantID(), cd.Team.ID, cd.Channel.ID, cd.EventType)
			}
		})
	}
}

func TestReference(t *testing.T) {
	a := mustDecodeFile(t, "teams_channel_message.json")
	ref := a.Reference()
	want := ConversationReference{
		ActivityID:   "1772446501123",
		User:         &ChannelAccount{ID: "29:1abcDEF", Name: "Ada Lovelace", AadObjectID: "6b1f1a5e-3c34-4a8a-9b3e-0d1f2e3a4b5c"},
		Bot:          ChannelAccount{ID: "28:00000000-0000-0000-0000-000000000001", Name: "Gate Bot"},
		Conversation: a.Conversation,
		ChannelID:    "msteams",
		ServiceURL:   "https://smba.trafficmanager.net/emea/",
		Locale:       "en-GB",
	}
	if diff := cmp.Diff(want, ref); diff != "" {
		t.Errorf("Reference (-want +got):\n%s", diff)
	}
	// The tenant comes from channelData when the conversation lacks it.
	a.Conversation.TenantID = ""
	if got := a.Reference().Conversation.TenantID; got != "72f988bf-86f1-41af-91ab-2d7cd011db47" {
		t.Errorf("tenant fallback = %q", got)
	}
	// No user when the activity has no from.
	if (&Activity{Type: TypeInstallationUpdate}).Reference().User != nil {
		t.Error("empty from produced a user")
	}
}

func TestInstallMembers(t *testing.T) {
	a := &Activity{Type: TypeConversationUpdate, Recipient: ChannelAccount{ID: "28:bot"},
		MembersAdded: []ChannelAccount{{ID: "29:x"}, {ID: "28:bot"}}, MembersRemoved: []ChannelAccount{{ID: "29:y"}}}
	if !a.MembersAddedIncludesRecipient() || a.MembersRemovedIncludesRecipient() {
		t.Error("bot membership misreported")
	}
	if (&Activity{MembersAdded: []ChannelAccount{{}}}).MembersAddedIncludesRecipient() {
		t.Error("empty recipient id matched an empty member id")
	}
}

func TestCardAction(t *testing.T) {
	tests := []struct {
		name   string
		act    Activity
		want   CardAction
		wantOK bool
	}{
		{"execute", Activity{Type: TypeInvoke, Name: InvokeAdaptiveCardAction,
			Value: json.RawMessage(`{"action":{"type":"Action.Execute","id":"a","verb":"approve","data":{"gate":"g1"}},"trigger":"manual"}`)},
			CardAction{Verb: "approve", Data: json.RawMessage(`{"gate":"g1"}`), Execute: true}, true},
		{"execute without data", Activity{Type: TypeInvoke, Name: InvokeAdaptiveCardAction, Value: json.RawMessage(`{"action":{"verb":"refresh"}}`)},
			CardAction{Verb: "refresh", Execute: true}, true},
		{"execute without action", Activity{Type: TypeInvoke, Name: InvokeAdaptiveCardAction, Value: json.RawMessage(`{"trigger":"manual"}`)}, CardAction{}, false},
		{"execute value not object", Activity{Type: TypeInvoke, Name: InvokeAdaptiveCardAction, Value: json.RawMessage(`"x"`)}, CardAction{}, false},
		{"execute action wrong type", Activity{Type: TypeInvoke, Name: InvokeAdaptiveCardAction, Value: json.RawMessage(`{"action":"x"}`)}, CardAction{}, false},
		{"other invoke", Activity{Type: TypeInvoke, Name: "task/fetch", Value: json.RawMessage(`{"action":{"verb":"x"}}`)}, CardAction{}, false},
		{"submit", Activity{Type: TypeMessage, ReplyToID: "1", Value: json.RawMessage(`{"verb":"reject","gate":"g1","reason":"no"}`)},
			CardAction{Verb: "reject", Data: json.RawMessage(`{"verb":"reject","gate":"g1","reason":"no"}`)}, true},
		{"submit without verb", Activity{Type: TypeMessage, Value: json.RawMessage(`{"gate":"g1"}`)}, CardAction{Data: json.RawMessage(`{"gate":"g1"}`)}, true},
		{"submit verb not string", Activity{Type: TypeMessage, Value: json.RawMessage(`{"verb":7}`)}, CardAction{Data: json.RawMessage(`{"verb":7}`)}, true},
		{"submit empty object", Activity{Type: TypeMessage, Value: json.RawMessage(`{}`)}, CardAction{}, false},
		{"message value array", Activity{Type: TypeMessage, Value: json.RawMessage(`[1]`)}, CardAction{}, false},
		{"message no value", Activity{Type: TypeMessage, Text: "hi"}, CardAction{}, false},
		{"conversationUpdate", Activity{Type: TypeConversationUpdate, Value: json.RawMessage(`{"verb":"x"}`)}, CardAction{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.act.CardAction()
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tt.wantOK)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("CardAction (-want +got):\n%s", diff)
			}
		})
	}
}
