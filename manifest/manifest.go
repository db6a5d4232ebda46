// Package manifest builds the Teams app package for gatebot: a .zip with
// manifest.json and the two icons Teams requires, ready to upload in Teams
// ("Upload a custom app") or the Teams admin center.
//
// The package declares one bot (the Azure Bot's Entra app id) in the team,
// personal and group-chat scopes, with gatebot's chat commands in its
// command menu of each scope. The bot's messaging endpoint is not part of
// the package: it lives in the Azure Bot registration. Every manifest is
// checked against Microsoft's JSON schema (embedded, see schema/) before a
// package is written.
//
// It imports the standard library and a JSON-schema validator only: no
// other gatebot package.
//
//	f, _ := os.Create("gatebot-teams.zip")
//	err := manifest.Build(f, manifest.Options{AppID: id, Developer: "Acme", WebsiteURL: …})
package manifest

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// SchemaVersion is the Teams app manifest schema the package conforms to:
// the newest generally available one (June 2026). manifestVersion must
// equal it, and schema/ holds its JSON schema.
const SchemaVersion = "1.29"

// SchemaURL is the JSON schema of SchemaVersion.
const SchemaURL = "https://developer.microsoft.com/json-schemas/teams/v" + SchemaVersion + "/MicrosoftTeams.schema.json"

// File names inside the package.
const (
	ManifestFile = "manifest.json"
	ColorIcon    = "color.png"
	OutlineIcon  = "outline.png"
)

// Defaults for the optional Options fields.
const (
	DefaultName             = "gatebot"
	DefaultShortDescription = "Request, approve and follow pipeline runs from Teams."
	DefaultFullDescription  = "gatebot lets you ask for a CI/CD pipeline run from Teams (run <pipeline> key=value …). " +
		"It posts an approval card with Approve and Reject buttons, enforces who may approve (quorum, allow-lists, " +
		"no self-approval, expiry) and, once approved, starts the run and keeps the card updated with its status."
	DefaultVersion   = "1.0.0"
	DefaultDeveloper = "gatebot"
	// AccentColor is the background behind the outline icon in Teams.
	AccentColor = "#2B6CB0"
)

// Options are the deployment-specific parts of the package. AppID and
// WebsiteURL are required; the others have defaults (PrivacyURL and TermsURL
// default to WebsiteURL, which suits an organisation's own custom app; an
// app for the Teams store needs real ones).
type Options struct {
	// AppID is the bot's Microsoft Entra application (client) id, a GUID.
	// It is both the Teams app id and the bot id.
	AppID string
	// Name is the app name in Teams (at most 30 characters).
	Name string
	// ShortDescription (≤ 80 characters) and FullDescription (≤ 4000).
	ShortDescription string
	FullDescription  string
	// Developer is the publisher's name (≤ 32 characters); default
	// DefaultDeveloper.
	Developer string
	// WebsiteURL, PrivacyURL and TermsURL are https links shown in the
	// app's details.
	WebsiteURL string
	PrivacyURL string
	TermsURL   string
	// Version is the app package version, x.y.z; raise it for every upload
	// that changes the package.
	Version string
}

// Limits from the manifest schema.
const (
	maxNameShort = 30
	maxNameFull  = 100
	maxDescShort = 80
	maxDescFull  = 4000
	maxDeveloper = 32
	maxURL       = 2048
	maxVersion   = 256
)

var (
	guidRE   = regexp.MustCompile(`^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$`)
	semverRE = regexp.MustCompile(`^([0-9]|[1-9][0-9]*)\.([0-9]|[1-9][0-9]*)\.([0-9]|[1-9][0-9]*)$`)
)

// FieldError is one invalid option. Field names the Options field and, in
// parentheses, the manifest property it becomes.
type FieldError struct {
	// Option is the Options field alone ("AppID"), for callers that name
	// it their own way (gatebot manifest says --app-id).
	Option  string
	Field   string // e.g. "Name (name.short)"
	Problem string
}

func (e *FieldError) Error() string { return "manifest: " + e.Field + ": " + e.Problem }

// ErrInvalidOptions is matched (errors.Is) by the error of Validate and
// Build when options are invalid.
var ErrInvalidOptions = errors.New("invalid manifest options")

type invalid []error

func (e invalid) Error() string        { return errors.Join(e...).Error() }
func (e invalid) Unwrap() []error      { return e }
func (e invalid) Is(target error) bool { return target == ErrInvalidOptions }

