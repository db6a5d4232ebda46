// Package fakes holds the loopback stand-ins gatebot-bench drives gatebot
// against: an identity provider that signs Bot Framework channel tokens
// and answers the bot's client-credentials token requests (IdP), a Bot
// Connector that paces and records like Teams (Connector), and a
// Standard Webhooks receiver that counts runs per gate (Provider).
//
// Each is an http.Handler; the bench mounts them on one loopback server:
//
//	idp, _ := fakes.NewIdP(fakes.IdPConfig{AppID: appID, AppPassword: pw, BaseURL: base + "/idp"})
//	conn := fakes.NewConnector(fakes.ConnectorConfig{Tokens: idp})
//	mux.Handle("/idp/", http.StripPrefix("/idp", idp))
//	mux.Handle("/teams/", http.StripPrefix("/teams", conn))
package fakes
