package main

import (
	"log/slog"
	"net/http"
	"sort"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/gatebot/gatebot/pipelines"
	"github.com/gatebot/gatebot/pipelines/azuredevops"
	"github.com/gatebot/gatebot/pipelines/codearts"
	"github.com/gatebot/gatebot/pipelines/githubactions"
	"github.com/gatebot/gatebot/pipelines/gitlab"
	"github.com/gatebot/gatebot/pipelines/humanitec"
	"github.com/gatebot/gatebot/pipelines/jenkins"
	"github.com/gatebot/gatebot/pipelines/northflank"
	"github.com/gatebot/gatebot/pipelines/opsera"
	"github.com/gatebot/gatebot/pipelines/servicestage"
	"github.com/gatebot/gatebot/pipelines/simulated"
	"github.com/gatebot/gatebot/pipelines/webhook"
	"github.com/gatebot/gatebot/pipelines/yunxiao"
)

// registry maps a provider `type` to the function that builds it from its
// config section.
type registry map[string]func(n *yaml.Node) (pipelines.Provider, []error)

func (r registry) types() []string {
	t := make([]string, 0, len(r))
	for k := range r {
		t = append(t, k)
	}
	sort.Strings(t)
	return t
}

// providerSection decodes a provider's section into its Config, refusing
// unknown fields; `type` is gatebot's and not passed on.
func providerSection[C any](n *yaml.Node) (C, []error) {
	var w struct {
		Type string `yaml:"type"`
		Cfg  C      `yaml:",inline"`
	}
	return w.Cfg, decodeStrict(n, &w)
}

// validator is what every provider Config offers.
type validator interface{ Validate() []error }

// build decodes and validates a section, then constructs the provider.
func build[C validator, P pipelines.Provider](n *yaml.Node, newP func(C) (P, error)) (pipelines.Provider, []error) {
	cfg, errs := providerSection[C](n)
	if len(errs) > 0 {
		return nil, errs
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, errs
	}
	p, err := newP(cfg)
	if err != nil {
		return nil, []error{err}
	}
	return p, nil
}

// apiProvider builds a provider that calls an HTTP API, handing it the
// shared HTTP client (with its timeout) and the logger.
func apiProvider[C validator, P pipelines.Provider, O any](
	newP func(C, ...O) (P, error), withHTTP func(*http.Client) O, withLog func(*slog.Logger) O,
	hc *http.Client, log *slog.Logger,
) func(n *yaml.Node) (pipelines.Provider, []error) {
	return func(n *yaml.Node) (pipelines.Provider, []error) {
		return build(n, func(c C) (P, error) { return newP(c, withHTTP(hc), withLog(log)) })
	}
}

// providerRegistry lists every provider type gatebot ships.
func providerRegistry(hc *http.Client, log *slog.Logger) registry {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return registry{
		simulated.ProviderType: func(n *yaml.Node) (pipelines.Provider, []error) {
			return build(n, func(c simulated.Config) (*simulated.Provider, error) { return simulated.New(c) })
		},
		githubactions.ProviderType: apiProvider(githubactions.New, githubactions.WithHTTPClient, githubactions.WithLogger, hc, log),
		gitlab.ProviderType:        apiProvider(gitlab.New, gitlab.WithHTTPClient, gitlab.WithLogger, hc, log),
		azuredevops.ProviderType:   apiProvider(azuredevops.New, azuredevops.WithHTTPClient, azuredevops.WithLogger, hc, log),
		jenkins.ProviderType:       apiProvider(jenkins.New, jenkins.WithHTTPClient, jenkins.WithLogger, hc, log),
		codearts.ProviderType:      apiProvider(codearts.New, codearts.WithHTTPClient, codearts.WithLogger, hc, log),
		servicestage.ProviderType:  apiProvider(servicestage.New, servicestage.WithHTTPClient, servicestage.WithLogger, hc, log),
		humanitec.ProviderType:     apiProvider(humanitec.New, humanitec.WithHTTPClient, humanitec.WithLogger, hc, log),
		northflank.ProviderType:    apiProvider(northflank.New, northflank.WithHTTPClient, northflank.WithLogger, hc, log),
		yunxiao.ProviderType:       apiProvider(yunxiao.New, yunxiao.WithHTTPClient, yunxiao.WithLogger, hc, log),
		opsera.ProviderType:        apiProvider(opsera.New, opsera.WithHTTPClient, opsera.WithLogger, hc, log),
		webhook.ProviderType:       apiProvider(webhook.New, webhook.WithHTTPClient, webhook.WithLogger, hc, log),
	}
}
