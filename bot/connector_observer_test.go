package bot

import (
	"sync"
	"testing"
)

type observedCall struct {
	op, outcome string
	retries     int
	throttled   bool
}

type recordingObserver struct {
	mu    sync.Mutex
	calls []observedCall
}

func (r *recordingObserver) ConnectorCall(op, outcome string, retries int, throttled bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, observedCall{op, outcome, retries, throttled})
}

// TestConnectorObserver: the observer hears of every call once, after its
// last attempt, with what the metrics need.
func TestConnectorObserver(t *testing.T) {
	t.Parallel()
	send := wantRequest{method: "POST", requestURI: threadURI + "/activities", body: `{"type":"message","text":"x","conversation":{"id":"` + threadID + `"}}`}
	with := func(status int, header map[string]string) wantRequest {
		r := send
		r.status, r.header = status, header
		return r
	}
	ok := send
	ok.status, ok.respBody = 201, `{"id":"done"}`
	tests := []struct {
		name   string
		script []wantRequest
		url    string // default: the fake's
		want   observedCall
	}{
		{"ok", []wantRequest{ok}, "", observedCall{"send", OutcomeOK, 0, false}},
		{"throttled then ok", []wantRequest{with(429, map[string]string{"Retry-After": "0"}), ok}, "", observedCall{"send", OutcomeOK, 1, true}},
		{"throttled for too long", []wantRequest{with(429, map[string]string{"Retry-After": "3600"})}, "", observedCall{"send", OutcomeThrottled, 0, true}},
		{"412 twice then ok", []wantRequest{with(412, nil), with(412, nil), ok}, "", observedCall{"send", OutcomeOK, 2, false}},
		{"bot removed", []wantRequest{with(403, nil)}, "", observedCall{"send", OutcomeClientError, 0, false}},
		{"server error", []wantRequest{with(500, nil)}, "", observedCall{"send", OutcomeServerError, 0, false}},
		{"untrusted", nil, "https://evil.example.com/", observedCall{"send", OutcomeUntrusted, 0, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeConnector(t, tt.script...)
			obs := &recordingObserver{}
			c := f.connector(t, func(cfg *ConnectorConfig) { cfg.Observer = obs })
			u := tt.url
			if u == "" {
				u = f.serviceURL()
			}
			_, _ = c.SendToConversation(t.Context(), u, threadID, &Activity{Type: TypeMessage, Text: "x"})
			if len(obs.calls) != 1 || obs.calls[0] != tt.want {
				t.Errorf("observed %+v, want one %+v", obs.calls, tt.want)
			}
		})
	}
}
