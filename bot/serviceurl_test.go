package bot

import (
	"errors"
	"testing"
)

func TestServiceURLPolicy(t *testing.T) {
	t.Parallel()
	public, _ := CloudPreset("public")
	prod := ServiceURLPolicy{TrustedHosts: public.TrustedServiceHosts}
	dev := ServiceURLPolicy{TrustedHosts: public.TrustedServiceHosts, AllowLoopback: true}
	// rig: auth on, a local connector and the Emulator listed for http.
	rig := ServiceURLPolicy{TrustedHosts: public.TrustedServiceHosts, LoopbackHTTPHosts: []string{"localhost", "127.0.0.1", "[::1]"}}
	// notLoopback: a misconfigured http entry for a remote host is never
	// honoured, even if it reached the policy.
	notLoopback := ServiceURLPolicy{LoopbackHTTPHosts: []string{"10.0.0.1", "localhost.evil.example", "smba.trafficmanager.net"}}
	tests := []struct {
		name   string
		policy ServiceURLPolicy
		url    string
		ok     bool
	}{
		{"teams emea", prod, "https://smba.trafficmanager.net/emea/", true},
		{"teams amer no slash", prod, "https://smba.trafficmanager.net/amer", true},
		{"host case", prod, "https://SMBA.TrafficManager.net/teams/", true},
		{"gcc", prod, "https://smba.infra.gcc.teams.microsoft.com/gcc", true},
		{"explicit 443", prod, "https://smba.trafficmanager.net:443/emea/", true},
		{"http to trusted host", prod, "http://smba.trafficmanager.net/emea/", false},
		{"suffix attack", prod, "https://evil.smba.trafficmanager.net/emea/", false},
		{"customer trafficmanager", prod, "https://mybot.trafficmanager.net/", false},
		{"prefix attack", prod, "https://smba.trafficmanager.net.evil.example/", false},
		{"trailing dot", prod, "https://smba.trafficmanager.net./emea/", false},
		{"userinfo", prod, "https://smba.trafficmanager.net@evil.example/", false},
		{"userinfo on trusted", prod, "https://user:pw@smba.trafficmanager.net/", false},
		{"query", prod, "https://smba.trafficmanager.net/emea/?x=1", false},
		{"fragment", prod, "https://smba.trafficmanager.net/emea/#x", false},
		{"empty", prod, "", false},
		{"relative", prod, "/emea/", false},
		{"opaque", prod, "https:smba.trafficmanager.net", false},
		{"garbage", prod, "://\x00", false},
		{"gov host in public", prod, "https://smba.infra.gov.teams.microsoft.us/", false},
		{"loopback refused in prod", prod, "http://localhost:3978/", false},
		{"loopback https refused in prod", prod, "https://127.0.0.1:8443/", false},
		{"localhost dev", dev, "http://localhost:56150/", true},
		{"127.0.0.1 dev", dev, "http://127.0.0.1:3978", true},
		{"127.1.2.3 dev", dev, "http://127.1.2.3:3978", true},
		{"ipv6 loopback dev", dev, "http://[::1]:3978/", true},
		{"loopback ftp dev", dev, "ftp://localhost/", false},
		{"private ip dev", dev, "http://10.0.0.1/", false},
		{"localhost suffix dev", dev, "http://localhost.evil.example/", false},
		{"nothing trusted", ServiceURLPolicy{}, "https://smba.trafficmanager.net/", false},
		{"rig emulator localhost any port", rig, "http://localhost:56150", true},
		{"rig 127.0.0.1 with path", rig, "http://127.0.0.1:3978/_connector/", true},
		{"rig ipv6 loopback", rig, "http://[::1]:9000/", true},
		{"rig host case", rig, "http://LOCALHOST:1/", true},
		{"rig teams still trusted", rig, "https://smba.trafficmanager.net/emea/", true},
		{"rig unlisted loopback", rig, "http://127.0.0.2:3978/", false},
		{"rig https loopback not listed for https", rig, "https://localhost:8443/", false},
		{"rig http to teams host", rig, "http://smba.trafficmanager.net/emea/", false},
		{"rig private ip", rig, "http://10.0.0.1/", false},
		{"rig localhost suffix", rig, "http://localhost.evil.example/", false},
		{"rig userinfo", rig, "http://user@localhost/", false},
		{"rig query", rig, "http://localhost/?x=1", false},
		{"rig ftp", rig, "ftp://localhost/", false},
		{"http entry not loopback: private ip", notLoopback, "http://10.0.0.1/", false},
		{"http entry not loopback: suffix", notLoopback, "http://localhost.evil.example/", false},
		{"http entry not loopback: teams", notLoopback, "http://smba.trafficmanager.net/", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.policy.Check(tt.url)
			if tt.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrUntrustedServiceURL) {
				t.Fatalf("err = %v, want ErrUntrustedServiceURL", err)
			}
		})
	}
}
