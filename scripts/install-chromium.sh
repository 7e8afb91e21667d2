#!/usr/bin/env bash
# Installs Debian's Chromium for the real-browser dashboard tests, when it is missing and we can.
# Never fatal: the browser tests skip (and say why) when Chromium is not there.
set -u
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: not root or no apt-get; browser tests will be skipped" >&2
  exit 0
fi
echo "install-chromium: installing Debian's chromium (once)…" >&2
(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
  || echo "install-chromium: apt-get failed; browser tests will be skipped" >&2
exit 0
