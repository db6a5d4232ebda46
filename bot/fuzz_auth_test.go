package bot

import (
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzAuthorizationHeader feeds arbitrary Authorization header values to a
// warm authenticator. It must never panic, every rejection must wrap
// ErrUnauthorized, and anything accepted must carry an identity.
func FuzzAuthorizationHeader(f *testing.F) {
	fx := newAuthFixture(f, nil)
	keys := testKeys()
	now := fx.clock.Now()
	valid := signRS256(f, keys[0], "k0", channelClaims(now))
	f.Add("Bearer " + valid)
	f.Add("bearer " + valid)
	f.Add("Bearer " + valid[:len(valid)-3])
	f.Add("Basic dXNlcjpwYXNz")
	f.Add("Bearer ")
	f.Add("Bearer a.b.c")
	f.Add("Bearer eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2FwaS5ib3RmcmFtZXdvcmsuY29tIn0.")
	expired := channelClaims(now)
	expired["exp"] = now.Add(-time.Hour).Unix()
	f.Add("Bearer " + signRS256(f, keys[0], "k0", expired))
	odd := channelClaims(now)
	odd["aud"] = []any{1, nil, map[string]any{}}
	odd["serviceurl"] = []string{"x"}
	f.Add("Bearer " + signRS256(f, keys[0], "k0", odd))
	f.Add("Bearer " + signRS256(f, keys[2], "zz", jwt.MapClaims{"iss": publicIssuer}))
	f.Fuzz(func(t *testing.T, header string) {
		id, err := fx.auth.Authenticate(t.Context(), header)
		if err != nil {
			if id != nil {
				t.Fatal("identity returned with an error")
			}
			if !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("rejection does not wrap ErrUnauthorized: %v", err)
			}
			return
		}
		if id == nil {
			t.Fatal("accepted without identity")
		}
		_ = id.Check(testServiceURL, "msteams")
	})
}
