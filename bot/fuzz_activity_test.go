package bot

import (
	"encoding/json"
	"errors"
	"os"
	"testing"
)

// FuzzDecodeActivity feeds arbitrary bodies to the decoder and every
// accessor the handlers use; none may panic, and a decoded activity must
// survive a marshal/decode round trip.
func FuzzDecodeActivity(f *testing.F) {
	if b, err := os.ReadFile("testdata/teams_channel_message.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"type":"invoke","name":"adaptiveCard/action","value":{"action":{"verb":"approve","data":{"g":1}}}}`))
	f.Add([]byte(`{"type":"message","value":{"verb":"reject"},"entities":[{"type":"mention","mentioned":{"id":"28:b"},"text":"<at>b</at>"}],"recipient":{"id":"28:b"},"text":"<at>b</at>&nbsp;x"}`))
	f.Add([]byte(`{"type":"conversationUpdate","membersAdded":[{"id":"28:b"}],"channelData":{"eventType":"teamMemberAdded","tenant":{"id":"t"}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := DecodeActivity(body)
		if err != nil {
			if !errors.Is(err, ErrMalformedActivity) {
				t.Fatalf("error does not wrap ErrMalformedActivity: %v", err)
			}
			return
		}
		_ = a.Mentions()
		_ = a.TextWithoutRecipientMention()
		_ = a.TeamsChannelData()
		_ = a.TenantID()
		_, _ = a.CardAction()
		_ = a.Reference()
		_ = a.MembersAddedIncludesRecipient()
		out, err := json.Marshal(a)
		if err != nil {
			t.Fatalf("marshal decoded activity: %v", err)
		}
		if _, err := DecodeActivity(out); err != nil {
			t.Fatalf("re-decode %s: %v", out, err)
		}
	})
}
