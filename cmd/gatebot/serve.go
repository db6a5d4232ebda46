package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/gatebot/gatebot/callbacks"
	"github.com/gatebot/gatebot/engine"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/gatebot/gatebot/approvals"
	"github.com/gatebot/gatebot/bot"
	"github.com/gatebot/gatebot/channels"
	"github.com/gatebot/gatebot/handlers"
	"github.com/gatebot/gatebot/logging"
	"github.com/gatebot/gatebot/metrics"
	"github.com/gatebot/gatebot/replicas"
)

var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

// serveHooks lets tests observe a started server.
type serveHooks struct {
	// ready receives the listener's address once the server accepts
	// connections.
	ready func(addr string)
	// listen, when set, replaces the configured listen address.
	listen string
	// heartbeat, when set, replaces the replica registry's 10 s heartbeat.
	heartbeat time.Duration
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, hooks *serveHooks) error {
	fs := newFlags("serve")
	cfgPath := fs.String("config", getenv("GATEBOT_CONFIG"), "config file (default: $GATEBOT_CONFIG, else the bundled example in local dev mode)")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this loopback address (for example 127.0.0.1:6060); off when empty")
	pos, err := parseArgs(fs, args, "serve", serveUsage, stdout)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, "serve", "", serveUsage); err != nil {
		return err
	}
	c, shape, err := readConfig(*cfgPath, getenv)
	if err != nil {
		return err
	}
	if hooks != nil && hooks.listen != "" {
		c.Listen = hooks.listen
	}
	log := newLogger(c.Log, stderr)
	instance := instanceName()
	tp, stopTracing, err := startTracing(ctx, c.Tracing, instance)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := stopTracing(sctx); err != nil {
			log.Warn("could not flush the last spans", "err", err)
		}
	}()
	if tp != nil {
		log = slog.New(traceLogs{log.Handler()})
		log.Info("tracing on: spans go to the OTLP endpoint", "endpoint", redactedURL(c.Tracing.Endpoint))
	}
	if *pprofAddr != "" {
		_, stopPprof, err := startPprof(*pprofAddr, log)
		if err != nil {
			return usageError(err.Error())
		}
		defer stopPprof()
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: outboundTransport()}
	if tp != nil {
		hc.Transport = tracingTransport{hc.Transport}
	}
	providers, err := c.validateAll(shape, providerRegistry(hc, log))
	if err != nil {
		return err
	}
	if *cfgPath == "" {
		log.Warn("no --config given: using the bundled example config in local dev mode")
	}

	reg := prometheus.NewRegistry()
	var store *approvals.Store   // set below; the scrape-time count reads it
	var fleet *replicas.Registry // likewise
	m, err := newMetrics(reg, func() *approvals.Store { return store }, func() *replicas.Registry { return fleet }, log)
	if err != nil {
		return err
	}
	rdb, closeRedis, err := openRedis(c.Redis, log, m.RedisHook())
	if err != nil {
		return err
	}
	defer closeRedis()
	visibility, engOpts := c.Engine.options()
	store, err = approvals.NewStore(rdb, approvals.Options{
		Prefix:      c.Redis.Prefix,
		Retention:   time.Duration(c.Approvals.Retention),
		AuditMaxLen: c.Approvals.AuditMaxLen,
		AuditMaxAge: time.Duration(c.Approvals.AuditMaxAge),
		// Longer than the engine's trigger budget (checked by config check
		// and engine.New), so a live worker's trigger is not reclaimed by
		// another replica.
		TriggerVisibility: visibility,
		Logger:            log,
		OnTransition: func(pipeline string, _, to approvals.State) {
			m.GateTransition(pipeline, string(to))
		},
	})
	if err != nil {
		return fmt.Errorf("approvals store: %w", err)
	}
	switch err := store.CheckLayout(ctx); {
	case errors.Is(err, approvals.ErrLayout):
		return err
	case err != nil:
		// Redis not answering yet: /readyz says so; the layout is checked
		// by the next start.
		log.Warn("could not check the Redis layout", "err", err)
	}
	var heartbeat time.Duration
	if hooks != nil {
		heartbeat = hooks.heartbeat
	}
	fleet, err = joinReplicas(ctx, rdb, c, instance, heartbeat, log)
	if err != nil {
		return err
	}

	auth, connector, trust, err := botSide(ctx, c.Bot, hc, log, m)
	if err != nil {
		return err
	}
	enginePipelines := map[string]*engine.Pipeline{}
	opts := handlers.Options{
		Logger:    log,
		Auth:      auth,
		Trust:     trust,
		Tenants:   c.Bot.tenantPolicy(),
		Connector: connector,
		Store:     store,
		Pipelines: map[string]*handlers.Pipeline{},
		Channels:  map[string]handlers.Channel{},
		BotName:   c.Bot.Name,
		Metrics:   m,
		Replicas:  fleet,
		Instance:  instance,
	}
	if c.Metrics.Listen == "" {
		opts.MetricsHandler = m.Handler()
	}
	if c.Bot.AppID != "" {
		opts.BotID = "28:" + c.Bot.AppID
	}
	for name, ch := range c.Channels {
		opts.Channels[name] = handlers.Channel{ServiceURL: ch.ServiceURL, ConversationID: ch.ConversationID, TenantID: ch.TenantID}
	}
	if opts.Bindings, err = channels.NewStore(rdb, channels.Options{Prefix: c.Redis.Prefix}); err != nil {
		return fmt.Errorf("channel store: %w", err)
	}
	for name, pl := range c.Pipelines {
		def := pl.definition(name)
		def.Compile() // validated above; this prepares the patterns
		hp := &handlers.Pipeline{
			Def: def, Provider: providers[pl.Provider], ProviderType: c.Providers[pl.Provider].Type,
			Channel: pl.Channel, Policy: pl.policy(), Runners: pl.Runners, StepID: pl.Approval.StepID, Confirm: pl.Approval.Confirm, Target: pl.Approval.Target,
			NotifyDM:  pl.Approval.Notify == "dm",
			PollEvery: time.Duration(pl.PollEvery),
		}
		if pl.ID != "" {
			hp.Aliases = []string{pl.ID}
		}
		opts.Pipelines[name] = hp
		enginePipelines[name] = &engine.Pipeline{Def: def, Provider: hp.Provider, ProviderName: pl.Provider,
			ProviderType: hp.ProviderType, PollEvery: hp.PollEvery}
	}
	warnTenants(c.Bot, log)
	var deliverer *callbacks.Deliverer
	if opts.API, deliverer, err = apiOptions(c, rdb, store, log); err != nil {
		return err
	}
	if tp != nil {
		opts.Tracer = tp.Tracer("github.com/gatebot/gatebot/handlers")
		engOpts.Tracer = tp.Tracer("github.com/gatebot/gatebot/engine")
	}
	srv, err := handlers.New(opts)
	if err != nil {
		return err
	}
	engOpts.Store, engOpts.Teams, engOpts.Pipelines, engOpts.Instance, engOpts.Fleet = store, srv, enginePipelines, instance, fleet
	engOpts.Logger, engOpts.Observer = log, m
	eng, err := engine.New(engOpts)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.Listen, err)
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	workCtx, stopWork := context.WithCancel(ctx)
	defer stopWork()
	var workers sync.WaitGroup
	workers.Go(func() { eng.Run(workCtx) })
	workers.Go(func() { fleet.Run(workCtx) })
	if deliverer != nil {
		workers.Go(func() { deliverer.Run(workCtx) })
	}
	serveErr := make(chan error, 2)
	go func() { serveErr <- hs.Serve(ln) }()
	var ms *http.Server
	if c.Metrics.Listen != "" {
		if ms, err = serveMetrics(c.Metrics.Listen, m, log, serveErr); err != nil {
			return err
		}
	}
	log.Info("gatebot listening", "addr", ln.Addr().String(), "endpoint", "http://"+ln.Addr().String()+"/api/messages",
		"dev_mode", c.Bot.InsecureSkipAuth, "pipelines", len(opts.Pipelines), "version", version)
	if hooks != nil && hooks.ready != nil {
		hooks.ready(ln.Addr().String())
	}

	select {
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	srv.Drain()
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	err = hs.Shutdown(shutCtx)
	if ms != nil {
		ms.Shutdown(shutCtx)
	}
	stopWork()
	workers.Wait()
	// Card posts already promised to Teams get their own budget, not what
	// the HTTP drain left over.
	bgCtx, bgCancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer bgCancel()
	if serr := srv.Shutdown(bgCtx); serr != nil && err == nil {
		err = serr
	}
	if lerr := fleet.Leave(bgCtx); lerr != nil {
		log.Warn("could not leave the replica registry; the others drop this replica once its heartbeat is stale", "err", lerr)
	}
	return err
}

