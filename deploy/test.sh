#!/usr/bin/env bash
# The README's test command: install (if needed) and run the whole suite against RabbitMQ,
# once per broker.
#   bash deploy/test.sh                  both: 3.10 (localhost:5672), then 4.x (deploy/rabbitmq4.sh)
#   bash deploy/test.sh --broker 3       only the machine's 3.10 node (or RICOCHET_AMQP_URL's broker)
#   bash deploy/test.sh --broker 4       only the 4.x node in its chroot, 127.0.0.1:5690
# RICOCHET_TEST_BROKER=3|4|both does the same as --broker. Other arguments go to pytest.
# Each pass prints a header naming its broker, then pytest's summary; the last line adds
# them up as "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
here=$(pwd)
which=${RICOCHET_TEST_BROKER:-both}
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --broker) which=${2:?--broker 3, 4 or both}; shift 2 ;;
    --broker=*) which=${1#--broker=}; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
case "$which" in
  3 | 4) passes=("$which") ;;
  both) passes=(3 4) ;;
  *) echo "deploy/test.sh: --broker takes 3, 4 or both, not '$which'" >&2; exit 2 ;;
esac

[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/pip install -q -e '.[dev]' || exit 1
bash deploy/ensure-chromium.sh || exit 1 # the browser tests drive Debian's chromium

passed=0 failed=0 status=0
count() { grep -Eo "[0-9]+ $1" <<<"$2" | tail -1 | grep -Eo '^[0-9]+' || echo 0; }

run_pass() { # $1: 3 or 4; the rest: pytest's arguments; pass_env: its environment
  local broker=$1 log summary code
  shift
  log=$(mktemp)
  env "${pass_env[@]}" .venv/bin/pytest -q -p no:cacheprovider "$@" 2>&1 | tee "$log"
  code=${PIPESTATUS[0]}
  summary=$(grep -E '[0-9]+ (passed|failed|errors?)\b.* in [0-9.]+s|no tests ran' "$log" | tail -1)
  rm -f "$log"
  echo "== RabbitMQ $broker pass: ${summary:-no summary (pytest exited $code)}"
  passed=$((passed + $(count passed "$summary")))
  failed=$((failed + $(count failed "$summary") + $(count error "$summary")))
  [[ $code -eq 0 ]] || status=1
}

for broker in "${passes[@]}"; do
  if [[ $broker == 3 ]]; then
    bash deploy/ensure-rabbitmq.sh || exit 1
    pass_env=(-u RICOCHET_RABBITMQCTL -u RICOCHET_RABBITMQCTL_ROOT -u RICOCHET_NODE_ROOT)
    where=${RICOCHET_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}
    where=${where#*@} && where=${where%%/*}
    echo "== RabbitMQ $(rabbitmqctl -q version 2>/dev/null || echo 3.x) on $where =="
    run_pass 3 "${args[@]}"
  else
    bash deploy/rabbitmq4.sh up || exit 1
    port=${RICOCHET_RMQ4_PORT:-5690}
    echo "== RabbitMQ $(bash deploy/rabbitmq4.sh ctl -q version) on 127.0.0.1:$port =="
    pass_env=(RICOCHET_AMQP_URL="amqp://guest:guest@127.0.0.1:$port/"
      RICOCHET_RABBITMQCTL="bash $(printf %q "$here/deploy/rabbitmq4.sh") ctl"
      RICOCHET_RABBITMQCTL_ROOT="$(bash deploy/rabbitmq4.sh root)"
      RICOCHET_NODE_ROOT="$(bash deploy/rabbitmq4.sh root)") # the cluster and TLS nodes: 4.x too
    node_log="$(bash deploy/rabbitmq4.sh root)/var/log/rabbitmq/${RICOCHET_RMQ4_NODE:-rabbit4@localhost}.log"
    seen=$(wc -l <"$node_log" 2>/dev/null || echo 0)
    run_pass 4 "${args[@]}"
    # 4.0 only logs a global QoS it ignores; 4.3 refuses what is deprecated by default.
    used=$(tail -n +"$((seen + 1))" "$node_log" 2>/dev/null | grep -o 'Deprecated features: `[a-z_]*`' | sort | uniq -c)
    echo "== RabbitMQ 4 pass: deprecated features used: ${used:-none}"
  fi
done

echo "${passed} passed, ${failed} failed"
exit $status
