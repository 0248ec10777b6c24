#!/usr/bin/env bash
# Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser).
# The pinned version is tried first; Debian's security archive keeps only the latest build, so
# when it has moved on, the current build is installed and reported.
set -uo pipefail
PINNED="156.0.8078.108-1~deb12u1"
[ -x /usr/bin/chromium ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "NOTICE: no apt-get here; browser tests will be skipped (outside CI)" >&2; exit 0
fi
sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo_cmd apt-get update -qq >/dev/null 2>&1 || true
if ! $sudo_cmd apt-get install -y -qq "chromium=$PINNED" >/dev/null 2>&1; then
  echo "NOTICE: chromium $PINNED not available; installing Debian's current build" >&2
  $sudo_cmd apt-get install -y -qq chromium >/dev/null 2>&1 || true
fi
if [ ! -x /usr/bin/chromium ]; then
  if [ "${CI:-}" = "true" ]; then echo "could not install chromium" >&2; exit 1; fi
  echo "NOTICE: chromium could not be installed; browser tests will be skipped" >&2
fi
exit 0
