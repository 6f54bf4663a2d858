#!/usr/bin/env bash
# The web console on a fresh machine: Node.js and npm (Debian's, when
# missing and we are root), Chromium for the browser tests (Debian's
# chromium; Playwright never downloads a browser), the console's npm
# packages from its lockfile, and its build (console/dist, which
# dbaas-server embeds at compile time).
#   --no-build   install only
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=1
[[ "${1:-}" == --no-build ]] && build=0

packages=()
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)
[[ -x /usr/bin/chromium ]] || packages+=(chromium)
if ((${#packages[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "ensure-console: installing ${packages[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
  else
    echo "ensure-console: missing ${packages[*]} (Debian: sudo apt-get install ${packages[*]})" >&2
    exit 1
  fi
fi

cd "$repo/console"
# npm ci installs exactly the lockfile; skip it when node_modules was
# installed from this same lockfile.
stamp=node_modules/.dbaas-lockfile.sha256
if ! sha256sum --status -c "$stamp" 2>/dev/null; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
  sha256sum package-lock.json >"$stamp"
fi
if ((build)); then
  npm run --silent build >/dev/null
  echo "ensure-console: built $(du -sh dist | cut -f1) into console/dist" >&2
fi
