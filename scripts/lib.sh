# shellcheck shell=bash
# Shared helpers for the scripts in this folder. Source it; do not run it.
# Everything the project needs is installed from the package registries into .cache/
# (override with FANDA_CACHE), so a fresh clone needs only the machine's base tools.

FANDA_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FANDA_CACHE=${FANDA_CACHE:-$FANDA_ROOT/.cache}
export FANDA_ROOT FANDA_CACHE

log() { printf '%s %s\n' "[$(basename "$0")]" "$*" >&2; }
die() {
  printf '%s error: %s\n' "[$(basename "$0")]" "$*" >&2
  exit 1
}

# Installs the pinned Bun (version in .bun-version) from the npm registry into
# .cache/tools and puts it first on PATH. Needs only node/npm, which the machine has.
ensure_bun() {
  local want have bin
  want=$(tr -d '[:space:]' <"$FANDA_ROOT/.bun-version")
  bin="$FANDA_CACHE/tools/node_modules/.bin"
  have=$("$bin/bun" --version 2>/dev/null || true)
  if [ "$have" != "$want" ]; then
    command -v npm >/dev/null 2>&1 || die "npm is needed once to install Bun $want from the npm registry, and it is not on PATH"
    log "installing bun@$want from npm into $FANDA_CACHE/tools"
    npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$FANDA_CACHE/tools" "bun@$want" >&2 ||
      die "npm install bun@$want failed"
    have=$("$bin/bun" --version 2>/dev/null || true)
    [ "$have" = "$want" ] || die "bun $want did not install correctly (got '${have:-nothing}')"
  fi
  export PATH="$bin:$PATH"
}

# Installs the project's dependencies exactly as bun.lock pins them.
ensure_deps() {
  ensure_bun
  (cd "$FANDA_ROOT" && bun install --frozen-lockfile >&2) || die "bun install --frozen-lockfile failed"
}

# True when something accepts TCP connections on host:port.
port_open() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# Puts promtool (from Debian's prometheus package, unpacked, not installed as a service)
# into .cache/tools/prometheus and exports PROMTOOL.
ensure_promtool() {
  local root="$FANDA_CACHE/tools/prometheus"
  if [ ! -x "$root/usr/bin/promtool" ]; then
    command -v apt-get >/dev/null 2>&1 || die "promtool is needed for the alert tests: install Debian's prometheus package"
    log "fetching promtool (Debian package prometheus) into $root"
    mkdir -p "$root"
    (
      cd "$root" &&
        { apt-get download prometheus >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get download prometheus >/dev/null; }; } &&
        dpkg -x prometheus_*.deb . && rm -f prometheus_*.deb
    ) || die "could not fetch the prometheus package for promtool"
  fi
  export PROMTOOL="$root/usr/bin/promtool"
}

# Chromium from Debian's packages for the page tests (headless, driven by playwright-core).
ensure_chromium() {
  [ -n "${CHROMIUM_PATH:-}" ] && [ -x "$CHROMIUM_PATH" ] && return 0
  command -v chromium >/dev/null 2>&1 && return 0
  command -v apt-get >/dev/null 2>&1 || die "chromium is needed for the status-page test: install Debian's chromium package"
  log "installing chromium (Debian package) for the status-page test"
  { apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null; }; } ||
    die "could not install chromium (apt-get install chromium needs root)"
}
