package deploy_test

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The facts every deployment file must agree on.
const (
	port       = "3978"
	configPath = "/etc/gatebot/gatebot.yaml"
	liveness   = "/healthz" // handlers: 200 while the process runs
	readiness  = "/readyz"  // handlers: 200 once Redis answers
)

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.FromSlash(path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func load(t *testing.T, path string, v any) {
	t.Helper()
	if err := yaml.Unmarshal(read(t, path), v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// envRefs returns the ${NAME} variables the values of a gatebot config
// refer to (comments are not values: gatebot expands scalars only).
func envRefs(t *testing.T, doc []byte) []string {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		t.Fatal(err)
	}
	ref := regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)`)
	var names []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode {
			for _, m := range ref.FindAllStringSubmatch(n.Value, -1) {
				if !slices.Contains(names, m[1]) {
					names = append(names, m[1])
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
	return names
}

// gatebotConfig is the part of gatebot.yaml these files depend on.
type gatebotConfig struct {
	Listen string `yaml:"listen"`
	Bot    struct {
		AppID            string `yaml:"app_id"`
		AppPassword      string `yaml:"app_password"`
		InsecureSkipAuth bool   `yaml:"insecure_skip_auth"`
	} `yaml:"bot"`
	Redis struct {
		URL string `yaml:"url"`
	} `yaml:"redis"`
}

// checkProductionConfig asserts a config listens on all interfaces at the
// container port with real auth and a real Redis, as gatebot demands of a
// non-loopback listener.
func checkProductionConfig(t *testing.T, name string, c gatebotConfig) {
	t.Helper()
	host, p, err := net.SplitHostPort(c.Listen)
	if err != nil || host != "0.0.0.0" || p != port {
		t.Errorf("%s: listen = %q, want 0.0.0.0:%s", name, c.Listen, port)
	}
	if c.Bot.InsecureSkipAuth {
		t.Errorf("%s: bot.insecure_skip_auth is set; a container listens on a non-loopback address", name)
	}
	if c.Bot.AppID == "" || c.Bot.AppPassword == "" || c.Redis.URL == "" {
		t.Errorf("%s: bot.app_id, bot.app_password and redis.url must be set (from the environment)", name)
	}
	if !strings.HasPrefix(c.Bot.AppPassword, "${") {
		t.Errorf("%s: bot.app_password must come from the environment, not the file", name)
	}
}

func TestDockerfile(t *testing.T) {
	df := string(read(t, "Dockerfile"))
	var froms []string
	for line := range strings.SplitSeq(df, "\n") {
		if f, ok := strings.CutPrefix(line, "FROM "); ok {
			froms = append(froms, strings.Fields(f)[0])
		}
	}
	if len(froms) != 2 || froms[0] != "golang:1.26" || !strings.HasPrefix(froms[1], "gcr.io/distroless/static") || !strings.HasSuffix(froms[1], ":nonroot") {
		t.Errorf("stages = %v, want golang:1.26 then distroless/static …:nonroot", froms)
	}
	// The build image must be the toolchain go.mod asks for.
	gomod := string(read(t, "../go.mod"))
	if m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(gomod); m == nil || "golang:"+m[1] != froms[0] {
		t.Errorf("go.mod wants go %v, Dockerfile builds with %s", m, froms[0])
	}
	for _, want := range []string{
		"CGO_ENABLED=0",
		"./cmd/gatebot",
		"EXPOSE " + port,
		"USER 65532:65532",
		`CMD ["serve", "--config", "` + configPath + `"]`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}

func TestExampleConfig(t *testing.T) {
	var c gatebotConfig
	load(t, "gatebot.yaml", &c)
	checkProductionConfig(t, "gatebot.yaml", c)
}

func TestCompose(t *testing.T) {
	var compose struct {
		Services map[string]struct {
			Build struct {
				Context    string `yaml:"context"`
				Dockerfile string `yaml:"dockerfile"`
			} `yaml:"build"`
			Image       string            `yaml:"image"`
			Command     []string          `yaml:"command"`
			Ports       []string          `yaml:"ports"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
			ReadOnly    bool              `yaml:"read_only"`
			User        string            `yaml:"user"`
			DependsOn   map[string]any    `yaml:"depends_on"`
		} `yaml:"services"`
	}
	load(t, "compose.yaml", &compose)
	gb, ok := compose.Services["gatebot"]
	if !ok {
		t.Fatal("no gatebot service")
	}
	redis, ok := compose.Services["redis"]
	if !ok || redis.Image != "redis:7" {
		t.Errorf("redis service image = %q, want redis:7", redis.Image)
	}
	if gb.Build.Context != ".." || gb.Build.Dockerfile != "deploy/Dockerfile" {
		t.Errorf("build = %+v, want the repository root and deploy/Dockerfile", gb.Build)
	}
	if !slices.Equal(gb.Command, []string{"serve", "--config", configPath}) {
		t.Errorf("command = %v", gb.Command)
	}
	if !slices.Contains(gb.Ports, port+":"+port) {
		t.Errorf("ports = %v, want %s:%s", gb.Ports, port, port)
	}
	if !slices.Contains(gb.Volumes, "./gatebot.yaml:"+configPath+":ro") {
		t.Errorf("volumes = %v, want ./gatebot.yaml mounted read-only at %s", gb.Volumes, configPath)
	}
	if !gb.ReadOnly || gb.User != "65532:65532" {
		t.Errorf("read_only = %v, user = %q", gb.ReadOnly, gb.User)
	}
	if _, ok := gb.DependsOn["redis"]; !ok {
		t.Error("gatebot does not depend on redis")
	}
	if u := gb.Environment["REDIS_URL"]; !strings.HasPrefix(u, "redis://redis:6379/") {
		t.Errorf("REDIS_URL = %q, want the redis service", u)
	}
	// Every ${NAME} in the mounted config has a value from compose, and
	// secrets are passed through from the caller's environment, not written.
	refs := envRefs(t, read(t, "gatebot.yaml"))
	if len(refs) < 3 {
		t.Fatalf("gatebot.yaml refers to %v; expected the bot credentials and Redis from the environment", refs)
	}
	for _, name := range refs {
		v, ok := gb.Environment[name]
		if !ok {
			t.Errorf("gatebot.yaml uses ${%s}, which compose.yaml does not set", name)
		}
		if strings.Contains(name, "PASSWORD") || strings.Contains(name, "TOKEN") {
			if !strings.HasPrefix(v, "${"+name) {
				t.Errorf("%s = %q: secrets must come from the caller's environment", name, v)
			}
		}
	}
}

