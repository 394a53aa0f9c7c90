#!/usr/bin/env bash
# The whole test suite: type check, unit, integration (real PostgreSQL: DATABASE_URL's
# server when set, otherwise an embedded one) and end to end (Debian's Chromium, real
# OIDC sign-in). Extra arguments go to vitest, e.g. `npm test -- --project unit`.
set -euo pipefail
cd "$(dirname "$0")/.."

chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[test] Chromium is missing: installing Debian's chromium package"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "[test] The end-to-end tests need Chromium at $chromium. Install it with:"
    echo "         sudo apt-get update && sudo apt-get install -y chromium"
    echo "       or point CHROMIUM_PATH at an existing Chromium."
    exit 1
  fi
fi

node scripts/db/prisma.mjs generate >/dev/null
npx --no-install tsc --noEmit
export NEXT_TELEMETRY_DISABLED=1
npx --no-install vitest run "$@"
