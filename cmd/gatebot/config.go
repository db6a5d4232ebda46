package main

import (
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/pipelines"
)

// exampleConfig is used by `gatebot serve` when no --config is given: local
// dev mode with the simulated provider.
//
//go:embed gatebot.example.yaml
var exampleConfig []byte

// Config is gatebot.yaml.
type Config struct {
	Listen    string                     `yaml:"listen"`
	PublicURL string                     `yaml:"public_url"`
	Log       LogConfig                  `yaml:"log"`
	Bot       BotConfig                  `yaml:"bot"`
	Redis     RedisConfig                `yaml:"redis"`
	Approvals ApprovalsConfig            `yaml:"approvals"`
	Channels  map[string]ChannelConfig   `yaml:"channels"`
	Providers map[string]ProviderConfig  `yaml:"providers"`
	Pipelines map[string]*PipelineConfig `yaml:"pipelines"`
	API       APIConfig                  `yaml:"api"`
}

// LogConfig selects log level and format.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// BotConfig is the Azure Bot registration and Bot Framework settings.
type BotConfig struct {
	AppID              string   `yaml:"app_id"`
	AppPassword        Secret   `yaml:"app_password"`
	TenantID           string   `yaml:"tenant_id"`
	Cloud              string   `yaml:"cloud"`
	OpenIDMetadataURL  string   `yaml:"openid_metadata_url"`
	Issuer             string   `yaml:"issuer"`
	TokenURL           string   `yaml:"token_url"`
	Scope              string   `yaml:"scope"`
	TrustedServiceURLs []string `yaml:"trusted_service_urls"`
	InsecureSkipAuth   bool     `yaml:"insecure_skip_auth"`
	AllowEmulator      bool     `yaml:"allow_emulator"`
	ManagedIdentity    struct {
		ClientID string `yaml:"client_id"`
		Endpoint string `yaml:"endpoint"`
		Header   Secret `yaml:"header"`
	} `yaml:"managed_identity"`
	Name string `yaml:"name"`
}

// RedisConfig points at the Redis that holds all shared state.
type RedisConfig struct {
	URL    string `yaml:"url"`    // empty = embedded in-memory store (dev only)
	Prefix string `yaml:"prefix"` // key prefix; hash-tag it for Cluster
}

// ApprovalsConfig tunes the gate store.
type ApprovalsConfig struct {
	Retention   Duration `yaml:"retention"`
	AuditMaxLen int64    `yaml:"audit_max_len"`
	AuditMaxAge Duration `yaml:"audit_max_age"`
}

// ChannelConfig is a Teams conversation gates can be posted to.
type ChannelConfig struct {
	ServiceURL     string `yaml:"service_url"`
	ConversationID string `yaml:"conversation_id"`
	TenantID       string `yaml:"tenant_id"`
}

// ProviderConfig is one provider section: its type plus type-specific
// fields, decoded by the provider's own Config.
type ProviderConfig struct {
	Type string
	node yaml.Node
}

// UnmarshalYAML keeps the node so the provider's Config can decode it.
func (p *ProviderConfig) UnmarshalYAML(n *yaml.Node) error {
	var head struct {
		Type string `yaml:"type"`
	}
	if err := n.Decode(&head); err != nil {
		return err
	}
	p.Type = head.Type
	p.node = *n
	return nil
}

// PipelineConfig is one pipeline.
type PipelineConfig struct {
	Provider    string                      `yaml:"provider"`
	Description string                      `yaml:"description"`
	Channel     string                      `yaml:"channel"`
	ID          string                      `yaml:"id"` // alias accepted by the API (e.g. an Opsera pipeline id)
	Target      map[string]any              `yaml:"target"`
	Inputs      map[string]*pipelines.Input `yaml:"inputs"`
	Approval    ApprovalConfig              `yaml:"approval"`
	Runners     []string                    `yaml:"runners"`
	PollEvery   Duration                    `yaml:"poll_every"`
}

// ApprovalConfig is a pipeline's approval policy.
type ApprovalConfig struct {
	Required          int      `yaml:"required"`
	Approvers         []string `yaml:"approvers"`
	AllowSelfApproval *bool    `yaml:"allow_self_approval"`
	Timeout           Duration `yaml:"timeout"`
	StepID            string   `yaml:"step_id"`
}

// APIConfig configures the external HTTP API.
type APIConfig struct {
	CallbackHosts []string `yaml:"callback_hosts"`
	RateLimit     float64  `yaml:"rate_limit"` // requests per second per token
	RateBurst     int      `yaml:"rate_burst"`
	// CallbackSecret (whsec_…) signs callbacks; without it callback_url is
	// refused.
	CallbackSecret Secret `yaml:"callback_secret"`
}

// Secret is a configured credential. It never prints.
type Secret string

// String masks the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// Reveal returns the secret's value, for the one place that sends it.
func (s Secret) Reveal() string { return string(s) }

// Duration is a time.Duration written as "90s", "1h" or "30d".
type Duration time.Duration