// chartValues is the part of the chart's values.yaml these tests check.
type chartValues struct {
	ReplicaCount  int           `yaml:"replicaCount"`
	ContainerPort int           `yaml:"containerPort"`
	Config        gatebotConfig `yaml:"config"`
	Env           map[string]string
	SecretEnv     []struct {
		Name       string `yaml:"name"`
		SecretName string `yaml:"secretName"`
		Key        string `yaml:"key"`
	} `yaml:"secretEnv"`
	Probes struct {
		Liveness  struct{ Path string }
		Readiness struct{ Path string }
	}
	PodSecurityContext struct {
		RunAsNonRoot   bool                  `yaml:"runAsNonRoot"`
		SeccompProfile struct{ Type string } `yaml:"seccompProfile"`
	} `yaml:"podSecurityContext"`
	SecurityContext struct {
		ReadOnlyRootFilesystem   bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation bool `yaml:"allowPrivilegeEscalation"`
		Capabilities             struct{ Drop []string }
		SeccompProfile           struct{ Type string } `yaml:"seccompProfile"`
	} `yaml:"securityContext"`
	Secrets struct {
		ExistingSecret string            `yaml:"existingSecret"`
		AppPassword    string            `yaml:"appPassword"`
		CallbackSecret string            `yaml:"callbackSecret"`
		RedisURL       string            `yaml:"redisURL"`
		Keys           map[string]string `yaml:"keys"`
	} `yaml:"secrets"`
	Redis struct {
		Embedded struct {
			Enabled bool `yaml:"enabled"`
		} `yaml:"embedded"`
	} `yaml:"redis"`
	Ingress struct {
		Enabled bool `yaml:"enabled"`
	} `yaml:"ingress"`
	ServiceMonitor struct {
		Enabled bool `yaml:"enabled"`
	} `yaml:"serviceMonitor"`
	PodDisruptionBudget struct {
		Enabled      bool `yaml:"enabled"`
		MinAvailable int  `yaml:"minAvailable"`
	} `yaml:"podDisruptionBudget"`
	Resources struct {
		Requests map[string]string
		Limits   map[string]string
	}
}

