package bot

import (
	"errors"
	"testing"
)

func TestServiceURLPolicy(t *testing.T) {
	public, _ := CloudPreset("public")
	prod := ServiceURLPolicy{TrustedHosts: public.TrustedServiceHosts}
	dev := ServiceURLPolicy{TrustedHosts: public.TrustedServiceHosts, AllowLoopback: true}
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
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
