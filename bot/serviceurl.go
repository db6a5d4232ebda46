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
// match, as in Microsoft's ServiceUrlValidator), or loopback over http or
// https when AllowLoopback is set (Emulator, Agents Playground).
type ServiceURLPolicy struct {
	TrustedHosts  []string
	AllowLoopback bool
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
	if u.Scheme != "https" {
		return fmt.Errorf("%w: scheme %q is not https", ErrUntrustedServiceURL, u.Scheme)
	}
	if !slices.ContainsFunc(p.TrustedHosts, func(h string) bool { return strings.EqualFold(h, host) }) {
		return fmt.Errorf("%w: host %q is not trusted", ErrUntrustedServiceURL, host)
	}
	return nil
}
