package apitoken

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"hash/crc32"
	"log/slog"
	"math/big"
	"strings"
)

// Prefix starts every gatebot personal access token.
const Prefix = "gbt_"

const (
	base62    = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	bodyLen   = 43 // 32 bytes in base62: ceil(256 / log2(62))
	sumLen    = 6  // a CRC-32 in base62
	secretLen = len(Prefix) + bodyLen + sumLen
)

// Secret is a token's plaintext. It is shown once and never logged: String
// and LogValue mask it.
type Secret string

// String masks the token, keeping the prefix so logs still say what it was.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Prefix + "[redacted]"
}

// LogValue masks the token in structured logs.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Reveal returns the plaintext, for printing it once to its creator.
func (s Secret) Reveal() string { return string(s) }

// newSecret returns a fresh token.
func newSecret() Secret {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	body := encode62(new(big.Int).SetBytes(b[:]), bodyLen)
	return Secret(Prefix + body + checksum(body))
}

func encode62(n *big.Int, width int) string {
	out := make([]byte, width)
	base := big.NewInt(62)
	mod := new(big.Int)
	for i := width - 1; i >= 0; i-- {
		n.DivMod(n, base, mod)
		out[i] = base62[mod.Int64()]
	}
	return string(out)
}

func checksum(body string) string {
	return encode62(big.NewInt(int64(crc32.ChecksumIEEE([]byte(body)))), sumLen)
}

// WellFormed reports whether s looks like a gatebot token: the prefix, the
// length, the alphabet and the checksum. It says nothing about validity.
func WellFormed(s string) bool {
	if len(s) != secretLen || !strings.HasPrefix(s, Prefix) {
		return false
	}
	rest := s[len(Prefix):]
	for i := 0; i < len(rest); i++ {
		if strings.IndexByte(base62, rest[i]) < 0 {
			return false
		}
	}
	return checksum(rest[:bodyLen]) == rest[bodyLen:]
}

// hashOf is the stored form of a token.
func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// FromHeader extracts the token from an Authorization header value
// ("Bearer gbt_…", scheme case-insensitive). ok is false when the header is
// absent or uses another scheme.
func FromHeader(authorization string) (token string, ok bool) {
	scheme, tok, found := strings.Cut(strings.TrimSpace(authorization), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
