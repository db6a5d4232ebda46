package manifest_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"slices"
	"strings"
	"testing"

	"github.com/gatebot/gatebot/manifest"
	"github.com/google/go-cmp/cmp"
)

const appID = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"

func opts() manifest.Options {
	return manifest.Options{
		AppID:      appID,
		Developer:  "Acme Platform Team",
		WebsiteURL: "https://gatebot.example.com",
		PrivacyURL: "https://gatebot.example.com/privacy",
		TermsURL:   "https://gatebot.example.com/terms",
	}
}

// unpack builds a package and returns its files by name.
func unpack(t *testing.T, o manifest.Options) map[string][]byte {
	t.Helper()
	var buf bytes.Buffer
	if err := manifest.Build(&buf, o); err != nil {
		t.Fatalf("Build: %v", err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatalf("not a zip: %v", err)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if _, err := b.ReadFrom(rc); err != nil {
			t.Fatal(err)
		}
		rc.Close()
		files[f.Name] = b.Bytes()
	}
	return files
}

func TestPackageFiles(t *testing.T) {
	files := unpack(t, opts())
	var names []string
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	// Teams wants the files at the top level of the zip, no folder.
	if diff := cmp.Diff([]string{"color.png", "manifest.json", "outline.png"}, names); diff != "" {
		t.Errorf("package files (-want +got):\n%s", diff)
	}
}

func TestManifestFields(t *testing.T) {
	files := unpack(t, opts())
	var m map[string]any
	if err := json.Unmarshal(files["manifest.json"], &m); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	for _, k := range []string{"manifestVersion", "version", "id", "developer", "name", "description", "icons", "accentColor"} {
		if _, ok := m[k]; !ok {
			t.Errorf("required field %q missing", k)
		}
	}
	type bot struct {
		BotID              string   `json:"botId"`
		Scopes             []string `json:"scopes"`
		SupportsFiles      *bool    `json:"supportsFiles"`
		IsNotificationOnly bool     `json:"isNotificationOnly"`
		CommandLists       []struct {
			Scopes   []string                              `json:"scopes"`
			Triggers []string                              `json:"triggers"`
			Commands []struct{ Title, Description string } `json:"commands"`
		} `json:"commandLists"`
	}
	var got struct {
		Schema          string `json:"$schema"`
		ManifestVersion string `json:"manifestVersion"`
		Version         string `json:"version"`
		ID              string `json:"id"`
		Developer       map[string]string
		Name            map[string]string
		Description     map[string]string
		Icons           map[string]string
		AccentColor     string
		Bots            []bot
		ValidDomains    []string `json:"validDomains"`
	}
	if err := json.Unmarshal(files["manifest.json"], &got); err != nil {
		t.Fatal(err)
	}
	if got.ManifestVersion != "1.29" || got.Schema != "https://developer.microsoft.com/json-schemas/teams/v1.29/MicrosoftTeams.schema.json" {
		t.Errorf("schema %q / manifestVersion %q", got.Schema, got.ManifestVersion)
	}
	if got.ID != appID || got.Version != "1.0.0" {
		t.Errorf("id %q version %q", got.ID, got.Version)
	}
	wantDev := map[string]string{"name": "Acme Platform Team", "websiteUrl": "https://gatebot.example.com",
		"privacyUrl": "https://gatebot.example.com/privacy", "termsOfUseUrl": "https://gatebot.example.com/terms"}
	if diff := cmp.Diff(wantDev, got.Developer); diff != "" {
		t.Errorf("developer (-want +got):\n%s", diff)
	}
	if got.Name["short"] != "gatebot" || got.Description["short"] == "" || got.Description["full"] == "" {
		t.Errorf("name %v description %v", got.Name, got.Description)
	}
	if got.Icons["color"] != "color.png" || got.Icons["outline"] != "outline.png" {
		t.Errorf("icons %v", got.Icons)
	}
	if len(got.AccentColor) != 7 || got.AccentColor[0] != '#' {
		t.Errorf("accentColor %q", got.AccentColor)
	}
	if len(got.Bots) != 1 {
		t.Fatalf("bots: %d, want 1", len(got.Bots))
	}
	b := got.Bots[0]
	if b.BotID != appID {
		t.Errorf("botId %q, want the app id", b.BotID)
	}
	wantScopes := []string{"team", "personal", "groupChat"}
	if diff := cmp.Diff(wantScopes, b.Scopes); diff != "" {
		t.Errorf("bot scopes (-want +got):\n%s", diff)
	}
	if b.SupportsFiles == nil || *b.SupportsFiles || b.IsNotificationOnly {
		t.Errorf("supportsFiles %v isNotificationOnly %v, want explicit false / false", b.SupportsFiles, b.IsNotificationOnly)
	}
	// One command list per scope, as the schema asks; the same core
	// commands everywhere, "channel" in teams only.
	if len(b.CommandLists) != 3 {
		t.Fatalf("commandLists: %d, want one per scope", len(b.CommandLists))
	}
	core := []string{"run", "pipelines", "pending", "status", "cancel", "help"}
	for i, cl := range b.CommandLists {
		if diff := cmp.Diff([]string{wantScopes[i]}, cl.Scopes); diff != "" {
			t.Errorf("command list %d scopes (-want +got):\n%s", i, diff)
		}
		if cl.Triggers != nil {
			t.Errorf("triggers %v: mention, the default, is what gatebot wants", cl.Triggers)
		}
		var titles []string
		for _, c := range cl.Commands {
			titles = append(titles, c.Title)
		}
		want := core
		if wantScopes[i] == "team" {
			want = append(slices.Clone(core), "channel")
		}
		if diff := cmp.Diff(want, titles); diff != "" {
			t.Errorf("%s commands (-want +got):\n%s", wantScopes[i], diff)
		}
	}
	if diff := cmp.Diff([]string{"gatebot.example.com"}, got.ValidDomains); diff != "" {
		t.Errorf("validDomains (-want +got):\n%s", diff)
	}
}

func TestDefaults(t *testing.T) {
	raw, err := manifest.JSON(manifest.Options{AppID: appID, WebsiteURL: "https://gatebot.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Developer map[string]string `json:"developer"`
		Version   string            `json:"version"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"name": "gatebot", "websiteUrl": "https://gatebot.example.com",
		"privacyUrl": "https://gatebot.example.com", "termsOfUseUrl": "https://gatebot.example.com"}
	if diff := cmp.Diff(want, m.Developer); diff != "" || m.Version != "1.0.0" {
		t.Errorf("developer (-want +got):\n%s\nversion %q", diff, m.Version)
	}
}

func TestOptionsOverrideDefaults(t *testing.T) {
	o := opts()
	o.AppID = strings.ToUpper(appID)
	o.Name = "Deploy Gate"
	o.ShortDescription = "Deploys, approved."
	o.FullDescription = "Long text."
	o.Version = "2.10.0"
	raw, err := manifest.JSON(o)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		ID          string            `json:"id"`
		Version     string            `json:"version"`
		Name        map[string]string `json:"name"`
		Description map[string]string `json:"description"`
		Bots        []struct {
			BotID string `json:"botId"`
		} `json:"bots"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if m.ID != appID || m.Bots[0].BotID != appID {
		t.Errorf("ids %q / %q, want the lower-case GUID", m.ID, m.Bots[0].BotID)
	}
	if m.Version != "2.10.0" || m.Name["short"] != "Deploy Gate" || m.Description["short"] != "Deploys, approved." || m.Description["full"] != "Long text." {
		t.Errorf("manifest = %s", raw)
	}
}

func decodePNG(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	return img
}

func TestOutlineIcon(t *testing.T) {
	img := decodePNG(t, unpack(t, opts())["outline.png"])
	if b := img.Bounds(); b.Dx() != 32 || b.Dy() != 32 {
		t.Fatalf("outline is %v, want 32×32", b)
	}
	white, clear := 0, 0
	minX, minY, maxX, maxY := 32, 32, -1, -1
	for y := range 32 {
		for x := range 32 {
			r, g, b, a := img.At(x, y).RGBA()
			switch {
			case a == 0:
				clear++
			case r == 0xffff && g == 0xffff && b == 0xffff && a == 0xffff:
				white++
				minX, minY, maxX, maxY = min(minX, x), min(minY, y), max(maxX, x), max(maxY, y)
			default:
				t.Fatalf("pixel (%d,%d) = %v: outline pixels must be opaque white or fully transparent", x, y, img.At(x, y))
			}
		}
	}
	if white < 100 || clear < 100 {
		t.Errorf("outline has %d white and %d transparent pixels; expected a visible mark", white, clear)
	}
	// No padding: the mark spans (nearly) the whole icon.
	if minX > 2 || maxX < 29 || maxY-minY < 20 {
		t.Errorf("mark occupies x %d..%d, y %d..%d; Teams wants no padding", minX, maxX, minY, maxY)
	}
}

func TestColorIcon(t *testing.T) {
	img := decodePNG(t, unpack(t, opts())["color.png"])
	if b := img.Bounds(); b.Dx() != 192 || b.Dy() != 192 {
		t.Fatalf("color icon is %v, want 192×192", b)
	}
	white := 0
	for y := range 192 {
		for x := range 192 {
			r, g, b, a := img.At(x, y).RGBA()
			if a != 0xffff {
				t.Fatalf("pixel (%d,%d) not opaque", x, y)
			}
			if r == 0xffff && g == 0xffff && b == 0xffff {
				white++
				// The symbol stays in the central 96×96 area.
				if x < 48 || x >= 144 || y < 48 || y >= 144 {
					t.Fatalf("symbol pixel (%d,%d) outside the central 96×96 area", x, y)
				}
			}
		}
	}
	if white < 900 {
		t.Errorf("only %d symbol pixels", white)
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	if err := manifest.Build(&a, opts()); err != nil {
		t.Fatal(err)
	}
	if err := manifest.Build(&b, opts()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two builds with the same options differ")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*manifest.Options)
		want []string // fields named in the error, in order
	}{
		{"valid", func(*manifest.Options) {}, nil},
		{"missing app id", func(o *manifest.Options) { o.AppID = "" }, []string{"AppID"}},
		{"app id not a guid", func(o *manifest.Options) { o.AppID = "28:6f1c2a3b" }, []string{"AppID"}},
		{"name too long", func(o *manifest.Options) { o.Name = strings.Repeat("n", 31) }, []string{"Name (name.short)"}},
		{"name 30 runes ok", func(o *manifest.Options) { o.Name = strings.Repeat("é", 30) }, nil},
		{"blank name", func(o *manifest.Options) { o.Name = "   " }, []string{"Name (name.short)"}},
		{"short description too long", func(o *manifest.Options) { o.ShortDescription = strings.Repeat("d", 81) }, []string{"ShortDescription"}},
		{"full description too long", func(o *manifest.Options) { o.FullDescription = strings.Repeat("d", 4001) }, []string{"FullDescription"}},
		{"developer defaults", func(o *manifest.Options) { o.Developer = "" }, nil},
		{"developer blank", func(o *manifest.Options) { o.Developer = " " }, []string{"Developer"}},
		{"developer too long", func(o *manifest.Options) { o.Developer = strings.Repeat("x", 33) }, []string{"Developer"}},
		{"http url", func(o *manifest.Options) { o.WebsiteURL = "http://gatebot.example.com" }, []string{"WebsiteURL"}},
		{"relative url", func(o *manifest.Options) { o.PrivacyURL = "/privacy" }, []string{"PrivacyURL"}},
		{"terms and privacy default to the website", func(o *manifest.Options) { o.TermsURL, o.PrivacyURL = "", "" }, nil},
		{"website missing", func(o *manifest.Options) { o.WebsiteURL = "" }, []string{"WebsiteURL"}},
		{"bad version", func(o *manifest.Options) { o.Version = "1.0" }, []string{"Version"}},
		{"prerelease version", func(o *manifest.Options) { o.Version = "1.0.0-rc1" }, []string{"Version"}},
		{"leading zero version", func(o *manifest.Options) { o.Version = "01.0.0" }, []string{"Version"}},
		{"everything at once", func(o *manifest.Options) { *o = manifest.Options{AppID: "x", Name: strings.Repeat("n", 40)} },
			[]string{"AppID", "Name", "WebsiteURL"}},
		{"everything wrong", func(o *manifest.Options) {
			*o = manifest.Options{AppID: "x", Name: strings.Repeat("n", 40), ShortDescription: strings.Repeat("s", 81),
				FullDescription: strings.Repeat("f", 4001), Developer: strings.Repeat("d", 33), WebsiteURL: "ftp://x",
				PrivacyURL: "http://x", TermsURL: "x", Version: "v1"}
		}, []string{"AppID", "Name", "ShortDescription", "FullDescription", "Developer", "WebsiteURL", "PrivacyURL", "TermsURL", "Version"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := opts()
			tc.mod(&o)
			err := o.Validate()
			var buf bytes.Buffer
			buildErr := manifest.Build(&buf, o)
			if tc.want == nil {
				if err != nil || buildErr != nil {
					t.Fatalf("Validate = %v, Build = %v", err, buildErr)
				}
				return
			}
			if err == nil || buildErr == nil {
				t.Fatalf("Validate = %v, Build = %v, want errors naming %v", err, buildErr, tc.want)
			}
			if buf.Len() != 0 {
				t.Errorf("Build wrote %d bytes despite invalid options", buf.Len())
			}
			if !errors.Is(err, manifest.ErrInvalidOptions) {
				t.Errorf("%v does not match ErrInvalidOptions", err)
			}
			var fe *manifest.FieldError
			if !errors.As(err, &fe) {
				t.Errorf("%v holds no *FieldError", err)
			}
			msg := err.Error()
			last := -1
			for _, f := range tc.want {
				i := strings.Index(msg, f)
				if i < 0 || i < last {
					t.Errorf("error %q does not name %q (in order)", msg, f)
				}
				last = i
			}
			if n := strings.Count(msg, "manifest: "); n != len(tc.want) {
				t.Errorf("error reports %d problems, want %d: %q", n, len(tc.want), msg)
			}
		})
	}
}
