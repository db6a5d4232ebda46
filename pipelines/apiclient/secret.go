package apiclient

import (
	"log/slog"
	"strings"
)

// Secret is a credential (API token, password). It prints, logs and
// marshals as "[REDACTED]"; only Reveal returns the value, and only code
// that puts it on the wire should call it. Secret unmarshals from YAML and
// JSON as a plain string, so config structs can use it directly.
type Secret string

const redacted = "[REDACTED]"

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// String masks the value, so fmt and %v never print it.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString masks the value for %#v.
func (s Secret) GoString() string { return `apiclient.Secret("` + s.String() + `")` }

// LogValue masks the value in log/slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText masks the value in JSON, YAML and any other text encoding, so
// a dumped config never carries the credential.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText keeps the value as given (MarshalText's mask is one way).
func (s *Secret) UnmarshalText(b []byte) error {
	*s = Secret(b)
	return nil
}

// redactor replaces secret values in text. Values shorter than four
// characters are not redacted, because replacing them would mangle ordinary
// text without protecting anything worth protecting.
func redact(text string, secrets []Secret) string {
	for _, s := range secrets {
		if len(s) < 4 {
			continue
		}
		text = strings.ReplaceAll(text, string(s), redacted)
	}
	return text
}

// Redact replaces every occurrence of each secret's value in text with
// "[REDACTED]". Providers use it on text that may echo credentials back.
func Redact(text string, secrets ...Secret) string { return redact(text, secrets) }
