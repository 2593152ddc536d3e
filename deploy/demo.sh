#!/usr/bin/env bash
# The README's one-command demo, for a fresh clone:
#   installs Ricochet into .venv (when needed), makes sure RabbitMQ answers on
#   localhost:5672 (starting it, or installing it with apt, when it does not),
#   starts a worker, runs demo.flaky (fails twice, succeeds on the third attempt)
#   and prints its result, its timeline and its event log.
# Everything runs in a namespace of its own (demo-<time>-<pid>), so the demo never
# touches other queues on the broker. The worker is stopped on any exit.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
RICOCHET=.venv/bin/ricochet

step() {
  if [[ -t 1 ]]; then printf '\n\033[1m== %s\033[0m\n' "$*"; else printf '\n== %s\n' "$*"; fi
}

# 1. Python environment ---------------------------------------------------------
if [[ ! -x .venv/bin/python ]]; then
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "demo: Ricochet needs Python 3.11 or newer as '$PYTHON' (set PYTHON=...)" >&2
    exit 1
  fi
  step "creating .venv"
  "$PYTHON" -m venv .venv || {
    echo "demo: '$PYTHON -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2
    exit 1
  }
fi
# Installed editable, so only a changed pyproject.toml calls for a new install.
if [[ ! -x "$RICOCHET" || pyproject.toml -nt "$RICOCHET" ]]; then
  step "installing Ricochet into .venv (pip install -e '.[dev]')"
  pip_log="$(mktemp "${TMPDIR:-/tmp}/ricochet-demo-pip.XXXXXX")"
  if ! .venv/bin/python -m pip install -q -e '.[dev]' >"$pip_log" 2>&1; then
    cat "$pip_log" >&2
    echo "demo: pip install failed" >&2
    exit 1
  fi
  rm -f "$pip_log"
  touch "$RICOCHET"
fi

# 2. Broker ---------------------------------------------------------------------
step "checking RabbitMQ"
bash deploy/ensure-rabbitmq.sh

# 3. A worker in a namespace of its own -------------------------------------------
export RICOCHET_NAMESPACE="demo-$(date +%s)-$$"
worker_log="$(mktemp "${TMPDIR:-/tmp}/ricochet-demo-worker.XXXXXX")"
submit_out="$(mktemp "${TMPDIR:-/tmp}/ricochet-demo-submit.XXXXXX")"
worker_pid=""

stop_worker() {
  local status=$?
  trap - EXIT INT TERM
  if [[ -n "$worker_pid" ]] && kill -0 "$worker_pid" 2>/dev/null; then
    kill -TERM "$worker_pid" 2>/dev/null || true
    # The worker lets running attempts finish (--grace 10), then exits.
    for _ in $(seq 1 150); do
      kill -0 "$worker_pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$worker_pid" 2>/dev/null; then
      echo "demo: the worker did not stop within 15 s, killing it" >&2
      kill -KILL "$worker_pid" 2>/dev/null || true
    fi
    wait "$worker_pid" 2>/dev/null || true
  fi
  if [[ $status -ne 0 && -s "$worker_log" ]]; then
    echo "demo: failed (exit $status); the worker's log ends with:" >&2
    tail -n 20 "$worker_log" >&2
  fi
  rm -f "$worker_log" "$submit_out"
  exit "$status"
}
trap stop_worker EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "starting a worker: ricochet worker ricochet.workers.examples.flaky (namespace $RICOCHET_NAMESPACE)"
"$RICOCHET" worker ricochet.workers.examples.flaky --concurrency 4 --grace 10 2>"$worker_log" &
worker_pid=$!
for _ in $(seq 1 300); do
  grep -q 'worker.started' "$worker_log" && break
  if ! kill -0 "$worker_pid" 2>/dev/null; then
    echo "demo: the worker exited before it started" >&2
    exit 1
  fi
  sleep 0.1
done
if ! grep -q 'worker.started' "$worker_log"; then
  echo "demo: the worker did not start within 30 s" >&2
  exit 1
fi
echo "worker running (pid $worker_pid)"

# 4. The flaky task: two failures, two retries, one result ---------------------
step "ricochet submit demo.flaky --args '[\"order-42\"]' --wait"
echo "(retries=(3, 1, 2): attempts 1 and 2 fail, attempt 3 succeeds; ~3 s)"
"$RICOCHET" submit demo.flaky --args '["order-42"]' --wait --timeout 60 | tee "$submit_out"
execution_id="$(head -n 1 "$submit_out")"

step "ricochet status $execution_id"
"$RICOCHET" status "$execution_id"

step "ricochet replay --execution $execution_id"
"$RICOCHET" replay --execution "$execution_id"

step "done"
echo "Look again with: RICOCHET_NAMESPACE=$RICOCHET_NAMESPACE $RICOCHET replay"
