// Package webhook is gatebot's generic outbound provider: when a gate is
// granted it POSTs a signed JSON event to a configured URL, for receivers
// that start the work themselves (an internal deploy service, a serverless
// function, a CI system gatebot has no client for).
//
// Messages are signed per Standard Webhooks 1.0
// (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md):
//
//	webhook-id:        stable for one gate's event, so the receiver can drop retries
//	webhook-timestamp: unix seconds; receivers reject more than Tolerance of skew
//	webhook-signature: v1,<base64 HMAC-SHA256(key, id + "." + timestamp + "." + body)>
//
// where key is the base64 part of the configured whsec_ secret. Sign, Verify
// and VerifyRequest are exported so gatebot's inbound callbacks can use the
// same scheme.
//
// The trigger body is an Event ({"type":"gate.approved","gate_id",...}).
// The receiver answers any 2xx, optionally with a JSON object
//
//	{"run_id": "...", "status": "queued", "url": "https://…",
//	 "status_url": "https://…", "cancel_url": "https://…"}
//
// status is one of queued, running, succeeded, failed, cancelled. With a
// status_url, Status GETs it (signed the same way, empty body) and expects
// {"status", "url", "detail"}; without one, Status reports the last state the
// Run carries, which gatebot's callback endpoint updates. With a cancel_url,
// Cancel POSTs a signed {"type":"gate.cancel_requested"} event to it;
// without one Cancel returns pipelines.ErrNotSupported. status_url and
// cancel_url must lie under one of the configured status_url_allowed
// prefixes (default: the webhook URL's origin), so a receiver cannot point
// gatebot's signed requests at arbitrary hosts.
//
// Like every provider sub-package it imports only pipelines,
// pipelines/apiclient and the standard library.
package webhook
