#!/usr/bin/env bash
# Short gatebot-bench runs for CI: the flow, hang and conn-down scenarios,
# two replicas (one SIGKILLed mid-flow; two configs in a rolling upgrade)
# and the fault scenarios,
# each bounded to a few seconds, against a gatebot built once from this
# tree with auth on and the real Redis. Asserts exactly-once provider runs
# (0 missing, 0 duplicate, 0 unexpected) and the fault checks (whose only
# timing bounds are generous: an outage answer's p99 ≤ 3 s, the other
# conversations' approve → provider p99 ≤ 1 s); the other figures are
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
# 64 conversations opening gates at once: more callers than pooled Redis
# connections (a lookup inside a transaction once stalled the pool here).
bench --scenario flow --conversations 64 --gates 192 --duration 20s
# The provider hangs for 3 s: gates queued behind it must still run once.
bench --scenario hang --conversations 3 --gates 6 --hang 3s --duration 15s
# Conversation 0's connector answers 503; the others' gates run once.
bench --scenario conn-down --conversations 3 --gates 6 --duration 15s
# Two gatebots on one Redis prefix, activities alternating between them;
# replica 1 is SIGKILLed 1 s in, while gates are in flight. Every approved
# gate must still run once and end with its final card (the bench's
# leases: trigger redelivery after 15 s, so settling takes at most 25 s).
BENCH_TIMEOUT=75 bench --scenario flow --replicas 2 --kill-one-after 1s --conversations 4 --gates 12 --duration 40s

# Faults (issue #14). Conversation 0's Connector fails from its card on for
# 3 s (429 with Retry-After, 502, connections closed), then recovers: its
# card's last update must show the run succeeded; the others unaffected.
for mode in 429 502 unreachable; do
  bench --scenario conn-down --down-mode "$mode" --down-for 3s --conversations 3 --gates 6 --duration 15s
done
# The bench's own redis-server (AOF, fsync always) SIGKILLed 2 s into the
# flow and restarted 2 s later: no acknowledged click lost, fast "nothing
# was recorded" answers and API 503s meanwhile, gates after it succeed.
if command -v redis-server >/dev/null 2>&1; then
  bench --scenario redis-restart --conversations 3 --gates 30 --restart-after 2s --outage 2s --duration 20s
else
  echo "==> redis-server not installed: skipping the redis-restart scenario"
fi
# A provider answering 503, one answering 429 twice, one hanging past the
# provider timeout, next to the flow: bounded calls, one run at most.
bench --scenario provider-faults --conversations 4 --gates 6 --duration 15s
# A rolling upgrade: replica 1 runs a config without the flow's pipeline.
# Every gate still runs once (only replica 0 may trigger or poll it) and
# both replicas' /readyz say they disagree.
BENCH_TIMEOUT=75 bench --scenario flow --replicas 2 --rolling --conversations 4 --gates 12 --duration 30s
