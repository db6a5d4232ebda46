package main

import (
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"regexp"
	"slices"
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
	Metrics   MetricsConfig              `yaml:"metrics"`
	Engine    EngineConfig               `yaml:"engine"`
	Tracing   TracingConfig              `yaml:"tracing"`

	// unsetEnv names the ${NAME} references that were empty when the
	// config was read.
	unsetEnv []string
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
	// AllowedTenants lists the Microsoft Entra tenants whose activities
	// gatebot acts on; ["*"] serves any. Default: [tenant_id].
	AllowedTenants  []string `yaml:"allowed_tenants"`
	ManagedIdentity struct {
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
	// Sentinel names a Sentinel-monitored master (or use a
	// redis+sentinel:// URL); the URL then gives only credentials, db and
	// TLS for the data nodes.
	Sentinel RedisSentinel `yaml:"sentinel"`
	// CAFile, CertFile and KeyFile configure TLS (rediss://): the CA that
	// signed the server's certificate, and an optional client certificate.
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// MetricsConfig configures the Prometheus endpoint.
type MetricsConfig struct {
	// Listen, if set, serves /metrics on its own address (such as :9090)
	// instead of the bot's listener, which is often public.
	Listen string `yaml:"listen"`
}

// ApprovalsConfig tunes the gate store.
type ApprovalsConfig struct {
	Retention   Duration `yaml:"retention" check:"positive"`
	AuditMaxLen int64    `yaml:"audit_max_len" check:"positive"`
	AuditMaxAge Duration `yaml:"audit_max_age" check:"positive"`
}

// ChannelConfig is a Teams conversation gates can be posted to. With
// neither ServiceURL nor ConversationID the channel is bound from Teams
// (@gatebot channel register NAME in the channel); TenantID is required
// either way and is the only tenant that can register it.
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
	PollEvery   Duration                    `yaml:"poll_every" check:"positive"`
}

// ApprovalConfig is a pipeline's approval policy.
type ApprovalConfig struct {
	Required          int      `yaml:"required" check:"positive"`
	Approvers         []string `yaml:"approvers"`
	AllowSelfApproval *bool    `yaml:"allow_self_approval"`
	Timeout           Duration `yaml:"timeout" check:"positive"`
	// RemindBefore reminds the approvers once, this long before the
	// deadline, of a gate still pending (shorter than timeout).
	RemindBefore Duration `yaml:"remind_before" check:"positive"`
	StepID       string   `yaml:"step_id"`
	// Confirm asks the approver to confirm before the vote is recorded,
	// for pipelines where a mistaken tap is costly.
	Confirm bool `yaml:"confirm"`
	// Target names where the run goes ("prod") in that question.
	Target string `yaml:"target"`
	// Notify says where approvers are told of a gate besides its
	// conversation: "dm" also sends the card to each listed approver's
	// personal chat.
	Notify string `yaml:"notify"`
}

// APIConfig configures the external HTTP API.
type APIConfig struct {
	CallbackHosts []string `yaml:"callback_hosts"`
	RateLimit     float64  `yaml:"rate_limit" check:"nonnegative"` // requests per second per token
	RateBurst     int      `yaml:"rate_burst" check:"nonnegative"`
	// CallbackSecret (whsec_…) signs callbacks; without it callback_url is
	// refused.
	CallbackSecret Secret `yaml:"callback_secret"`
}

// expandEnv replaces ${NAME} references. They are first swapped for plain
// placeholders so that `token: ${TOKEN}` parses even inside a flow mapping
// ({…}), then filled into the parsed scalars, so a value's characters can
// never change the document's structure.
// The names of ${NAME} references that expanded to nothing are returned, so
// that a problem such as "bot.app_id: is required" can say why.
func expandEnv(data []byte, getenv func(string) string) (*yaml.Node, []string, error) {
	var unset []string
	nonce := fmt.Sprintf("GATEBOTENV%dX", time.Now().UnixNano())
	var refs []string
	text := envRef.ReplaceAllStringFunc(string(data), func(m string) string {
		refs = append(refs, m)
		return fmt.Sprintf("%s%dX", nonce, len(refs)-1)
	})
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return nil, nil, fmt.Errorf("config is not valid YAML: %w", err)
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
				if sub[2] == "" && !slices.Contains(unset, sub[1]) {
					unset = append(unset, sub[1])
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
	return &doc, unset, nil
}

// parseConfig decodes and expands a config document. Problems with its
// shape (unknown fields, values of the wrong kind) are returned, all of
// them, as a *ConfigError next to the config decoded from the rest, so
// that `config check` can add the semantic problems to the same list.
// Only a document that is not YAML at all gives a nil config.
func parseConfig(data []byte, getenv func(string) string) (*Config, error) {
	doc, unset, err := expandEnv(data, getenv)
	if err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 || doc.Content[0].Tag == "!!null" {
		return nil, errors.New("config is empty")
	}
	var ps problems
	for _, p := range checkShape(doc, reflect.TypeFor[Config]()) {
		ps.add(p.Path, "%s", p.Msg)
	}
	c := Config{unsetEnv: unset}
	if err := doc.Decode(&c); err != nil && len(ps) == 0 {
		// The shape check accepts what the decoder does; anything else
		// is a bug here, still reported rather than ignored.
		ps.add("config", "%v", err)
	}
	if len(ps) > 0 {
		return &c, &ConfigError{Problems: ps, UnsetEnv: unset}
	}
	return &c, nil
}

// decodeStrict decodes n into v after the shape check, returning every
// problem with its field path relative to n.
func decodeStrict(n *yaml.Node, v any) []error {
	var errs []error
	for _, p := range checkShape(n, reflect.TypeOf(v).Elem()) {
		errs = append(errs, p)
	}
	if len(errs) > 0 {
		return errs
	}
	if err := n.Decode(v); err != nil {
		return []error{err}
	}
	return nil
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
		// JSON lines for log collectors; text for a person running the
		// local dev mode.
		c.Log.Format = "json"
		if c.Bot.InsecureSkipAuth {
			c.Log.Format = "text"
		}
	}
	if c.Redis.Prefix == "" {
		c.Redis.Prefix = "gatebot:"
	}
	if c.Bot.Name == "" {
		c.Bot.Name = "gatebot"
	}
	c.Engine.applyDefaults()
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

// ConfigError lists every problem found in a config. UnsetEnv names the
// ${NAME} references that were empty, often the cause of "is required".
type ConfigError struct {
	Problems []string
	UnsetEnv []string
}

func (e *ConfigError) Error() string {
	msg := fmt.Sprintf("config has %d problem(s):\n  - %s", len(e.Problems), strings.Join(e.Problems, "\n  - "))
	if len(e.UnsetEnv) > 0 {
		msg += "\n(not set in this environment, so empty: ${" + strings.Join(e.UnsetEnv, "}, ${") + "})"
	}
	return msg
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
	c.Redis.check(&ps)
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			ps.add("metrics.listen", "%q is not host:port (such as :9090)", c.Metrics.Listen)
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
	c.Bot.checkTenants(&ps)
	if c.Log.Format != "text" && c.Log.Format != "json" {
		ps.add("log.format", "%q is not text or json", c.Log.Format)
	}
	if _, ok := logLevels[c.Log.Level]; !ok {
		ps.add("log.level", "%q is not debug, info, warn or error", c.Log.Level)
	}
	for _, name := range sortedKeys(c.Channels) {
		ch := c.Channels[name]
		f := "channels." + name
		// Without a conversation_id the channel is registered from Teams
		// (@gatebot channel register NAME), which supplies both.
		registered := ch.ConversationID == "" && ch.ServiceURL == ""
		if pu, err := url.Parse(ch.ServiceURL); !registered && (err != nil || pu.Host == "") {
			ps.add(f+".service_url", "%q is not a URL", ch.ServiceURL)
		}
		tenants := c.Bot.tenantPolicy()
		switch {
		case ch.TenantID == "":
			ps.add(f+".tenant_id", "is required: the tenant of the channel's team")
		case len(tenants.Allowed) > 0 && !tenants.Allows(ch.TenantID):
			ps.add(f+".tenant_id", "%q is not in bot.allowed_tenants", ch.TenantID)
		}
		switch {
		case registered:
		case ch.ConversationID == "":
			ps.add(f+".conversation_id", "is required with service_url (or leave both out and register the channel from Teams)")
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
			if fp, ok := e.(fieldProblem); ok {
				ps.add(joinPath(f, fp.Path), "%s", fp.Msg)
				continue
			}
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
		pl.checkPeople(f, &ps)
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
	c.Engine.check(&ps)
	c.Tracing.check(&ps)
	if len(ps) > 0 {
		return nil, &ConfigError{Problems: ps, UnsetEnv: c.unsetEnv}
	}
	return built, nil
}

// checkPeople checks the approver and runner lists: each entry a UPN or
// aad:<object id>, none twice, and enough approvers for the quorum.
func (pl *PipelineConfig) checkPeople(f string, ps *problems) {
	a := pl.Approval
	distinct := map[string]bool{}
	for i, ap := range a.Approvers {
		p := fmt.Sprintf("%s.approval.approvers[%d]", f, i)
		if msg := personEntryProblem(ap); msg != "" {
			ps.add(p, "%s", msg)
			continue
		}
		key := strings.ToLower(strings.TrimSpace(ap))
		if distinct[key] {
			ps.add(p, "%q is listed twice", ap)
		}
		distinct[key] = true
	}
	if r := time.Duration(a.RemindBefore); r > 0 && r >= time.Duration(a.Timeout) {
		ps.add(f+".approval.remind_before", "%s is not shorter than the timeout %s, so the reminder could never come before the gate expires", r, time.Duration(a.Timeout))
	}
	switch a.Notify {
	case "", "channel":
	case "dm":
		if len(a.Approvers) == 0 {
			ps.add(f+".approval.notify", "is dm but no approvers are listed: gatebot sends the card personally only to listed approvers")
		}
	default:
		ps.add(f+".approval.notify", "%q is not a notify mode (use channel or dm)", a.Notify)
	}
	if len(a.Approvers) > 0 && a.Required > len(distinct) {
		ps.add(f+".approval.required", "is %d but only %d distinct approvers are listed, so no gate could ever be approved", a.Required, len(distinct))
	}
	for i, r := range pl.Runners {
		if msg := personEntryProblem(r); msg != "" {
			ps.add(fmt.Sprintf("%s.runners[%d]", f, i), "%s", msg)
		}
	}
}

var (
	upnPattern      = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s.]+$`)
	objectIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// personEntryProblem says what is wrong with an approver or runner entry,
// or "" when it is a UPN or aad:<object id> (what Person.Matches reads).
func personEntryProblem(e string) string {
	e = strings.TrimSpace(e)
	if id, ok := strings.CutPrefix(e, "aad:"); ok {
		if !objectIDPattern.MatchString(id) {
			return fmt.Sprintf("%q: the Entra object id after aad: must be a GUID such as aad:00000000-0000-0000-0000-000000000000", e)
		}
		return ""
	}
	if !upnPattern.MatchString(e) {
		return fmt.Sprintf("%q is neither a UPN (name@example.com) nor aad:<object id>", e)
	}
	return ""
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
		RemindBefore:      time.Duration(pl.Approval.RemindBefore),
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
