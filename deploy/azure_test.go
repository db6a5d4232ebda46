package deploy_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// TestAzureBicep ties the Bicep template to what gatebot expects of its
// bot registration, and its parameter example to its parameters (there is
// no Bicep compiler in CI).
func TestAzureBicep(t *testing.T) {
	bicep := string(read(t, "azure/main.bicep"))
	for _, want := range []string{
		"'Microsoft.BotService/botServices@",
		"'Microsoft.BotService/botServices/channels@",
		"msaAppType: 'SingleTenant'",
		"msaAppTenantId: msaAppTenantId",
		"endpoint: 'https://${host}/api/messages'",
		"name: 'MsTeamsChannel'",
		"channelName: 'MsTeamsChannel'",
		"isEnabled: true",
	} {
		if !strings.Contains(bicep, want) {
			t.Errorf("main.bicep lacks %q", want)
		}
	}
	params := map[string]bool{} // name → has a default
	for _, m := range regexp.MustCompile(`(?m)^param (\w+) \w+( =)?`).FindAllStringSubmatch(bicep, -1) {
		params[m[1]] = m[2] != ""
	}
	var example struct {
		Parameters map[string]struct {
			Value any `json:"value"`
		} `json:"parameters"`
	}
	if err := json.Unmarshal(read(t, "azure/main.parameters.example.json"), &example); err != nil {
		t.Fatalf("main.parameters.example.json: %v", err)
	}
	for name := range example.Parameters {
		if _, ok := params[name]; !ok {
			t.Errorf("the example sets %q, which main.bicep does not declare", name)
		}
	}
	for name, hasDefault := range params {
		if _, ok := example.Parameters[name]; !ok && !hasDefault {
			t.Errorf("main.bicep requires %q, which the example does not set", name)
		}
	}
	if len(params) < 4 {
		t.Errorf("found only %d params in main.bicep", len(params))
	}
	readme := string(read(t, "azure/README.md"))
	for _, want := range []string{"az login", "az ad app create", "az ad app credential reset", "az deployment group create", "--template-file deploy/azure/main.bicep"} {
		if !strings.Contains(readme, want) {
			t.Errorf("azure/README.md lacks %q", want)
		}
	}
}
