#!/usr/bin/env bash
# Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser).
# The pinned version is tried first; Debian's security archive keeps only the latest build, so
# when it has moved on, the current build is installed and reported.
set -uo pipefail
PINNED="156.0.8078.114-1~deb12u1"
CHROMIUM_BIN="${CHROMIUM_BIN:-/usr/bin/chromium}"  # another path only in tests/test_setup.py
[ -x "$CHROMIUM_BIN" ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "NOTICE: no apt-get here; browser tests will be skipped (outside CI)" >&2; exit 0
fi
sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
export DEBIAN_FRONTEND=noninteractive

# apt-get, waiting while another install holds the package manager's lock (up to 10 min)
# instead of failing; any other failure is returned at once.
apt_get() {
  local out tries=0
  while :; do
    if out=$($sudo_cmd apt-get -o DPkg::Lock::Timeout=60 "$@" 2>&1); then return 0; fi
    if grep -qiE "could not get lock|unable to acquire|is locked|lock-frontend" <<<"$out" \
        && [ $tries -lt 10 ]; then
      tries=$((tries + 1))
      echo "waiting for another package installation to finish ($tries/10)..." >&2
      sleep "${APT_LOCK_WAIT_SECONDS:-5}"
      continue
    fi
    echo "$out" | tail -n 3 >&2
    return 1
  done
}

echo "installing Debian's chromium for the browser tests..." >&2
apt_get update -qq || true
if ! apt_get install -y -qq "chromium=$PINNED"; then
  echo "NOTICE: chromium $PINNED not available; installing Debian's current build" >&2
  apt_get install -y -qq chromium || true
fi
if [ ! -x "$CHROMIUM_BIN" ]; then
  if [ "${CI:-}" = "true" ]; then echo "could not install chromium" >&2; exit 1; fi
  echo "NOTICE: chromium could not be installed; browser tests will be skipped" >&2
fi
exit 0
