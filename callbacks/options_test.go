package callbacks_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/callbacks"
)

var testHosts = []string{"hooks.example.com", "*.ci.example.org", "http://127.0.0.1:8080", "https://gw.example.net:8443", "[::1]", "HTTPS://Upper.Example.com"}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	sec, _ := newSecret()
	d, err := callbacks.New(callbacks.Options{Outbox: &approvals.Store{}, Render: render, Secret: sec, Hosts: testHosts})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		url  string
		want string // "" = allowed, else a fragment of the refusal
	}{
		{"https://hooks.example.com/gatebot", ""},
		{"https://HOOKS.example.com:9443/gatebot?x=1", ""},
		{"https://a.ci.example.org/cb", ""},
		{"https://x.a.ci.example.org/cb", ""},
		{"http://127.0.0.1:8080/cb", ""},
		{"https://gw.example.net:8443/cb", ""},
		{"https://[::1]/cb", ""},
		{"https://upper.example.com/cb", ""},
		{"https://upper.example.com:443/cb", ""},
		{"http://hooks.example.com/gatebot", "https"},
		{"https://evil.example.com/x", "allow-list"},
		{"https://hooks.example.com.evil.com/x", "allow-list"},
		{"https://evilhooks.example.com/x", "allow-list"},
		{"https://ci.example.org/cb", "allow-list"},
		{"https://xci.example.org/cb", "allow-list"},
		{"http://127.0.0.1:8081/cb", "https"},
		{"http://127.0.0.1/cb", "https"},
		{"https://127.0.0.1:8080/cb", "allow-list"},
		{"https://gw.example.net/cb", "allow-list"},
		{"https://upper.example.com:8443/cb", "allow-list"},
		{"ftp://hooks.example.com/x", "https"},
		{"https://user:pw@hooks.example.com/x", "credentials"},
		{"https://hooks.example.com@evil.example.com/x", "credentials"},
		{"/relative/path", "absolute"},
		{"hooks.example.com/x", "absolute"},
		{"https:///no-host", "absolute"},
		{"https://hooks.example.com/" + strings.Repeat("a", 2100), "at most"},
		{"mailto:ops@hooks.example.com", "absolute"},
	}
	for _, c := range cases {
		err := d.CheckURL(c.url)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%.60s refused: %v", c.url, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%.60s: %v, want a refusal mentioning %q", c.url, err, c.want)
		}
	}
}

func TestValidateHosts(t *testing.T) {
	t.Parallel()
	if err := callbacks.ValidateHosts(testHosts); err != nil {
		t.Fatalf("valid hosts refused: %v", err)
	}
	if err := callbacks.ValidateHosts(nil); err != nil {
		t.Fatalf("an empty list refused: %v", err)
	}
	for _, c := range []struct{ entry, want string }{
		{"https://hooks.example.com/cb", "nothing after it"},
		{"https://hooks.example.com?x=1", "nothing after it"},
		{"ftp://hooks.example.com", "nothing after it"},
		{"https://u:p@hooks.example.com", "nothing after it"},
		{"*.com", "wildcard"},
		{"*.*.example.com", "wildcard"},
		{"hooks example.com", "not a host name"},
		{"hooks.example.com:8443", "not a host name"},
		{"", "not a host name"},
	} {
		err := callbacks.ValidateHosts([]string{"ok.example.com", c.entry})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "\""+c.entry+"\"") {
			t.Errorf("%q: %v, want an error naming the entry and saying %q", c.entry, err, c.want)
		}
	}
	// Every bad entry is reported, not only the first.
	err := callbacks.ValidateHosts([]string{"a b", "*.com"})
	if err == nil || !strings.Contains(err.Error(), `"a b"`) || !strings.Contains(err.Error(), `"*.com"`) {
		t.Errorf("two bad entries: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	sec, _ := newSecret()
	ok := callbacks.Options{Outbox: &approvals.Store{}, Render: render, Secret: sec, Hosts: []string{"hooks.example.com"}}
	if _, err := callbacks.New(ok); err != nil {
		t.Fatalf("valid options refused: %v", err)
	}
	cases := []struct {
		name string
		mut  func(o *callbacks.Options)
		want string
	}{
		{"no outbox", func(o *callbacks.Options) { o.Outbox = nil }, "Outbox is required"},
		{"no render", func(o *callbacks.Options) { o.Render = nil }, "Render is required"},
		{"no secret", func(o *callbacks.Options) { o.Secret = "" }, "secret"},
		{"short secret", func(o *callbacks.Options) {
			o.Secret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("short"))
		}, "secret"},
		{"secret not base64", func(o *callbacks.Options) { o.Secret = "whsec_not base64!" }, "secret"},
		{"origin with a path", func(o *callbacks.Options) { o.Hosts = []string{"https://hooks.example.com/cb"} }, `"https://hooks.example.com/cb"`},
		{"bare tld wildcard", func(o *callbacks.Options) { o.Hosts = []string{"*.com"} }, `"*.com"`},
		{"host with space", func(o *callbacks.Options) { o.Hosts = []string{"hooks example.com"} }, `"hooks example.com"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			o := ok
			c.mut(&o)
			d, err := callbacks.New(o)
			if err == nil || d != nil {
				t.Fatalf("accepted (%v)", d)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not name %q", err, c.want)
			}
			if strings.Contains(err.Error(), strings.TrimPrefix(sec, "whsec_")) {
				t.Error("the error shows the secret")
			}
		})
	}
	// Several problems are reported together.
	_, err := callbacks.New(callbacks.Options{Hosts: []string{"*.com"}})
	for _, want := range []string{"Outbox", "Render", "secret", `"*.com"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("all-wrong options: %v, want it to name %s", err, want)
		}
	}
}
