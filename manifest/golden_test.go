package manifest_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/gatebot/gatebot/manifest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the current output")

// TestManifestGolden pins the whole manifest.json for reviewable diffs.
func TestManifestGolden(t *testing.T) {
	t.Parallel()
	got, err := manifest.JSON(opts())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "manifest.golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./manifest -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("manifest.json differs from %s (go test ./manifest -update to accept):\n%s", path, got)
	}
}