// instanceName names this replica in the trigger consumer group: the host
// name (a pod's name) and a random suffix, so a restarted pod is a new
// consumer and its predecessor's claims are reclaimed by lease.
func instanceName() string {
	h, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%x", h, b)
}

// outboundTransport is the transport of every outbound call. Go's default
// keeps only 2 idle connections per host, and nearly all of gatebot's calls
// go to one host (the regional Bot Connector): with more than two replies
// in flight, every other call dialled a fresh connection and closed it
// afterwards, which was the largest avoidable CPU cost of a chat turn
// (see BENCHMARKS.md).
func outboundTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 256
	return t
}

// newLogger is the process logger; config check has refused any other
// format than text or json.
func newLogger(c LogConfig, w io.Writer) *slog.Logger {
	l, err := logging.New(w, c.Format, logLevels[c.Level])
	if err != nil {
		l, _ = logging.New(w, logging.FormatText, logLevels[c.Level])
	}
	return l
}

// newMetrics registers gatebot's metrics and the Go runtime and process
// collectors on reg. store is read at scrape time, once it exists.
func newMetrics(reg *prometheus.Registry, store func() *approvals.Store, fleet func() *replicas.Registry, log *slog.Logger) (*metrics.Metrics, error) {
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, err
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, err
	}
	return metrics.New(reg, metrics.Options{
		Version: version, GoVersion: runtime.Version(), Logger: log,
		Replicas: func() (int, int) {
			f := fleet()
			if f == nil {
				return 0, 0
			}
			v := f.View()
			return len(v.Live), v.Configs()
		},
		OpenGates: func(ctx context.Context) (map[string]int64, error) {
			s := store()
			if s == nil {
				return nil, errors.New("store not open yet")
			}
			counts, err := s.CountByState(ctx)
			out := make(map[string]int64, len(counts))
			for st, n := range counts {
				out[string(st)] = n
			}
			return out, err
		},
	})
}

