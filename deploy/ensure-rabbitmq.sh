#!/usr/bin/env bash
# Make sure a RabbitMQ answers on localhost:5672: start it, or install it with apt first.
# Skipped when RICOCHET_AMQP_URL names a broker elsewhere.
set -euo pipefail

if [[ -n "${RICOCHET_AMQP_URL:-}" && "${RICOCHET_AMQP_URL}" != *"@localhost"* && "${RICOCHET_AMQP_URL}" != *"@127.0.0.1"* ]]; then
  echo "using the broker at RICOCHET_AMQP_URL"
  exit 0
fi

port_open() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }

# Something answering on 5672 is the broker: it may run in Docker, or as a user whose
# Erlang cookie we cannot read, so rabbitmqctl is not asked (starting a second
# server, or installing one, would only fail on the taken port).
if port_open; then
  echo "rabbitmq: running"
  exit 0
fi

if ! command -v rabbitmq-server >/dev/null 2>&1; then
  echo "rabbitmq: not installed, installing with apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q rabbitmq-server
fi

if ! rabbitmqctl -q status >/dev/null 2>&1; then
  echo "rabbitmq: starting"
  # Quorum queues and streams hold file handles; a shell's default 1,024 runs out in a
  # busy node (RabbitMQ then stops accepting connections). Raise it where we may.
  ulimit -n 65536 2>/dev/null || true
  rabbitmq-server -detached
fi
for _ in $(seq 1 90); do
  if rabbitmqctl -q await_startup >/dev/null 2>&1 && port_open; then
    echo "rabbitmq: up"
    exit 0
  fi
  sleep 1
done
echo "rabbitmq: did not come up within 90 s" >&2
exit 1
