#!/usr/bin/env bash
# Renders every golden Adaptive Card (cards/testdata/*.golden.json) with the official renderer
# (npm adaptivecards, pinned in e2e/cards/package-lock.json) in headless Debian Chromium and fails
# when the renderer reports an error or warning for any card. PNGs land in e2e/cards/out/
# (or $CARDS_RENDER_OUT). Installs what it needs: Debian chromium when missing, then npm ci.
# Offline after npm ci: the page only loads local files, other requests are aborted.
#
# Exit codes: 0 = passed, or skipped with one line "SKIP cards render: <why>" when Chromium or
# the npm packages cannot be installed; non-zero = a card the renderer complains about.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/e2e/cards"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

if [[ ! -x "$CHROMIUM" ]]; then
  if command -v apt-get >/dev/null && [[ "$(id -u)" == 0 ]]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-liberation) >/dev/null 2>&1 || true
  fi
fi
if [[ ! -x "$CHROMIUM" ]]; then echo "SKIP cards render: no Chromium at $CHROMIUM"; exit 0; fi
if ! command -v node >/dev/null; then echo "SKIP cards render: node is not installed"; exit 0; fi

cd "$DIR"
if ! npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1; then
  echo "SKIP cards render: npm ci failed in e2e/cards"; exit 0
fi
export CHROMIUM CARDS_GOLDEN_DIR="$ROOT/cards/testdata" CARDS_RENDER_OUT="${CARDS_RENDER_OUT:-$DIR/out}"
exec node render.mjs
