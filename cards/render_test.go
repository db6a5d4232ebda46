package cards_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRenderGolden renders every golden card with the official Adaptive
// Cards renderer in headless Chromium (e2e/cards/render.mjs) and fails when
// the renderer reports a parse or validation event for any of them. PNGs go
// to $CARDS_RENDER_OUT, else a temporary folder. It skips, saying why, when
// node, Chromium or the pinned npm packages are missing: .ci/cards-render.sh
// installs them and runs the same script.
func TestRenderGolden(t *testing.T) {
	if testing.Short() {
		t.Skip("renders in a browser; skipped in -short")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("no Chromium at %s (apt-get install chromium)", chromium)
	}
	dir, _ := filepath.Abs(filepath.Join("..", "e2e", "cards"))
	for _, pkg := range []string{"adaptivecards", "markdown-it", "playwright-core"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg)); err != nil {
			t.Skipf("%s is not installed in %s (run npm ci there, or .ci/cards-render.sh)", pkg, dir)
		}
	}
	golden, _ := filepath.Abs("testdata")
	out := os.Getenv("CARDS_RENDER_OUT")
	if out == "" {
		out = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "render.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CARDS_GOLDEN_DIR="+golden, "CARDS_RENDER_OUT="+out, "CHROMIUM="+chromium)
	raw, err := cmd.CombinedOutput()
	if strings.HasPrefix(string(raw), "SKIP") {
		t.Skip(strings.TrimSpace(string(raw)))
	}
	if err != nil {
		t.Fatalf("renderer reported problems (%v):\n%s", err, raw)
	}
	t.Logf("%s", lastLine(string(raw)))
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
