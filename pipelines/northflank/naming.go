package northflank

import (
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"github.com/gatebot/gatebot/pipelines"
)

// Field rules of the run-release-flow request body
// (https://northflank.com/docs/v1/api/pipelines/run-release-flow).
var (
	namePattern        = regexp.MustCompile(`^[a-zA-Z]((-|\s)?[a-zA-Z0-9]+((-|\s)[a-zA-Z0-9]+)*)?$`)
	descriptionPattern = regexp.MustCompile(`^[a-zA-Z0-9.,?\s\\/'"()[\];` + "`" + `%^&*\-_:!]+$`)
)

const (
	nameMin        = 3
	nameMax        = 39
	descriptionMax = 200
	// uidMax bounds the gate id's part of a name, leaving room for a
	// readable prefix.
	uidMax = 24
)

// CheckName reports whether s satisfies Northflank's run name rules.
func CheckName(s string) error {
	if n := len(s); n < nameMin || n > nameMax {
		return fmt.Errorf("%q is %d characters; Northflank run names have 3 to 39", s, n)
	}
	if !namePattern.MatchString(s) {
		return fmt.Errorf("%q does not match Northflank's run name pattern (a letter, then letters and digits in words separated by single spaces or hyphens)", s)
	}
	return nil
}

// CheckDescription reports whether s satisfies Northflank's run
// description rules.
func CheckDescription(s string) error {
	if len(s) > descriptionMax {
		return fmt.Errorf("description is %d characters; Northflank allows 200", len(s))
	}
	if !descriptionPattern.MatchString(s) {
		return fmt.Errorf("description %q has characters Northflank refuses (allowed: letters, digits, spaces and . , ? \\ / ' \" ( ) [ ] ; ` %% ^ & * - _ : !)", s)
	}
	return nil
}

// gateUID is the gate id's unique part as it appears in run names: its
// letters and digits, or a hash of the id when that would be too long.
func gateUID(gateID string) (string, error) {
	var b strings.Builder
	for _, r := range gateID {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			b.WriteRune(r)
		}
	}
	uid := b.String()
	if uid == "" {
		return "", errors.New("northflank: gate id has no letters or digits to name the run with")
	}
	if len(uid) > uidMax {
		sum := sha256.Sum256([]byte(gateID))
		uid = "g" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:]))[:uidMax-1]
	}
	return uid, nil
}

// sanitizeName turns s into words of ASCII letters and digits joined by
// single hyphens, starting with a letter.
func sanitizeName(s string) string {
	var b strings.Builder
	sep := false
	for _, r := range s {
		ok := r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r))
		switch {
		case ok && b.Len() == 0 && !unicode.IsLetter(r):
			// names must start with a letter: drop leading digits
		case ok:
			if sep && b.Len() > 0 {
				b.WriteByte('-')
			}
			sep = false
			b.WriteRune(r)
		default:
			sep = true
		}
	}
	return b.String()
}

// RunName builds the run's name from a prefix (the configured target.name,
// else gatebot's pipeline name) and the gate id: "<prefix> <uid>", where uid
// is the gate id's letters and digits. The prefix is stripped of characters
// the pattern refuses, falls back to "gatebot", and is truncated so the
// whole fits in 39 characters; the uid is always kept whole, because it is
// how the run is found again.
func RunName(prefix, gateID string) (string, error) {
	uid, err := gateUID(gateID)
	if err != nil {
		return "", err
	}
	p := sanitizeName(prefix)
	if p == "" {
		p = "gatebot"
	}
	room := nameMax - 1 - len(uid)
	if len(p) > room {
		p = strings.TrimRight(p[:room], "-")
	}
	name := p + " " + uid
	if err := CheckName(name); err != nil {
		return "", fmt.Errorf("northflank: generated run name: %w", err)
	}
	return name, nil
}

// matchesGate reports whether a run name was generated for gateID.
func matchesGate(name, gateID string) bool {
	uid, err := gateUID(gateID)
	return err == nil && strings.HasSuffix(name, " "+uid)
}

// sanitizeDescription keeps only what the description pattern allows
// (writing "@" as " at "), collapses whitespace and cuts to 200 characters.
func sanitizeDescription(s string) string {
	s = strings.ReplaceAll(s, "@", " at ")
	var b strings.Builder
	for _, r := range s {
		if r < unicode.MaxASCII && descriptionPattern.MatchString(string(r)) {
			b.WriteRune(r)
		}
	}
	out := strings.Join(strings.Fields(b.String()), " ")
	if len(out) > descriptionMax {
		out = strings.TrimSpace(out[:descriptionMax])
	}
	return out
}

// Description builds the run description: the configured one if any, else
// who requested and approved the run in Teams, the requester's message and
// the gate id, sanitised to Northflank's pattern and length.
func Description(configured string, req pipelines.Request) string {
	if configured != "" {
		return sanitizeDescription(configured)
	}
	var b strings.Builder
	if req.Message != "" {
		b.WriteString(req.Message + " - ")
	}
	if len(req.Approvers) > 0 {
		b.WriteString("Approved in Teams by " + strings.Join(req.Approvers, ", "))
	} else {
		b.WriteString("Approved in Teams")
	}
	if req.Requester != "" {
		b.WriteString(", requested by " + req.Requester)
	}
	b.WriteString(" (gatebot gate " + req.GateID + ")")
	return sanitizeDescription(b.String())
}
