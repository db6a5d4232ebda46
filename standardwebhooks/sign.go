// Package standardwebhooks signs and verifies HTTP requests per Standard
// Webhooks 1.0 (https://www.standardwebhooks.com): the webhook-id,
// webhook-timestamp and webhook-signature headers, HMAC-SHA256 over
// "id.timestamp.body" with a whsec_ secret. gatebot signs its callbacks
// and its webhook provider's requests with it, and verifies with it in
// tests and the load tool's fakes.
//
// It imports only the standard library.
package standardwebhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks header names.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// Tolerance is the largest difference between a message's timestamp and
// the receiver's clock that VerifyRequest accepts (the standard's 5 min).
const Tolerance = 5 * time.Minute

// SecretPrefix starts every Standard Webhooks secret.
const SecretPrefix = "whsec_"

// Errors from ParseSecret, Verify and VerifyRequest.
var (
	ErrBadSecret        = errors.New("standardwebhooks: secret must be whsec_ followed by the base64 of 24 to 64 random bytes")
	ErrMissingHeaders   = errors.New("standardwebhooks: webhook-id, webhook-timestamp or webhook-signature missing")
	ErrTimestamp        = errors.New("standardwebhooks: timestamp outside the tolerance")
	ErrInvalidSignature = errors.New("standardwebhooks: no matching signature")
)

// ParseSecret decodes a whsec_<base64> secret into the HMAC key. The prefix
// is optional, as in the reference implementations.
func ParseSecret(s string) ([]byte, error) {
	b64 := strings.TrimPrefix(s, SecretPrefix)
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) < 24 || len(key) > 64 {
		return nil, ErrBadSecret
	}
	return key, nil
}

// Sign returns the webhook-signature value for one message:
// "v1," + base64(HMAC-SHA256(secret, id + "." + unix(ts) + "." + body)).
func Sign(secret []byte, id string, ts time.Time, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(ts.Unix(), 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Verify checks that signatures (a webhook-signature header value: one or
// more space-separated "v1,<base64>" entries, several during key rotation)
// contains a valid signature of the message. Entries of other versions are
// ignored. It does not check the timestamp's age; VerifyRequest does.
func Verify(secret []byte, id string, ts time.Time, body []byte, signatures string) error {
	want := Sign(secret, id, ts, body)
	for _, sig := range strings.Fields(signatures) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return ErrInvalidSignature
}

// VerifyRequest checks a received message's Standard Webhooks headers
// against body: all three headers present, the timestamp within Tolerance
// of now, and a matching signature.
func VerifyRequest(secret []byte, h http.Header, body []byte, now time.Time) error {
	id, tsv, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsv == "" || sigs == "" {
		return ErrMissingHeaders
	}
	sec, err := strconv.ParseInt(tsv, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q is not unix seconds", ErrTimestamp, tsv)
	}
	ts := time.Unix(sec, 0)
	if d := now.Sub(ts); d > Tolerance || d < -Tolerance {
		return ErrTimestamp
	}
	return Verify(secret, id, ts, body, sigs)
}

// SetHeaders stamps the three headers on an outgoing request.
func SetHeaders(h http.Header, secret []byte, id string, ts time.Time, body []byte) {
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, Sign(secret, id, ts, body))
}
