#!/usr/bin/env bash
# The browser tests (tests/integration/test_web_timeline.py) drive Debian's chromium
# headless through Playwright; Playwright's own browsers are never downloaded.
# Installs chromium with apt where it is missing (as root, or with sudo).
set -euo pipefail
command -v chromium >/dev/null && exit 0
if [ "$(id -u)" = 0 ]; then
    apt-get update -q && apt-get install -y -q chromium
elif command -v sudo >/dev/null; then
    sudo apt-get update -q && sudo apt-get install -y -q chromium
else
    echo "error: the browser tests need chromium: apt-get install -y chromium" >&2
    exit 1
fi
