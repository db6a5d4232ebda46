package deploy_test

import (
	"slices"
	"strings"
	"testing"
)

// composeService is the part of a compose service the security checks read.
type composeService struct {
	Image       string   `yaml:"image"`
	Command     []string `yaml:"command"`
	Ports       []string `yaml:"ports"`
	Volumes     []string `yaml:"volumes"`
	ReadOnly    bool     `yaml:"read_only"`
	Tmpfs       []string `yaml:"tmpfs"`
	User        string   `yaml:"user"`
	CapDrop     []string `yaml:"cap_drop"`
	CapAdd      []string `yaml:"cap_add"`
	SecurityOpt []string `yaml:"security_opt"`
	Privileged  bool     `yaml:"privileged"`
	Healthcheck struct {
		Test     []string `yaml:"test"`
		Interval string   `yaml:"interval"`
	} `yaml:"healthcheck"`
	Restart string `yaml:"restart"`
}

// TestComposeSecurity: both services run with a read-only root and only
// /tmp as scratch, gain no privileges, and Redis keeps an append-only file
// on a named volume without being published on the host.
func TestComposeSecurity(t *testing.T) {
	t.Parallel()
	var compose struct {
		Services map[string]composeService `yaml:"services"`
		Volumes  map[string]any            `yaml:"volumes"`
	}
	load(t, "compose.yaml", &compose)
	for name, s := range compose.Services {
		if !s.ReadOnly {
			t.Errorf("%s: read_only is not set", name)
		}
		if !slices.ContainsFunc(s.Tmpfs, func(v string) bool { return strings.HasPrefix(v, "/tmp") }) {
			t.Errorf("%s: tmpfs = %v, want /tmp as the only scratch space", name, s.Tmpfs)
		}
		if !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("%s: security_opt = %v, want no-new-privileges:true", name, s.SecurityOpt)
		}
		if s.Privileged || len(s.CapAdd) > 0 {
			t.Errorf("%s: privileged %v, cap_add %v", name, s.Privileged, s.CapAdd)
		}
		if s.Restart != "unless-stopped" {
			t.Errorf("%s: restart = %q", name, s.Restart)
		}
	}
	gb := compose.Services["gatebot"]
	if !slices.Equal(gb.CapDrop, []string{"ALL"}) || gb.User != "65532:65532" {
		t.Errorf("gatebot: cap_drop %v, user %q; want ALL and the distroless nonroot uid", gb.CapDrop, gb.User)
	}
	for _, v := range gb.Volumes {
		if !strings.HasSuffix(v, ":ro") {
			t.Errorf("gatebot: volume %q is writable; gatebot writes nothing", v)
		}
	}
	r := compose.Services["redis"]
	cmd := strings.Join(r.Command, " ")
	if !strings.Contains(cmd, "--appendonly yes") {
		t.Errorf("redis command %q: want --appendonly yes", cmd)
	}
	if len(r.Ports) > 0 {
		t.Errorf("redis ports = %v: only gatebot talks to it", r.Ports)
	}
	if !slices.Contains(r.Volumes, "redis-data:/data") {
		t.Errorf("redis volumes = %v, want the named volume redis-data at /data", r.Volumes)
	}
	if _, ok := compose.Volumes["redis-data"]; !ok {
		t.Error("the redis-data volume is not declared")
	}
	if !slices.Equal(r.Healthcheck.Test, []string{"CMD", "redis-cli", "ping"}) || r.Healthcheck.Interval == "" {
		t.Errorf("redis healthcheck = %+v", r.Healthcheck)
	}
}

// TestDockerfileRuntime: the runtime stage is distroless nonroot and does
// not claim a HEALTHCHECK it could not run; the probes are documented.
func TestDockerfileRuntime(t *testing.T) {
	t.Parallel()
	df := string(read(t, "Dockerfile"))
	runtime := df[strings.LastIndex(df, "\nFROM "):]
	for _, bad := range []string{"HEALTHCHECK", "VOLUME", "USER root", "RUN "} {
		if strings.Contains(runtime, bad) {
			t.Errorf("runtime stage has %q (distroless has no shell; gatebot writes nothing)", bad)
		}
	}
	for _, want := range []string{"/healthz", "/readyz"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile does not document the %s probe", want)
		}
	}
}
