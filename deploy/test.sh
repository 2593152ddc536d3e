#!/usr/bin/env bash
# The README's test command: install (if needed) and run the whole suite against RabbitMQ.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/pip install -q -e '.[dev]'
bash deploy/ensure-rabbitmq.sh
bash deploy/ensure-chromium.sh   # the browser tests drive Debian's chromium
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
