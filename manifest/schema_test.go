package manifest_test

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gatebot/gatebot/manifest"
)

// TestEmbeddedSchemaIsSchemaVersion: the schema in the repo is the one
// for SchemaVersion, so a version bump cannot forget the file.
func TestEmbeddedSchemaIsSchemaVersion(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("schema/MicrosoftTeams.schema." + manifest.SchemaVersion + ".json")
	if err != nil {
		t.Fatalf("no schema file for %s: %v", manifest.SchemaVersion, err)
	}
	var s struct {
		Properties struct {
			ManifestVersion struct {
				Const string `json:"const"`
			} `json:"manifestVersion"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	if s.Properties.ManifestVersion.Const != manifest.SchemaVersion {
		t.Errorf("schema file is for %q, SchemaVersion is %q", s.Properties.ManifestVersion.Const, manifest.SchemaVersion)
	}
}

// TestManifestConformsToSchema checks built manifests, with defaults and
// at the limits of every option, against Microsoft's schema.
func TestManifestConformsToSchema(t *testing.T) {
	t.Parallel()
	long := opts()
	long.Name = strings.Repeat("é", 30)
	long.ShortDescription = strings.Repeat("s", 80)
	long.FullDescription = strings.Repeat("f", 4000)
	long.Developer = strings.Repeat("d", 32)
	long.Version = "123.456.789"
	for name, o := range map[string]manifest.Options{
		"defaults":   {AppID: appID, WebsiteURL: "https://gatebot.example.com"},
		"all set":    opts(),
		"at limits":  long,
		"upper guid": {AppID: strings.ToUpper(appID), WebsiteURL: "https://x.example/a?b=c"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			raw, err := manifest.JSON(o)
			if err != nil {
				t.Fatalf("JSON: %v", err)
			}
			if err := manifest.CheckSchema(raw); err != nil {
				t.Fatalf("CheckSchema: %v\n%s", err, raw)
			}
		})
	}
}

// TestCheckSchemaRejects proves the validator bites: each change breaks a
// rule of the schema and must be reported with where it is.
func TestCheckSchemaRejects(t *testing.T) {
	t.Parallel()
	good, err := manifest.JSON(opts())
	if err != nil {
		t.Fatal(err)
	}
	bot := func(m map[string]any) map[string]any { return m["bots"].([]any)[0].(map[string]any) }
	tests := []struct {
		name  string
		mod   func(m map[string]any)
		where string // part of the violation's location
	}{
		{"other manifestVersion", func(m map[string]any) { m["manifestVersion"] = "1.25" }, "/manifestVersion"},
		{"unknown property", func(m map[string]any) { m["color"] = "blue" }, "color"},
		{"missing developer", func(m map[string]any) { delete(m, "developer") }, "developer"},
		{"id not a guid", func(m map[string]any) { m["id"] = "gatebot" }, "/id"},
		{"name too long", func(m map[string]any) { m["name"].(map[string]any)["short"] = strings.Repeat("n", 31) }, "/name/short"},
		{"bad accent colour", func(m map[string]any) { m["accentColor"] = "blue" }, "/accentColor"},
		{"bot scope", func(m map[string]any) { bot(m)["scopes"] = []any{"channel"} }, "/bots/0/scopes"},
		{"four command lists", func(m map[string]any) {
			b := bot(m)
			b["commandLists"] = append(b["commandLists"].([]any), b["commandLists"].([]any)[0])
		}, "/bots/0/commandLists"},
		{"command without title", func(m map[string]any) {
			cl := bot(m)["commandLists"].([]any)[0].(map[string]any)
			cl["commands"] = []any{map[string]any{"description": "x"}}
		}, "/bots/0/commandLists/0/commands/0"},
		{"not json", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw := []byte("{")
			if tc.mod != nil {
				var m map[string]any
				if err := json.Unmarshal(good, &m); err != nil {
					t.Fatal(err)
				}
				tc.mod(m)
				raw, _ = json.Marshal(m)
			}
			err := manifest.CheckSchema(raw)
			if !errors.Is(err, manifest.ErrSchema) {
				t.Fatalf("CheckSchema = %v, want ErrSchema", err)
			}
			if !strings.Contains(err.Error(), tc.where) {
				t.Errorf("error does not say where (%q): %v", tc.where, err)
			}
		})
	}
}

// TestCommandMenuLimits holds the command menus to Teams' upload limits,
// which are stricter than the schema's.
func TestCommandMenuLimits(t *testing.T) {
	t.Parallel()
	for _, scope := range manifest.Scopes() {
		cmds := manifest.Commands(scope)
		if n := len(cmds); n == 0 || n > manifest.MaxCommands {
			t.Errorf("%s: %d commands, want 1..%d", scope, n, manifest.MaxCommands)
		}
		seen := map[string]bool{}
		for _, c := range cmds {
			if n := utf8.RuneCountInString(c.Title); n == 0 || n > manifest.MaxCommandTitle {
				t.Errorf("%s: title %q is %d characters, want 1..%d", scope, c.Title, n, manifest.MaxCommandTitle)
			}
			if n := utf8.RuneCountInString(c.Description); n == 0 || n > manifest.MaxCommandDescription {
				t.Errorf("%s: %s: description is %d characters, want 1..%d", scope, c.Title, n, manifest.MaxCommandDescription)
			}
			if seen[c.Title] {
				t.Errorf("%s: %s twice", scope, c.Title)
			}
			seen[c.Title] = true
		}
	}
}
