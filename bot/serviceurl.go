package bot

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// ServiceURLPolicy decides which serviceUrls may receive the bearer token:
// https with a host exactly on TrustedHosts (never a suffix match: parts of
// trafficmanager.net are customer-registrable; the port is not part of the
// match, as in Microsoft's ServiceUrlValidator); http with a loopback host
// exactly on LoopbackHTTPHosts (the Bot Framework Emulator, a local test
// connector); or any loopback over http or https when AllowLoopback is set
// (auth off: Agents Playground).
type ServiceURLPolicy struct {
	TrustedHosts []string
	// LoopbackHTTPHosts are hosts trusted over plain http, matched exactly
	// like TrustedHosts. Only loopback hosts (localhost, 127.0.0.0/8, ::1)
	// are honoured: a token sent in clear text must not leave the machine.
	LoopbackHTTPHosts []string
	AllowLoopback     bool
}

// Check returns nil when the token may be sent to serviceURL; otherwise an
// error wrapping ErrUntrustedServiceURL.
func (p ServiceURLPolicy) Check(serviceURL string) error {
	u, err := url.Parse(serviceURL)
	if err != nil {
		return fmt.Errorf("%w: unparsable", ErrUntrustedServiceURL)
	}
	host := strings.ToLower(u.Hostname())
	switch {
	case u.Scheme == "" || u.Host == "" || u.Opaque != "":
		return fmt.Errorf("%w: %q is not an absolute URL", ErrUntrustedServiceURL, serviceURL)
	case u.User != nil:
		return fmt.Errorf("%w: URL has user info", ErrUntrustedServiceURL)
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return fmt.Errorf("%w: URL has a query or fragment", ErrUntrustedServiceURL)
	}
	if p.AllowLoopback && isLoopbackHost(host) && (u.Scheme == "http" || u.Scheme == "https") {
		return nil
	}
	if u.Scheme == "http" && isLoopbackHost(host) && containsHost(p.LoopbackHTTPHosts, host) {
		return nil
	}
	if u.Scheme != "https" {
		return fmt.Errorf("%w: scheme %q is not https", ErrUntrustedServiceURL, u.Scheme)
	}
	if !containsHost(p.TrustedHosts, host) {
		return fmt.Errorf("%w: host %q is not trusted", ErrUntrustedServiceURL, host)
	}
	return nil
}

// containsHost reports whether host is exactly one of hosts. Entries may
// be written as in a URL ("[::1]") or bare ("::1").
func containsHost(hosts []string, host string) bool {
	return slices.ContainsFunc(hosts, func(h string) bool {
		return strings.EqualFold(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), host)
	})
}