// serveMetrics serves /metrics alone on addr (metrics.listen), so the
// bot's listener, often public, does not expose it.
func serveMetrics(addr string, m *metrics.Metrics, log *slog.Logger, serveErr chan<- error) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			serveErr <- fmt.Errorf("metrics listener: %w", err)
		}
	}()
	log.Info("metrics listening", "addr", ln.Addr().String())
	return hs, nil
}

// warnTenants says at start-up where tenant checks are relaxed.
func warnTenants(c BotConfig, log *slog.Logger) {
	pol := c.tenantPolicy()
	switch {
	case c.InsecureSkipAuth && len(c.AllowedTenants) == 0 && c.TenantID == "":
		log.Warn("TENANT CHECKS ARE OFF in local dev mode: activities from any tenant, or none, are served")
	case len(pol.Allowed) == 1 && pol.Allowed[0] == bot.AnyTenant:
		log.Warn(`bot.allowed_tenants is ["*"]: activities from every Microsoft Entra tenant are served`)
	}
	if c.AllowEmulator {
		log.Warn("bot.allow_emulator: activities from the Bot Framework Emulator, which carry no tenant, are served")
	}
}

// botSide builds the Bot Framework pieces: inbound auth, the connector
// client with its token source, and the serviceUrl trust policy.
func botSide(ctx context.Context, c BotConfig, hc *http.Client, log *slog.Logger, obs bot.ConnectorObserver) (handlers.Authenticator, *bot.Connector, bot.ServiceURLPolicy, error) {
	if c.InsecureSkipAuth {
		log.Warn("BOT FRAMEWORK AUTH IS OFF (bot.insecure_skip_auth): no inbound token checks, no outbound tokens; loopback serviceUrls trusted. Local dev only.")
		trust := bot.ServiceURLPolicy{AllowLoopback: true, TrustedHosts: hostsOf(c.TrustedServiceURLs, "https")}
		conn, err := bot.NewConnector(bot.ConnectorConfig{Trust: trust, HTTPClient: hc, Logger: log, Observer: obs})
		return nil, conn, trust, err
	}
	cloud, err := bot.CloudPreset(c.Cloud)
	if err != nil {
		return nil, nil, bot.ServiceURLPolicy{}, fmt.Errorf("bot.cloud: %w", err)
	}
	if c.OpenIDMetadataURL != "" {
		cloud.OpenIDMetadataURL = c.OpenIDMetadataURL
	}
	if c.Issuer != "" {
		cloud.Issuer = c.Issuer
	}
	if c.Scope != "" {
		cloud.Scope = c.Scope
	}
	hosts := cloud.TrustedServiceHosts
	if len(c.TrustedServiceURLs) > 0 {
		hosts = hostsOf(c.TrustedServiceURLs, "https")
	}
	// http entries are loopback only (config check refuses others); the
	// Emulator's connector is http://localhost:<port>.
	trust := bot.ServiceURLPolicy{TrustedHosts: hosts, LoopbackHTTPHosts: hostsOf(c.TrustedServiceURLs, "http")}
	if c.AllowEmulator {
		trust.LoopbackHTTPHosts = append(trust.LoopbackHTTPHosts, "localhost", "127.0.0.1")
	}
	auth, err := bot.NewAuthenticator(bot.AuthConfig{
		AppID: c.AppID, Cloud: cloud, OpenIDMetadataURL: cloud.OpenIDMetadataURL, Issuer: cloud.Issuer,
		AllowEmulator: c.AllowEmulator, HTTPClient: hc, Logger: log,
	})
	if err != nil {
		return nil, nil, trust, fmt.Errorf("bot auth: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	if err := auth.Warm(wctx); err != nil {
		log.Warn("could not fetch Bot Framework signing keys at start; will retry on the first request", "err", err)
	}
	cancel()
	var tokens bot.TokenSource
	if c.ManagedIdentity.ClientID != "" {
		tokens, err = bot.NewManagedIdentity(bot.ManagedIdentityConfig{
			Endpoint: c.ManagedIdentity.Endpoint, Header: c.ManagedIdentity.Header.Reveal(),
			ClientID: c.ManagedIdentity.ClientID, Resource: cloud.Resource(), HTTPClient: hc,
		})
	} else {
		tokenURL := c.TokenURL
		if tokenURL == "" {
			tokenURL = cloud.TokenURL // multi-tenant
			if c.TenantID != "" {
				if tokenURL, err = cloud.SingleTenantTokenURL(c.TenantID); err != nil {
					return nil, nil, trust, fmt.Errorf("bot.tenant_id: %w", err)
				}
			}
		}
		tokens, err = bot.NewClientCredentials(bot.CredentialsConfig{
			TokenURL: tokenURL, ClientID: c.AppID, ClientSecret: c.AppPassword.Reveal(), Scope: cloud.Scope, HTTPClient: hc,
		})
	}
	if err != nil {
		return nil, nil, trust, fmt.Errorf("bot token source: %w", err)
	}
	conn, err := bot.NewConnector(bot.ConnectorConfig{Tokens: tokens, Trust: trust, HTTPClient: hc, Logger: log, MaxRetries: 3, Pacing: true, Observer: obs})
	if err != nil {
		return nil, nil, trust, err
	}
	return auth, conn, trust, nil
}

// hostsOf returns the hosts of the urls with the given scheme.
func hostsOf(urls []string, scheme string) []string {
	var hosts []string
	for _, s := range urls {
		if u, err := url.Parse(s); err == nil && u.Host != "" && strings.EqualFold(u.Scheme, scheme) {
			hosts = append(hosts, strings.ToLower(u.Hostname()))
		}
	}
	return hosts
}

var errNoRedis = errors.New("audit needs redis.url: the embedded dev store lives only inside a running gatebot")