func TestChartValues(t *testing.T) {
	var v chartValues
	load(t, "helm/gatebot/values.yaml", &v)
	if v.ReplicaCount != 2 {
		t.Errorf("replicaCount = %d, want 2", v.ReplicaCount)
	}
	if v.Probes.Liveness.Path != liveness || v.Probes.Readiness.Path != readiness {
		t.Errorf("probes = %q / %q, want %s / %s", v.Probes.Liveness.Path, v.Probes.Readiness.Path, liveness, readiness)
	}
	if got := v.ContainerPort; got != 3978 {
		t.Errorf("containerPort = %d, want %s", got, port)
	}
	checkProductionConfig(t, "values.yaml config", v.Config)
	if !v.PodSecurityContext.RunAsNonRoot || !v.SecurityContext.ReadOnlyRootFilesystem ||
		v.SecurityContext.AllowPrivilegeEscalation || !slices.Contains(v.SecurityContext.Capabilities.Drop, "ALL") {
		t.Errorf("security context = %+v / %+v", v.PodSecurityContext, v.SecurityContext)
	}
	if v.PodSecurityContext.SeccompProfile.Type != "RuntimeDefault" || v.SecurityContext.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("seccomp profiles = %q / %q, want RuntimeDefault", v.PodSecurityContext.SeccompProfile.Type, v.SecurityContext.SeccompProfile.Type)
	}
	// Secrets are never defaults; optional parts are off until asked for.
	if v.Secrets.AppPassword != "" || v.Secrets.CallbackSecret != "" || v.Secrets.RedisURL != "" || v.Secrets.ExistingSecret != "" {
		t.Errorf("values.yaml carries credentials: %+v", v.Secrets)
	}
	if v.Redis.Embedded.Enabled || v.Ingress.Enabled || v.ServiceMonitor.Enabled {
		t.Error("the in-chart Redis, the Ingress and the ServiceMonitor must be off by default")
	}
	if !v.PodDisruptionBudget.Enabled || v.PodDisruptionBudget.MinAvailable < 1 || v.PodDisruptionBudget.MinAvailable >= v.ReplicaCount {
		t.Errorf("podDisruptionBudget = %+v with %d replicas", v.PodDisruptionBudget, v.ReplicaCount)
	}
	if v.Resources.Requests["memory"] == "" || v.Resources.Limits["memory"] == "" {
		t.Errorf("resources = %+v, want memory requests and limits", v.Resources)
	}
	// Every ${NAME} in the rendered config is set by env or a Secret, and
	// credentials only ever come from Secrets.
	var raw struct {
		Config any `yaml:"config"`
	}
	load(t, "helm/gatebot/values.yaml", &raw)
	cfg, _ := yaml.Marshal(raw.Config)
	// The chart's credentials Secret sets these (templates/deployment.yaml).
	dep := string(read(t, "helm/gatebot/templates/deployment.yaml"))
	secret := map[string]bool{}
	for name, key := range map[string]string{"MICROSOFT_APP_PASSWORD": "appPassword", "GATEBOT_CALLBACK_SECRET": "callbackSecret", "REDIS_URL": "redisURL"} {
		if !strings.Contains(dep, "- name: "+name) || !strings.Contains(dep, "key: {{ .Values.secrets.keys."+key+" }}") || v.Secrets.Keys[key] == "" {
			t.Errorf("deployment.yaml does not read %s from the credentials Secret's secrets.keys.%s", name, key)
		}
		secret[name] = true
	}
	for _, s := range v.SecretEnv {
		if s.Name == "" || s.SecretName == "" || s.Key == "" {
			t.Errorf("secretEnv entry %+v lacks name, secretName or key", s)
		}
		secret[s.Name] = true
	}
	for _, name := range envRefs(t, cfg) {
		_, plain := v.Env[name]
		switch {
		case !plain && !secret[name]:
			t.Errorf("config uses ${%s}, which neither env nor secretEnv sets", name)
		case plain && (strings.Contains(name, "PASSWORD") || strings.Contains(name, "TOKEN") || name == "REDIS_URL"):
			t.Errorf("%s is a plain env value; it must come from a Secret", name)
		}
	}
}

