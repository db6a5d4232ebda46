package engine

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestImportRules keeps the arrows pointing inward (ARCHITECTURE.md):
// only handlers and cmd know HTTP serving and Teams; the domain, the
// engine and the providers do not, whatever they import indirectly.
func TestImportRules(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is needed to list dependencies")
	}
	const mod = "github.com/gatebot/gatebot/"
	teams := []string{mod + "handlers", mod + "bot", mod + "cards"}
	rules := []struct {
		pkg       string
		forbidden []string
	}{
		{"engine", append([]string{"net/http", mod + "callbacks"}, teams...)},
		{"approvals", append([]string{"net/http", mod + "engine", mod + "pipelines/apiclient"}, teams...)},
		{"pipelines", append([]string{"net/http", mod + "approvals", mod + "engine"}, teams...)},
		{"pipelines/...", append([]string{mod + "approvals", mod + "engine", mod + "callbacks"}, teams...)},
		{"callbacks", append([]string{mod + "engine"}, teams...)},
		{"replicas", append([]string{"net/http", mod + "approvals", mod + "engine", mod + "callbacks"}, teams...)},
		{"standardwebhooks", append([]string{mod + "approvals", mod + "pipelines"}, teams...)},
	}
	for _, r := range rules {
		out, err := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}`, "../"+r.pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", r.pkg, err)
		}
		deps := strings.Fields(string(out))
		for _, f := range r.forbidden {
			if slices.Contains(deps, f) {
				t.Errorf("%s depends on %s", r.pkg, f)
			}
		}
	}
}