// UnmarshalYAML accepts Go durations plus a "d" suffix for days.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(days, "%d", &n); err != nil || n < 0 || fmt.Sprint(n) != days {
			return 0, fmt.Errorf("%q is not a duration (e.g. 90s, 1h, 30d)", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a duration (e.g. 90s, 1h, 30d)", s)
	}
	return v, nil
}

// envRef matches ${NAME} and ${NAME:-default}.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}`)

// expandEnv replaces ${NAME} references. They are first swapped for plain
// placeholders so that `token: ${TOKEN}` parses even inside a flow mapping
// ({…}), then filled into the parsed scalars, so a value's characters can
// never change the document's structure.
func expandEnv(data []byte, getenv func(string) string) (*yaml.Node, error) {
	nonce := fmt.Sprintf("GATEBOTENV%dX", time.Now().UnixNano())
	var refs []string
	text := envRef.ReplaceAllStringFunc(string(data), func(m string) string {
		refs = append(refs, m)
		return fmt.Sprintf("%s%dX", nonce, len(refs)-1)
	})
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return nil, fmt.Errorf("config is not valid YAML: %w", err)
	}
	placeholder := regexp.MustCompile(nonce + `(\d+)X`)
	var fill func(n *yaml.Node)
	fill = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, nonce) {
			n.Value = placeholder.ReplaceAllStringFunc(n.Value, func(m string) string {
				var i int
				fmt.Sscanf(placeholder.FindStringSubmatch(m)[1], "%d", &i)
				sub := envRef.FindStringSubmatch(refs[i])
				if v := getenv(sub[1]); v != "" {
					return v
				}
				return sub[2]
			})
			// An expanded value is a string, whatever it looks like.
			if n.Tag != "!!str" && n.Style == 0 {
				n.Tag = "!!str"
				if n.Value == "" {
					n.Tag = "!!null"
				}
			}
		}
		for _, c := range n.Content {
			fill(c)
		}
	}
	fill(&doc)
	return &doc, nil
}

// parseConfig decodes and expands a config document. Unknown fields are
// errors, so typos do not silently fall back to defaults.
func parseConfig(data []byte, getenv func(string) string) (*Config, error) {
	doc, err := expandEnv(data, getenv)
	if err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 {
		return nil, errors.New("config is empty")
	}
	var c Config
	if err := decodeStrict(doc, &c); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return &c, nil
}

// decodeStrict decodes n into v, refusing unknown fields.
func decodeStrict(n *yaml.Node, v any) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	return dec.Decode(v)
}

// applyDefaults fills unset fields.
func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:3978"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.Redis.Prefix == "" {
		c.Redis.Prefix = "gatebot:"
	}
	if c.Bot.Name == "" {
		c.Bot.Name = "gatebot"
	}
	for _, p := range c.Pipelines {
		if p == nil {
			continue
		}
		if p.Approval.Required == 0 {
			p.Approval.Required = 1
		}
		if time.Duration(p.Approval.Timeout) == 0 {
			p.Approval.Timeout = Duration(time.Hour)
		}
	}
}

// problems collects every problem with a field path, so `config check`
// reports all of them at once.
type problems []string

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, field+": "+fmt.Sprintf(format, args...))
}

// ConfigError lists every problem found in a config.
type ConfigError struct{ Problems []string }

func (e *ConfigError) Error() string {
	return fmt.Sprintf("config has %d problem(s):\n  - %s", len(e.Problems), strings.Join(e.Problems, "\n  - "))
}

