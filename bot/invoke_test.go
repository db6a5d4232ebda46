package bot

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestInvokeResponses(t *testing.T) {
	tests := []struct {
		name       string
		resp       InvokeResponse
		wantStatus int
		wantBody   string
	}{
		{"card", CardResponse(map[string]any{"type": "AdaptiveCard"}), 200,
			`{"statusCode":200,"type":"application/vnd.microsoft.card.adaptive","value":{"type":"AdaptiveCard"}}`},
		{"message", MessageResponse("Approved"), 200,
			`{"statusCode":200,"type":"application/vnd.microsoft.activity.message","value":"Approved"}`},
		{"error", ErrorResponse(400, "BadRequest", "Unknown gate"), 200,
			`{"statusCode":400,"type":"application/vnd.microsoft.error","value":{"code":"BadRequest","message":"Unknown gate"}}`},
		{"not implemented", NotImplementedResponse(), 501,
			`{"statusCode":501,"type":"application/vnd.microsoft.error","value":{"code":"NotImplemented","message":"This invoke is not supported."}}`},
		{"empty body", InvokeResponse{Status: 200}, 200, ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.resp.Status != tt.wantStatus {
				t.Errorf("Status = %d, want %d", tt.resp.Status, tt.wantStatus)
			}
			rec := httptest.NewRecorder()
			if err := tt.resp.Write(rec); err != nil {
				t.Fatal(err)
			}
			if rec.Code != tt.wantStatus || rec.Body.String() != tt.wantBody {
				t.Errorf("wrote %d %s, want %d %s", rec.Code, rec.Body, tt.wantStatus, tt.wantBody)
			}
			if tt.wantBody != "" && rec.Header().Get("Content-Type") != "application/json; charset=utf-8" {
				t.Errorf("content type %q", rec.Header().Get("Content-Type"))
			}
		})
	}
}

func TestInvokeResponseUnmarshalableBody(t *testing.T) {
	rec := httptest.NewRecorder()
	err := InvokeResponse{Status: 200, Body: json.RawMessage("{")}.Write(rec)
	if err == nil || rec.Code != http.StatusInternalServerError {
		t.Errorf("Write = %v, code %d; want error and 500", err, rec.Code)
	}
}

// selfEncoding stands for a card builder that encodes itself.
type selfEncoding struct{ Title string }

func (s selfEncoding) MarshalJSON() ([]byte, error) {
	type plain selfEncoding
	return json.Marshal(plain(s))
}

// TestCardResponseFastPathMatchesEncodingJSON: the hand-assembled body of
// a card answer is byte-identical to what encoding/json would write.
func TestCardResponseFastPathMatchesEncodingJSON(t *testing.T) {
	for _, card := range []any{selfEncoding{Title: `Approve <v1.2> & "go"`}, &selfEncoding{Title: "x"}} {
		resp := CardResponse(card)
		want, err := json.Marshal(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		if err := resp.Write(rec); err != nil {
			t.Fatal(err)
		}
		if got := rec.Body.String(); got != string(want) {
			t.Errorf("fast path wrote\n%s\nencoding/json writes\n%s", got, want)
		}
	}
}
