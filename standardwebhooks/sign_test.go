package standardwebhooks_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatebot/gatebot/standardwebhooks"
)

// The Standard Webhooks reference test vector.
const (
	vecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vecID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecTS     = 1614265330
	vecBody   = `{"test": 2432232314}`
	vecSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func vecKey(t *testing.T) []byte {
	t.Helper()
	k, err := standardwebhooks.ParseSecret(vecSecret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSignMatchesReferenceVector(t *testing.T) {
	if got := standardwebhooks.Sign(vecKey(t), vecID, time.Unix(vecTS, 0), []byte(vecBody)); got != vecSig {
		t.Errorf("Sign = %s, want %s", got, vecSig)
	}
}

func TestVerify(t *testing.T) {
	other, _ := standardwebhooks.ParseSecret("whsec_" + strings.Repeat("QUJD", 8))
	tests := []struct {
		name string
		key  []byte
		id   string
		body string
		sigs string
		ok   bool
	}{
		{"valid", nil, vecID, vecBody, vecSig, true},
		{"rotation: second of several", nil, vecID, vecBody, "v1,bm9wZQ== " + vecSig, true},
		{"other versions ignored", nil, vecID, vecBody, "v1a,abc " + vecSig, true},
		{"wrong key", other, vecID, vecBody, vecSig, false},
		{"tampered body", nil, vecID, `{"test": 2432232315}`, vecSig, false},
		{"other id", nil, "msg_other", vecBody, vecSig, false},
		{"no signature", nil, vecID, vecBody, "", false},
		{"bare base64 without version", nil, vecID, vecBody, strings.TrimPrefix(vecSig, "v1,"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := tt.key
			if key == nil {
				key = vecKey(t)
			}
			err := standardwebhooks.Verify(key, tt.id, time.Unix(vecTS, 0), []byte(tt.body), tt.sigs)
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, standardwebhooks.ErrInvalidSignature)) {
				t.Errorf("Verify = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestVerifyRequest(t *testing.T) {
	now := time.Unix(vecTS, 0)
	hdr := func(id, ts, sig string) http.Header {
		h := http.Header{}
		for k, v := range map[string]string{"webhook-id": id, "webhook-timestamp": ts, "webhook-signature": sig} {
			if v != "" {
				h.Set(k, v)
			}
		}
		return h
	}
	tests := []struct {
		name string
		h    http.Header
		now  time.Time
		want error
	}{
		{"valid", hdr(vecID, "1614265330", vecSig), now, nil},
		{"valid at the tolerance", hdr(vecID, "1614265330", vecSig), now.Add(standardwebhooks.Tolerance), nil},
		{"too old", hdr(vecID, "1614265330", vecSig), now.Add(standardwebhooks.Tolerance + time.Second), standardwebhooks.ErrTimestamp},
		{"from the future", hdr(vecID, "1614265330", vecSig), now.Add(-standardwebhooks.Tolerance - time.Second), standardwebhooks.ErrTimestamp},
		{"timestamp not a number", hdr(vecID, "yesterday", vecSig), now, standardwebhooks.ErrTimestamp},
		{"missing id", hdr("", "1614265330", vecSig), now, standardwebhooks.ErrMissingHeaders},
		{"missing signature", hdr(vecID, "1614265330", ""), now, standardwebhooks.ErrMissingHeaders},
		{"bad signature", hdr(vecID, "1614265330", "v1,bm9wZQ=="), now, standardwebhooks.ErrInvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := standardwebhooks.VerifyRequest(vecKey(t), tt.h, []byte(vecBody), tt.now)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("VerifyRequest = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseSecret(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		fail bool
	}{
		{vecSecret, 24, false},
		{strings.TrimPrefix(vecSecret, "whsec_"), 24, false},
		{"whsec_" + strings.Repeat("QUJD", 21) + "QQ==", 64, false},
		{"whsec_" + strings.Repeat("QUJD", 22), 0, true}, // 66 bytes
		{"whsec_c2hvcnQ=", 0, true},                      // 5 bytes
		{"whsec_not base64!!", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		k, err := standardwebhooks.ParseSecret(tt.in)
		if tt.fail != (err != nil) || len(k) != tt.n {
			t.Errorf("ParseSecret(%q) = %d bytes, %v", tt.in, len(k), err)
		}
		if err != nil && !errors.Is(err, standardwebhooks.ErrBadSecret) {
			t.Errorf("ParseSecret(%q) err = %v, want ErrBadSecret", tt.in, err)
		}
	}
}