// validate checks the whole config, including each provider's and
// pipeline's own rules. built receives the providers that were built.
func (c *Config) validate(reg registry) (map[string]pipelines.Provider, error) {
	var ps problems
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		ps.add("listen", "%q is not host:port", c.Listen)
	}
	loopback := isLoopbackHost(host)
	switch {
	case c.Bot.InsecureSkipAuth && !loopback:
		ps.add("bot.insecure_skip_auth", "is allowed only while listening on a loopback address (listen is %q): without auth anyone who can reach the port could approve deployments", c.Listen)
	case !c.Bot.InsecureSkipAuth && c.Bot.AppID == "":
		ps.add("bot.app_id", "is required (for local dev on a loopback listener set bot.insecure_skip_auth: true instead)")
	case !c.Bot.InsecureSkipAuth && c.Bot.AppPassword == "" && c.Bot.ManagedIdentity.ClientID == "":
		ps.add("bot.app_password", "is required unless bot.managed_identity.client_id is set")
	}
	if c.Redis.URL == "" && !c.Bot.InsecureSkipAuth {
		ps.add("redis.url", "is required outside dev mode: the embedded in-memory store keeps nothing and cannot be shared by replicas")
	}
	if c.Redis.URL != "" {
		if u, err := url.Parse(c.Redis.URL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			ps.add("redis.url", "must be a redis://, rediss:// or unix:// URL")
		}
	}
	for _, u := range c.Bot.TrustedServiceURLs {
		pu, err := url.Parse(u)
		switch {
		case err != nil || pu.Host == "" || (pu.Scheme != "https" && pu.Scheme != "http"):
			ps.add("bot.trusted_service_urls", "%q must be an https URL", u)
		case pu.Scheme == "http" && !isLoopbackHost(pu.Hostname()):
			// The bearer token would cross the network in clear text.
			ps.add("bot.trusted_service_urls", "%q: plain http is allowed only for a loopback host (localhost, 127.0.0.1, [::1])", u)
		}
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		ps.add("log.format", "%q is not text or json", c.Log.Format)
	}
	if _, ok := logLevels[c.Log.Level]; !ok {
		ps.add("log.level", "%q is not debug, info, warn or error", c.Log.Level)
	}
	for _, name := range sortedKeys(c.Channels) {
		ch := c.Channels[name]
		f := "channels." + name
		if pu, err := url.Parse(ch.ServiceURL); err != nil || pu.Host == "" {
			ps.add(f+".service_url", "%q is not a URL", ch.ServiceURL)
		}
		switch {
		case ch.ConversationID == "":
			ps.add(f+".conversation_id", "is required")
		case !strings.HasSuffix(ch.ConversationID, "@thread.tacv2") && !strings.HasSuffix(ch.ConversationID, "@thread.skype"):
			// API gates start a new thread with CreateConversation, which
			// only Teams channels accept.
			ps.add(f+".conversation_id", "%q is not a Teams channel id (19:…@thread.tacv2)", ch.ConversationID)
		}
	}
	built := map[string]pipelines.Provider{}
	for _, name := range sortedKeys(c.Providers) {
		pc := c.Providers[name]
		f := "providers." + name
		build, ok := reg[pc.Type]
		if !ok {
			ps.add(f+".type", "%q is not a provider type (known: %s)", pc.Type, strings.Join(reg.types(), ", "))
			continue
		}
		p, errs := build(&pc.node)
		for _, e := range errs {
			ps.add(f, "%v", e)
		}
		if p != nil {
			built[name] = p
		}
	}
	if len(c.Pipelines) == 0 {
		ps.add("pipelines", "at least one pipeline is required")
	}
	ids := map[string]string{}
	for _, name := range sortedKeys(c.Pipelines) {
		pl := c.Pipelines[name]
		f := "pipelines." + name
		if pl == nil {
			ps.add(f, "is empty")
			continue
		}
		if !validName.MatchString(name) {
			ps.add(f, "pipeline names may use letters, digits, '-', '_' and '.' only")
		}
		if _, ok := c.Providers[pl.Provider]; !ok {
			ps.add(f+".provider", "%q is not a configured provider", pl.Provider)
		}
		if pl.Channel != "" {
			if _, ok := c.Channels[pl.Channel]; !ok {
				ps.add(f+".channel", "%q is not a configured channel", pl.Channel)
			}
		}
		if pl.ID != "" {
			if other, dup := ids[pl.ID]; dup {
				ps.add(f+".id", "%q is also the id of pipeline %s", pl.ID, other)
			}
			if _, clash := c.Pipelines[pl.ID]; clash && pl.ID != name {
				ps.add(f+".id", "%q is the name of another pipeline", pl.ID)
			}
			ids[pl.ID] = name
		}
		a := pl.Approval
		if a.Required < 1 {
			ps.add(f+".approval.required", "must be at least 1")
		}
		if len(a.Approvers) > 0 && a.Required > len(a.Approvers) {
			ps.add(f+".approval.required", "is %d but only %d approvers are listed", a.Required, len(a.Approvers))
		}
		for _, ap := range append(append([]string(nil), a.Approvers...), pl.Runners...) {
			if strings.TrimSpace(ap) == "" || (strings.HasPrefix(ap, "aad:") && len(ap) == 4) {
				ps.add(f+".approval", "empty approver or runner entry")
			}
		}
		def := pl.definition(name)
		for _, e := range def.Compile() {
			ps.add(f, "%v", e)
		}
		if p, ok := built[pl.Provider]; ok {
			if ch, ok := p.(pipelines.Checker); ok {
				for _, e := range ch.CheckPipeline(*def) {
					ps.add(f, "%v", e)
				}
			}
		}
	}
	c.API.check(&ps)
	if len(ps) > 0 {
		return nil, &ConfigError{Problems: ps}
	}
	return built, nil
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

func (pl *PipelineConfig) definition(name string) *pipelines.Definition {
	return &pipelines.Definition{Name: name, Provider: pl.Provider, Description: pl.Description, Target: pl.Target, Inputs: pl.Inputs}
}

func (pl *PipelineConfig) policy() approvals.Policy {
	self := false // the safe default: a requester cannot wave their own change through
	if pl.Approval.AllowSelfApproval != nil {
		self = *pl.Approval.AllowSelfApproval
	}
	return approvals.Policy{
		Required:          pl.Approval.Required,
		Approvers:         pl.Approval.Approvers,
		AllowSelfApproval: self,
		Timeout:           time.Duration(pl.Approval.Timeout),
	}
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
