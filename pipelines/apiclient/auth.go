package apiclient

import "net/http"

// HeaderToken authenticates every request with one secret in one header,
// the scheme most provider APIs use. Its methods fit Options.Authorize and
// Options.Secrets.
type HeaderToken struct {
	Header string // e.g. "Authorization", "x-yunxiao-token"
	Prefix string // e.g. "Bearer "; empty for a bare token
	Token  Secret
}

// BearerToken is HeaderToken for "Authorization: Bearer <token>".
func BearerToken(token Secret) HeaderToken {
	return HeaderToken{Header: "Authorization", Prefix: "Bearer ", Token: token}
}

// Authorize sets the header on r.
func (h HeaderToken) Authorize(r *http.Request) error {
	r.Header.Set(h.Header, h.Prefix+h.Token.Reveal())
	return nil
}

// Secrets lists the token, so that it is scrubbed from errors.
func (h HeaderToken) Secrets() []Secret { return []Secret{h.Token} }
