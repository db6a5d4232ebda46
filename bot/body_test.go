package bot

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

// htmlCard stands in for an Adaptive Card builder: a value with its own
// MarshalJSON, whose text needs HTML escaping.
type htmlCard struct{ Text string }

func (c htmlCard) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{"type": "AdaptiveCard", "body": []any{map[string]any{"type": "TextBlock", "text": c.Text}}})
}

// TestRequestBodySameBytes: encoding an activity through its own
// MarshalJSON (requestBody) must give exactly what json.Marshal gives, or
// skipping encoding/json's second pass would change what Teams receives.
func TestRequestBodySameBytes(t *testing.T) {
	t.Parallel()
	tricky := `<b>a & b</b> "q" \ ` + "\u2028 é"
	cases := map[string]any{
		"text": Activity{Type: TypeMessage, Text: tricky, TextFormat: "plain", ReplyToID: "1",
			From: ChannelAccount{ID: "28:bot", Name: "gatebot"}, Conversation: ConversationAccount{ID: "19:a@thread.v2"}},
		"card": Activity{Type: TypeMessage, Attachments: []Attachment{AdaptiveCardAttachment(htmlCard{Text: tricky})},
			Recipient: ChannelAccount{ID: "29:u", Name: tricky}},
		"raw fields": Activity{Type: TypeMessage, ChannelData: json.RawMessage(` { "notification" : {"alert": true, "x": "<i>"} } `),
			Value: json.RawMessage(`{"a": [1, 2,  3]}`), Entities: []json.RawMessage{MentionEntity(Mention{Mentioned: ChannelAccount{ID: "29:u"}, Text: "<at>U</at>"}), json.RawMessage(`{"type":"x", "y": "<"}`)}},
		"params": ConversationParameters{IsGroup: true, ChannelData: map[string]any{"channel": map[string]any{"id": "19:c"}},
			Activity: &Activity{Type: TypeMessage, Text: tricky}},
		"nil": nil,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := requestBody(in)
			if err != nil {
				t.Fatal(err)
			}
			if in == nil {
				if got != nil {
					t.Fatalf("nil body encoded as %q", got)
				}
				return
			}
			want, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("requestBody differs from json.Marshal:\n got %s\nwant %s", got, want)
			}
		})
	}
}

// BenchmarkDecodeActivity measures decoding a Teams channel message.
func BenchmarkDecodeActivity(b *testing.B) {
	body, err := os.ReadFile("testdata/teams_channel_message.json")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := DecodeActivity(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReplyBody measures encoding a card reply as the Connector sends
// it (requestBody), next to the generic json.Marshal it replaced.
func BenchmarkReplyBody(b *testing.B) {
	act := prepareActivity(&Activity{Type: TypeMessage, ReplyToID: "1",
		From: ChannelAccount{ID: "28:bot", Name: "gatebot"}, Recipient: ChannelAccount{ID: "29:u", Name: "U"},
		Conversation: ConversationAccount{ID: "19:a@thread.v2", ConversationType: "groupChat", TenantID: "t"},
		Attachments:  []Attachment{AdaptiveCardAttachment(htmlCard{Text: string(bytes.Repeat([]byte("help text "), 300))})}}, "")
	for name, enc := range map[string]func(any) ([]byte, error){"requestBody": requestBody, "json.Marshal": json.Marshal} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := enc(act); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
