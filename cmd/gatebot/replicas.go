package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatebot/gatebot/replicas"
)

// fingerprint digests what replicas of one deployment must agree on: the
// bot identity and tenants, the gate store's settings, channels, provider
// types, pipelines and engine leases. Per-replica settings (listen
// addresses, log level, Redis URL) and every secret are left out: the
// digest is published in Redis and /readyz, and rotating a secret is not
// a config difference worth a warning.
func (c *Config) fingerprint() string {
	providers := map[string]string{}
	for name, p := range c.Providers {
		providers[name] = p.Type // the rest of a provider section may hold credentials
	}
	view := struct {
		AppID, TenantID, Name string
		AllowedTenants        []string
		Approvals             ApprovalsConfig
		Channels              map[string]ChannelConfig
		Providers             map[string]string
		Pipelines             map[string]*PipelineConfig
		CallbackHosts         []string
		Engine                EngineConfig
	}{c.Bot.AppID, c.Bot.TenantID, c.Bot.Name, c.Bot.AllowedTenants, c.Approvals, c.Channels, providers, c.Pipelines,
		c.API.CallbackHosts, c.Engine}
	raw, err := json.Marshal(view) // maps marshal in key order: stable
	if err != nil {
		return "unknown"
	}
	return replicas.Fingerprint(raw)
}

// deployment names the deployment this replica belongs to: replicas of one
// bot registration share it, and another bot must not share the prefix.
func (c *Config) deployment() string {
	if c.Bot.AppID == "" {
		return "local-dev"
	}
	return c.Bot.AppID
}

// joinReplicas publishes this replica in the registry. A live replica of
// another deployment under the same prefix stops the start (the two would
// take each other's work); Redis not answering yet does not: the
// heartbeat retries, and /readyz says Redis is down meanwhile.
func joinReplicas(ctx context.Context, rdb redis.UniversalClient, c *Config, instance string, every time.Duration, log *slog.Logger) (*replicas.Registry, error) {
	reg, err := replicas.New(rdb, replicas.Options{
		Prefix: c.Redis.Prefix, Logger: log, Every: every,
		Self: replicas.Info{
			Instance: instance, Deployment: c.deployment(), Version: version, Config: c.fingerprint(),
			Pipelines: slices.Sorted(maps.Keys(c.Pipelines)),
		},
	})
	if err != nil {
		return nil, err
	}
	switch err := reg.Join(ctx); {
	case errors.Is(err, replicas.ErrForeignDeployment):
		return nil, err
	case err != nil:
		log.Warn("could not join the replica registry yet; the heartbeat retries", "err", err)
	}
	return reg, nil
}
