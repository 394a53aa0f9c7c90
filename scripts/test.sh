#!/usr/bin/env bash
# The whole test suite: type check, lint (import boundaries included), unit, integration
# (real PostgreSQL: DATABASE_URL's server when set, otherwise an embedded one) and end to
# end (Debian's Chromium, real OIDC sign-in). Extra arguments go to vitest, e.g. `npm test -- --project unit`.
set -euo pipefail
cd "$(dirname "$0")/.."

chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
missing=()
[ -x "$chromium" ] || missing+=(chromium)
[ -x /usr/sbin/haproxy ] || missing+=(haproxy)
[ -x /usr/sbin/nginx ] || missing+=(nginx)
[ -x /usr/bin/caddy ] || missing+=(caddy)
# pg_dump/pg_restore and a server of their version, for the backup-and-restore test.
[ -x /usr/lib/postgresql/15/bin/pg_dump ] || missing+=(postgresql-15)
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
command -v kubectl >/dev/null 2>&1 || missing+=(kubectl)
[ -x /usr/bin/promtool ] || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[test] installing Debian packages the tests need: ${missing[*]}"
    apt-get update -qq
    # policy-rc.d 101: install the packages without starting their system services.
    made_policy=0; [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    if [ "$made_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  else
    echo "[test] The tests need Debian's ${missing[*]} (real browser, real proxies). Install with:"
    echo "         sudo apt-get update && sudo apt-get install -y ${missing[*]}"
    echo "       (CHROMIUM_PATH may point at an existing Chromium instead.)"
    exit 1
  fi
fi

node scripts/db/prisma.mjs generate >/dev/null
npx --no-install tsc --noEmit
npx --no-install eslint .
export NEXT_TELEMETRY_DISABLED=1
npx --no-install vitest run "$@"
