#!/usr/bin/env bash
# Short gatebot-bench runs for CI: the flow, hang and conn-down scenarios
# and two replicas with one SIGKILLed mid-flow,
# each bounded to a few seconds, against a gatebot built once from this
# tree with auth on and the real Redis. Asserts exactly-once provider runs
# (0 missing, 0 duplicate, 0 unexpected), never timings: the figures are
# printed for the log only.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH="/usr/local/go/bin:$PATH"
fi
export GATEBOT_TEST_REDIS_URL="${GATEBOT_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/gatebot" ./cmd/gatebot
go build -o "$tmp/gatebot-bench" ./cmd/gatebot-bench

bench() {
  printf '\n==> gatebot-bench %s\n' "$*"
  # timeout: a hard stop even if the bench's own bounds failed.
  timeout "${BENCH_TIMEOUT:-60}" "$tmp/gatebot-bench" --gatebot "$tmp/gatebot" --redis "$GATEBOT_TEST_REDIS_URL" --assert-exact "$@"
}

bench --scenario flow --conversations 4 --gates 8 --duration 20s
# The provider hangs for 3 s: gates queued behind it must still run once.
bench --scenario hang --conversations 3 --gates 6 --hang 3s --duration 15s
# Conversation 0's connector answers 503; the others' gates run once.
bench --scenario conn-down --conversations 3 --gates 6 --duration 15s
# Two gatebots on one Redis prefix, activities alternating between them;
# replica 1 is SIGKILLed 1 s in, while gates are in flight. Every approved
# gate must still run once and end with its final card (the bench's
# leases: trigger redelivery after 15 s, so settling takes at most 25 s).
BENCH_TIMEOUT=75 bench --scenario flow --replicas 2 --kill-one-after 1s --conversations 4 --gates 12 --duration 40s