// withDefaults fills the optional fields.
func (o Options) withDefaults() Options {
	o.AppID = strings.TrimSpace(o.AppID)
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.ShortDescription == "" {
		o.ShortDescription = DefaultShortDescription
	}
	if o.FullDescription == "" {
		o.FullDescription = DefaultFullDescription
	}
	if o.Version == "" {
		o.Version = DefaultVersion
	}
	if o.Developer == "" {
		o.Developer = DefaultDeveloper
	}
	if o.PrivacyURL == "" {
		o.PrivacyURL = o.WebsiteURL
	}
	if o.TermsURL == "" {
		o.TermsURL = o.WebsiteURL
	}
	return o
}

// Validate reports every problem with o (after defaults), each a
// *FieldError naming the field; the result matches ErrInvalidOptions.
func (o Options) Validate() error {
	given := o
	o = o.withDefaults()
	var errs invalid
	bad := func(field, format string, args ...any) {
		opt, _, _ := strings.Cut(field, " ")
		errs = append(errs, &FieldError{Option: opt, Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	switch {
	case o.AppID == "":
		bad("AppID (id, bots[0].botId)", "required: the bot's Microsoft Entra application id")
	case !guidRE.MatchString(o.AppID):
		bad("AppID (id, bots[0].botId)", "%q is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", o.AppID)
	}
	length := func(field, v string, max int) {
		if n := utf8.RuneCountInString(v); n > max {
			bad(field, "%d characters, at most %d allowed", n, max)
		}
	}
	blank := func(field, v string) bool {
		if strings.TrimSpace(v) == "" {
			bad(field, "must not be blank")
			return true
		}
		return false
	}
	if !blank("Name (name.short)", o.Name) {
		length("Name (name.short)", o.Name, maxNameShort)
	}
	if !blank("ShortDescription (description.short)", o.ShortDescription) {
		length("ShortDescription (description.short)", o.ShortDescription, maxDescShort)
	}
	if !blank("FullDescription (description.full)", o.FullDescription) {
		length("FullDescription (description.full)", o.FullDescription, maxDescFull)
	}
	if !blank("Developer (developer.name)", o.Developer) {
		length("Developer (developer.name)", o.Developer, maxDeveloper)
	}
	for _, u := range []struct{ field, v string }{
		{"WebsiteURL (developer.websiteUrl)", o.WebsiteURL},
		// Defaulted from WebsiteURL, these are checked only when given:
		// a bad website is reported once.
		{"PrivacyURL (developer.privacyUrl)", given.PrivacyURL},
		{"TermsURL (developer.termsOfUseUrl)", given.TermsURL},
	} {
		if u.v == "" {
			if u.field == "WebsiteURL (developer.websiteUrl)" {
				bad(u.field, "required: an https URL (gatebot serve uses public_url)")
			}
			continue // the other two default to it
		}
		p, err := url.Parse(u.v)
		switch {
		case err != nil || p.Host == "":
			bad(u.field, "must be an absolute https URL, not %q", u.v)
		case p.Scheme != "https":
			bad(u.field, "must be https, not %q", u.v)
		case len(u.v) > maxURL:
			bad(u.field, "%d bytes, at most %d allowed", len(u.v), maxURL)
		}
	}
	if !semverRE.MatchString(o.Version) || len(o.Version) > maxVersion {
		bad("Version (version)", "%q is not a version of the form 1.2.3", o.Version)
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// manifest is the subset of the Teams app manifest gatebot fills.
type manifest struct {
	Schema          string      `json:"$schema"`
	ManifestVersion string      `json:"manifestVersion"`
	Version         string      `json:"version"`
	ID              string      `json:"id"`
	Developer       developer   `json:"developer"`
	Name            name        `json:"name"`
	Description     description `json:"description"`
	Icons           icons       `json:"icons"`
	AccentColor     string      `json:"accentColor"`
	Bots            []bot       `json:"bots"`
	ValidDomains    []string    `json:"validDomains"`
}

type developer struct {
	Name          string `json:"name"`
	WebsiteURL    string `json:"websiteUrl"`
	PrivacyURL    string `json:"privacyUrl"`
	TermsOfUseURL string `json:"termsOfUseUrl"`
}

type name struct {
	Short string `json:"short"`
	Full  string `json:"full"`
}

type description struct {
	Short string `json:"short"`
	Full  string `json:"full"`
}

type icons struct {
	Color   string `json:"color"`
	Outline string `json:"outline"`
}

type bot struct {
	BotID              string        `json:"botId"`
	Scopes             []string      `json:"scopes"`
	SupportsFiles      bool          `json:"supportsFiles"`
	IsNotificationOnly bool          `json:"isNotificationOnly"`
	CommandLists       []commandList `json:"commandLists"`
}

// commandList has no "triggers": its default, "mention", is the @mention
// command menu gatebot wants.
type commandList struct {
	Scopes   []string  `json:"scopes"`
	Commands []Command `json:"commands"`
}

// Command is one entry of the bot's command menu.
type Command struct {
	Title       string `json:"title"`
	Description string `json:"description"`
}

// Command menu limits Teams enforces on upload, stricter than the schema's
// (12 commands, 128 and 4000 characters): "Each menu supports up to 10
// commands", titles of at most 32 and descriptions of at most 128
// characters.
const (
	MaxCommands           = 10
	MaxCommandTitle       = 32
	MaxCommandDescription = 128
)

// Scopes are where the bot can be installed: a team's channels, a personal
// chat and group chats.
func Scopes() []string { return []string{"team", "personal", "groupChat"} }

// Commands is the command menu shown in scope (one of Scopes): what
// gatebot's chat understands. "channel" binds a configured channel to a
// Teams channel, so it is offered in teams only.
func Commands(scope string) []Command {
	cmds := []Command{
		{Title: "run", Description: "Ask to run a pipeline: run <pipeline> key=value … (posts an approval card)"},
		{Title: "pipelines", Description: "List the pipelines you can run and their inputs"},
		{Title: "pending", Description: "List the approval gates waiting for a decision"},
		{Title: "status", Description: "Show a gate and its run: status <gate id>"},
		{Title: "cancel", Description: "Cancel a gate or its run: cancel <gate id> reason=\"…\""},
		{Title: "help", Description: "Show what gatebot can do and how to ask"},
	}
	if scope == "team" {
		cmds = append(cmds, Command{Title: "channel", Description: "Bind a configured channel to this one: channel register <name>, or channel list"})
	}
	return cmds
}

// JSON returns manifest.json for o, indented, or the Validate error. The
// result is checked against the Teams schema (CheckSchema).
func JSON(o Options) ([]byte, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	id := strings.ToLower(o.AppID)
	b := bot{BotID: id, Scopes: Scopes()}
	for _, sc := range Scopes() {
		// One list per scope, as the schema asks.
		b.CommandLists = append(b.CommandLists, commandList{Scopes: []string{sc}, Commands: Commands(sc)})
	}
	m := manifest{
		Schema:          SchemaURL,
		ManifestVersion: SchemaVersion,
		Version:         o.Version,
		ID:              id,
		Developer: developer{Name: o.Developer, WebsiteURL: o.WebsiteURL,
			PrivacyURL: o.PrivacyURL, TermsOfUseURL: o.TermsURL},
		Name:         name{Short: o.Name, Full: o.Name},
		Description:  description{Short: o.ShortDescription, Full: o.FullDescription},
		Icons:        icons{Color: ColorIcon, Outline: OutlineIcon},
		AccentColor:  AccentColor,
		Bots:         []bot{b},
		ValidDomains: validDomains(o),
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "<pipeline>" readable in the file
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("manifest: encode: %w", err)
	}
	if err := CheckSchema(buf.Bytes()); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// validDomains are the hosts of the app's links, each once: the domains
// Teams may open from the app without a warning.
func validDomains(o Options) []string {
	var out []string
	for _, u := range []string{o.WebsiteURL, o.PrivacyURL, o.TermsURL} {
		p, err := url.Parse(u)
		if err != nil || p.Host == "" || slices.Contains(out, p.Host) {
			continue
		}
		out = append(out, p.Host)
	}
	return out
}

// packageTime stamps every zip entry, so the same options always give the
// same bytes (reproducible packages, comparable checksums).
func packageTime() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }

// Build validates o and writes the app package (.zip) to w: manifest.json,
// color.png (192×192) and outline.png (32×32, white on transparent). The
// output is deterministic for given options.
func Build(w io.Writer, o Options) error {
	m, err := JSON(o)
	if err != nil {
		return err
	}
	color, err := colorPNG()
	if err != nil {
		return fmt.Errorf("manifest: color icon: %w", err)
	}
	outline, err := outlinePNG()
	if err != nil {
		return fmt.Errorf("manifest: outline icon: %w", err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range []struct {
		name string
		data []byte
	}{{ManifestFile, m}, {ColorIcon, color}, {OutlineIcon, outline}} {
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: packageTime()})
		if err != nil {
			return fmt.Errorf("manifest: zip %s: %w", f.name, err)
		}
		if _, err := fw.Write(f.data); err != nil {
			return fmt.Errorf("manifest: zip %s: %w", f.name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("manifest: zip: %w", err)
	}
	// Written in one go so a failed build leaves no half zip behind.
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("manifest: write package: %w", err)
	}
	return nil
}
