// Package bot implements the parts of the Bot Framework protocol gatebot
// needs, as strictly as Microsoft's own SDKs: the activity schema with typed
// accessors for the raw parts Teams sends (mentions, channelData, card
// actions), invoke responses, inbound JWT authentication of requests from the
// Bot Connector (and, opt-in, the Emulator), outbound tokens (client
// credentials or managed identity) and a connector client that only ever
// sends its bearer token to trusted service URLs.
//
// The rules it follows, with their sources, are in
// shared/docs/botframework-protocol.md. Only the schema types of
// github.com/infracloudio/msbotbuilder-go are reused; its auth and connector
// code is deliberately not (see shared/docs/msbotbuilder-go.md).
//
// Package bot must not import any other gatebot package, and it does not
// serve HTTP: the HTTP layer (package handlers) calls Authenticate before it
// parses a body, then DecodeActivity, and writes InvokeResponse values.
//
// A typical inbound turn:
//
//	id, err := auth.Authenticate(ctx, r.Header.Get("Authorization"))
//	// ... read the capped body ...
//	act, err := bot.DecodeActivity(body)
//	err = id.Check(act.ServiceURL, act.ChannelID)
package bot
