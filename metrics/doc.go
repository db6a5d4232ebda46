// Package metrics defines gatebot's Prometheus metrics: the series the
// Grafana dashboard (deploy/grafana/gatebot.json) and the alerts in
// docs/operations.md read. Callers record through small typed methods
// (Activity, ConnectorCall, ProviderCall, …) and never touch prometheus
// types; the packages that record declare the interface they need.
//
// Everything is registered on the registry the caller passes in: no
// globals, no default registry, so tests and several servers in one
// process do not share counters.
//
// It must not import any other gatebot package: handlers, bot and the
// gate engine depend on it through their own interfaces, not the other
// way round.
package metrics