func TestChartTemplates(t *testing.T) {
	var chart struct {
		APIVersion string `yaml:"apiVersion"`
		Name       string `yaml:"name"`
		Version    string `yaml:"version"`
		AppVersion string `yaml:"appVersion"`
	}
	load(t, "helm/gatebot/Chart.yaml", &chart)
	if chart.APIVersion != "v2" || chart.Name != "gatebot" || chart.Version == "" || chart.AppVersion == "" {
		t.Errorf("Chart.yaml = %+v", chart)
	}
	dep := string(read(t, "helm/gatebot/templates/deployment.yaml"))
	// The templates are rendered by .ci/helm-check.sh (helm is not a Go
	// dependency); these checks tie them to the values checked above.
	for _, want := range []string{
		"replicas: {{ .Values.replicaCount }}",
		`args: ["serve", "--config", "` + configPath + `"]`,
		"mountPath: " + filepath.Dir(configPath),
		"containerPort: {{ .Values.containerPort }}",
		"path: {{ .Values.probes.liveness.path }}",
		"path: {{ .Values.probes.readiness.path }}",
		"secretKeyRef:",
		"checksum/config:",
		"toYaml .Values.securityContext",
	} {
		if !strings.Contains(dep, want) {
			t.Errorf("deployment.yaml lacks %q", want)
		}
	}
	cm := string(read(t, "helm/gatebot/templates/configmap.yaml"))
	if !strings.Contains(cm, "gatebot.yaml: |") || !strings.Contains(cm, "toYaml .Values.config") {
		t.Errorf("configmap.yaml does not render .Values.config as gatebot.yaml:\n%s", cm)
	}
	for _, f := range []string{"service.yaml", "pdb.yaml", "serviceaccount.yaml", "_helpers.tpl", "secret.yaml", "ingress.yaml", "servicemonitor.yaml", "redis.yaml"} {
		if _, err := os.Stat(filepath.Join("helm", "gatebot", "templates", f)); err != nil {
			t.Error(err)
		}
	}
	if pdb := string(read(t, "helm/gatebot/templates/pdb.yaml")); !strings.Contains(pdb, "kind: PodDisruptionBudget") || !strings.Contains(pdb, "policy/v1") {
		t.Error("pdb.yaml is not a policy/v1 PodDisruptionBudget")
	}
}

// TestChartOptionalParts ties the optional templates to what gatebot
// serves: the Ingress routes only /api, the ServiceMonitor scrapes
// /metrics on the bot port, and the in-chart Redis keeps an append-only
// file on its volume.
func TestChartOptionalParts(t *testing.T) {
	ing := string(read(t, "helm/gatebot/templates/ingress.yaml"))
	if !strings.Contains(ing, "path: /api\n") || strings.Count(ing, "path:") != 1 || !strings.Contains(ing, "name: http") {
		t.Errorf("ingress.yaml must route /api (and only it) to the http port:\n%s", ing)
	}
	sm := string(read(t, "helm/gatebot/templates/servicemonitor.yaml"))
	for _, want := range []string{"kind: ServiceMonitor", "port: http", "path: /metrics"} {
		if !strings.Contains(sm, want) {
			t.Errorf("servicemonitor.yaml lacks %q", want)
		}
	}
	rd := string(read(t, "helm/gatebot/templates/redis.yaml"))
	for _, want := range []string{"kind: StatefulSet", `"--appendonly", "yes"`, "mountPath: /data", "volumeClaimTemplates:", "readOnlyRootFilesystem: true", "runAsNonRoot: true"} {
		if !strings.Contains(rd, want) {
			t.Errorf("redis.yaml lacks %q", want)
		}
	}
	sec := string(read(t, "helm/gatebot/templates/secret.yaml"))
	if !strings.Contains(sec, "if not .Values.secrets.existingSecret") || !strings.Contains(sec, "b64enc") {
		t.Errorf("secret.yaml must be created only without secrets.existingSecret:\n%s", sec)
	}
}

// TestChartValuesSchema checks values.schema.json is JSON Schema that
// knows every top-level value: it refuses unknown ones, so a value added
// to values.yaml but not to the schema would break every install.
func TestChartValuesSchema(t *testing.T) {
	var schema struct {
		Schema               string                     `json:"$schema"`
		Type                 string                     `json:"type"`
		AdditionalProperties *bool                      `json:"additionalProperties"`
		Properties           map[string]json.RawMessage `json:"properties"`
		Required             []string                   `json:"required"`
	}
	if err := json.Unmarshal(read(t, "helm/gatebot/values.schema.json"), &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	if schema.Type != "object" || schema.AdditionalProperties == nil || *schema.AdditionalProperties || !strings.Contains(schema.Schema, "json-schema.org") {
		t.Errorf("schema head = %q %q additionalProperties=%v", schema.Schema, schema.Type, schema.AdditionalProperties)
	}
	var values map[string]any
	load(t, "helm/gatebot/values.yaml", &values)
	for k := range values {
		if _, ok := schema.Properties[k]; !ok {
			t.Errorf("values.yaml has %q, which values.schema.json does not allow", k)
		}
	}
	for _, k := range schema.Required {
		if _, ok := values[k]; !ok {
			t.Errorf("values.schema.json requires %q, which values.yaml lacks", k)
		}
	}
}
