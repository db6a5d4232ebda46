package apiclient

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// RunURL is a configured link template for providers whose web UI routes
// are not documented, so gatebot cannot build run links by itself:
//
//	run_url: https://app.northflank.com/t/acme/project/{project_id}/pipelines/{pipeline_id}
//
// Each {name} is replaced by the path-escaped value Expand is given. The
// empty template builds no links.
type RunURL string

var placeholder = regexp.MustCompile(`\{([a-z_]+)\}`)

// Check reports a template that is not an absolute http(s) URL or that
// uses a placeholder outside known, naming the config key.
func (t RunURL) Check(key string, known ...string) error {
	if t == "" {
		return nil
	}
	u, err := url.Parse(placeholder.ReplaceAllString(string(t), "x"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%s: %q is not an absolute http(s) URL template", key, string(t))
	}
	for _, m := range placeholder.FindAllStringSubmatch(string(t), -1) {
		if !slices.Contains(known, m[1]) {
			return fmt.Errorf("%s: unknown placeholder {%s} (known: {%s})", key, m[1], strings.Join(known, "}, {"))
		}
	}
	return nil
}

// Expand fills the template; it returns "" when the template is empty or
// a placeholder has no value, so a half-built link never reaches a card.
func (t RunURL) Expand(vals map[string]string) string {
	if t == "" {
		return ""
	}
	missing := false
	out := placeholder.ReplaceAllStringFunc(string(t), func(m string) string {
		v := vals[m[1:len(m)-1]]
		if v == "" {
			missing = true
		}
		return url.PathEscape(v)
	})
	if missing {
		return ""
	}
	return out
}
