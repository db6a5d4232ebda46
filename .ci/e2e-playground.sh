#!/usr/bin/env bash
# End-to-end test of gatebot in the real Microsoft 365 Agents Playground, driven by headless
# Debian Chromium (playwright-core). Installs what it needs, builds the bot, then runs the bot,
# the Playground and the browser together in one private network namespace (loopback only)
# when `unshare -n` works here. Screenshots and logs land in e2e/playground/out/.
#
# E2E_NO_NETNS=1 runs on the host loopback instead (the browser still aborts non-loopback requests);
# GATEBOT_BIN=path uses a prebuilt binary instead of `go build`.
#
# Exit codes: 0 = passed, or skipped with one line "SKIP playground e2e: <why>" when something
# it needs cannot be installed; non-zero = a build or test failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
E2E="$ROOT/e2e/playground"
OUT="$E2E/out"
BOT_ADDR="127.0.0.1:3978"

BOT_PID=""
stop_bot() {
  if [[ -n "$BOT_PID" ]]; then kill "$BOT_PID" 2>/dev/null || true; wait "$BOT_PID" 2>/dev/null || true; BOT_PID=""; fi
}

# run_e2e starts the bot, runs the test and always stops the bot. It runs inside the
# namespace when there is one, so every process it starts lives and dies there.
run_e2e() {
  local bin="$1" rc=0
  mkdir -p "$OUT"
  trap stop_bot EXIT
  local tmp; tmp="$(mktemp -d)"
  # gatebot.e2e.yaml (local dev mode, one pipeline per flow) and no REDIS_URL: embedded Redis.
  (cd "$tmp" && exec env -u REDIS_URL "$bin" serve --config "$E2E/gatebot.e2e.yaml") >"$OUT/gatebot.log" 2>&1 &
  BOT_PID=$!
  local ok=""
  for _ in $(seq 1 150); do
    if curl -fsS -o /dev/null "http://$BOT_ADDR/healthz" 2>/dev/null; then ok=1; break; fi
    if ! kill -0 "$BOT_PID" 2>/dev/null; then break; fi
    sleep 0.2
  done
  if [[ -z "$ok" ]]; then
    echo "FAIL playground e2e: gatebot did not answer http://$BOT_ADDR/healthz within 30 s; its log:" >&2
    tail -n 40 "$OUT/gatebot.log" >&2 || true
    echo "e2e: 0 passed, 1 failed"
    return 1
  fi
  (cd "$E2E" && BOT_URL="http://$BOT_ADDR" E2E_OUT="$OUT" timeout 900 node e2e.mjs) || rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "--- gatebot log (last 60 lines; full log, traffic.log and screenshots in $OUT) ---" >&2
    tail -n 60 "$OUT/gatebot.log" >&2 || true
  fi
  return "$rc"
}

if [[ "${1:-}" == "--in-netns" ]]; then
  ip link set lo up
  run_e2e "$2"
  exit $?
fi

skip() { echo "SKIP playground e2e: $*"; exit 0; }

if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
  export PATH="/usr/local/go/bin:$PATH"
fi

apt_updated=""
apt_install() {
  echo "installing $* (Debian apt-get; on a fresh machine this takes a few minutes)"
  if [[ -z "$apt_updated" ]]; then
    timeout 600 apt-get update -qq >/dev/null 2>&1 || return 1
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq "$@" >/dev/null 2>&1
}

if [[ ! -x /usr/bin/chromium ]]; then
  apt_install chromium || skip "could not install Debian chromium with apt-get"
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt_install nodejs npm || skip "node/npm missing and apt-get could not install them"
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if (( node_major < 20 )); then skip "node $node_major is too old (playwright-core needs >= 20)"; fi
npm_err="$(mktemp)"
echo "installing the Agents Playground and playwright-core (npm ci, pinned by package-lock.json)"
if ! (cd "$E2E" && timeout 600 npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>"$npm_err"); then
  why="$(grep -m1 -iE 'err|fetch|network' "$npm_err" | head -c 200 || true)"
  rm -f "$npm_err"
  skip "npm ci in e2e/playground failed (${why:-registry unreachable?})"
fi
rm -f "$npm_err"
command -v curl >/dev/null || apt_install curl || skip "curl missing and apt-get could not install it"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
bin="$work/gatebot"
if [[ -n "${GATEBOT_BIN:-}" ]]; then
  bin="$(realpath "$GATEBOT_BIN")" # a prebuilt binary, for debugging the e2e itself
else
  echo "building gatebot"
  (cd "$ROOT" && go build -o "$bin" ./cmd/gatebot) || { echo "FAIL playground e2e: go build ./cmd/gatebot failed"; exit 1; }
fi

rm -rf "$OUT"
if [[ -z "${E2E_NO_NETNS:-}" ]] && [[ "$(id -u)" == 0 ]] && command -v ip >/dev/null && unshare -n true 2>/dev/null; then
  echo "running the playground e2e inside unshare -n (loopback only)"
  unshare -n bash "${BASH_SOURCE[0]}" --in-netns "$bin"
else
  echo "running the playground e2e on the host loopback (no unshare -n); the browser still aborts every non-loopback request"
  if curl -s -o /dev/null "http://$BOT_ADDR/" 2>/dev/null; then
    echo "FAIL playground e2e: $BOT_ADDR is already in use by another process" >&2
    echo "e2e: 0 passed, 1 failed"
    exit 1
  fi
  ( run_e2e "$bin" )
fi
