// Package apitoken keeps gatebot's personal access tokens for the external
// HTTP API, and rate-limits their use, in Redis shared by every replica.
//
// A token is printed once, when it is created: "gbt_" followed by 43
// base62 characters (32 random bytes) and a 6-character base62 CRC-32 of
// those 43, so secret scanners can match the prefix and check the checksum
// without asking gatebot, and Authenticate refuses a mistyped token
// without a Redis round trip. Only the token's SHA-256 is stored; a token
// with 256 random bits needs no slow hash.
//
// Validity is never cached in process: Authenticate reads the token's
// record (one GET) on every call, so a revocation takes effect on the next
// request on every replica. Only the last-used time is written lazily, at
// most once per Options.LastUsedEvery per token and replica.
//
// A token may name its owner (a UPN, or "aad:<object id>"): the person
// gates opened with it are requested by, so that approval rules such as
// "no self-approval" apply to them. Records without an owner stay valid.
//
// Limiter is a generic cell rate algorithm (GCRA) run as one Lua script per
// request, so the limit holds across replicas.
//
// It must not import gatebot's handlers, bot, cards, approvals or pipelines
// packages: callers map Token onto their own notions of scope and access.
//
// # Redis key layout
//
// Every key starts with Options.Prefix (P, default "gatebot:"):
//
//	P tok:h:<sha256 hex>  string  token record (JSON); TTL once revoked or
//	                              when it expires: until then + Options.Grace
//	P tok:id:<id>         string  sha256 hex of the token with this id (same TTL)
//	P tok:n:<name>        string  id of the live token with this name; deleted
//	                              on revocation, expires with the token
//	P tok:all             zset    id → created (ms), for List
//	P tok:lu:<id>         string  last use, unix ms
//	P rl:<key>            string  GCRA theoretical arrival time (µs), PX TTL
//
// On Redis Cluster use a hash-tagged prefix such as "{gatebot}:", as for the
// approvals store, because creation and revocation touch several keys in
// one transaction.
package apitoken
