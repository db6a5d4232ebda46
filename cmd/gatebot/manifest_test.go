package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gatebot/gatebot/manifest"
)

const testAppID = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"

// TestManifestBuildsPackage builds a package from flags and checks what is in
// the zip, including that its manifest passes the Teams schema.
func TestManifestBuildsPackage(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "gatebot.zip")
	var stdout bytes.Buffer
	err := run(t.Context(), []string{"manifest", "--app-id", strings.ToUpper(testAppID), "--website-url", "https://gatebot.example.com",
		"--name", "Deploy Gate", "--privacy-url", "https://gatebot.example.com/privacy", "--terms-url", "https://gatebot.example.com/terms",
		"--version", "1.2.3", "--out", out}, env(nil), &stdout, &stdout)
	if err != nil {
		t.Fatalf("manifest: %v\n%s", err, stdout.String())
	}
	if !strings.Contains(stdout.String(), "wrote "+out) {
		t.Errorf("stdout = %q", stdout.String())
	}
	zr, err := zip.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(rc)
		rc.Close()
		files[f.Name] = b.Bytes()
	}
	var names []string
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"color.png", "manifest.json", "outline.png"}) {
		t.Fatalf("zip holds %v", names)
	}
	if err := manifest.CheckSchema(files["manifest.json"]); err != nil {
		t.Errorf("manifest.json: %v", err)
	}
	var m struct {
		ID, Version string
		Name        struct{ Short string }
		Developer   struct {
			PrivacyURL    string `json:"privacyUrl"`
			TermsOfUseURL string `json:"termsOfUseUrl"`
		}
	}
	if err := json.Unmarshal(files["manifest.json"], &m); err != nil {
		t.Fatal(err)
	}
	if m.ID != testAppID || m.Version != "1.2.3" || m.Name.Short != "Deploy Gate" ||
		m.Developer.PrivacyURL != "https://gatebot.example.com/privacy" || m.Developer.TermsOfUseURL != "https://gatebot.example.com/terms" {
		t.Errorf("manifest does not carry the flags: %+v", m)
	}
}

// TestManifestCommandErrors: every mistake exits 2, names the flag, and
// writes no file.
func TestManifestCommandErrors(t *testing.T) {
	t.Parallel()
	ok := []string{"--app-id", testAppID, "--website-url", "https://gatebot.example.com"}
	with := func(extra ...string) []string { return append(slices.Clone(ok), extra...) }
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"stray word", with("pack"), []string{`manifest: unexpected argument "pack"`}},
		{"stray word first", append([]string{"pack"}, ok...), []string{`unexpected argument "pack"`}},
		{"no app id", []string{"--website-url", "https://gatebot.example.com"}, []string{"--app-id: required"}},
		{"app id not a guid", []string{"--app-id", "x", "--website-url", "https://gatebot.example.com"}, []string{`--app-id: "x" is not a GUID`}},
		{"no website", []string{"--app-id", testAppID}, []string{"--website-url: required"}},
		{"http website", []string{"--app-id", testAppID, "--website-url", "http://gatebot.example.com"}, []string{"--website-url: must be https"}},
		{"relative website", []string{"--app-id", testAppID, "--website-url", "gatebot.example.com"}, []string{"--website-url: must be an absolute https URL"}},
		{"http privacy", with("--privacy-url", "http://x.example"), []string{"--privacy-url: must be https"}},
		{"http terms", with("--terms-url", "http://x.example"), []string{"--terms-url: must be https"}},
		{"long name", with("--name", strings.Repeat("n", 31)), []string{"--name: 31 characters, at most 30"}},
		{"bad version", with("--version", "1.0"), []string{`--version: "1.0" is not a version`}},
		{"everything", []string{"--app-id", "x", "--website-url", "ftp://x", "--version", "v1"},
			[]string{"--app-id:", "--website-url:", "--version:"}},
		{"unknown flag", with("--appid", "x"), []string{"-appid"}},
		{"empty out", with("--out", ""), []string{"--out: must not be empty"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			out := filepath.Join(dir, "gatebot.zip")
			args := append([]string{"manifest"}, tc.args...)
			if !slices.Contains(tc.args, "--out") {
				args = append(args, "--out", out)
			}
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), args, env(nil), &stdout, &stderr)
			if exitCode(err) != 2 {
				t.Fatalf("exit %d (%v), want 2", exitCode(err), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
			if !strings.Contains(err.Error(), "usage: gatebot manifest") {
				t.Errorf("error carries no usage:\n%v", err)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q", stdout.String())
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("a failed build left %v behind", entries)
			}
		})
	}
}

// TestManifestCommandKeepsOldPackage: a failed build does not replace or
// remove a package that is already there.
func TestManifestCommandKeepsOldPackage(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "gatebot.zip")
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	err := run(t.Context(), []string{"manifest", "--app-id", "nope", "--website-url", "https://x.example", "--out", out}, env(nil), &b, &b)
	if exitCode(err) != 2 {
		t.Fatalf("exit %d: %v", exitCode(err), err)
	}
	if got, _ := os.ReadFile(out); string(got) != "old" {
		t.Errorf("old package now %q", got)
	}
}

// TestManifestFromConfig: app id and website come from the config; a
// bad value there is named as the config's, and is not a usage error.
func TestManifestFromConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gatebot.yaml")
	if err := os.WriteFile(cfg, []byte("public_url: https://bot.example.com\nbot:\n  app_id: "+testAppID+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "app.zip")
	var b bytes.Buffer
	if err := run(t.Context(), []string{"manifest", "--config", cfg, "--out", out}, env(nil), &b, &b); err != nil {
		t.Fatalf("manifest --config: %v", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("public_url: http://bot.example.com\nbot:\n  app_id: "+testAppID+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := run(t.Context(), []string{"manifest", "--config", bad, "--out", out}, env(nil), &b, &b)
	if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "--website-url (public_url in "+bad+"): must be https") {
		t.Errorf("bad public_url: exit %d, %v", exitCode(err), err)
	}
}
