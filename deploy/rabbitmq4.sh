#!/usr/bin/env bash
# A RabbitMQ 4.x node beside the machine's 3.10 one, for testing Ricochet on both.
# Debian 13's rabbitmq-server (4.0.x, Erlang/OTP 27) lives in a chroot that debootstrap
# builds from Debian's package archive (a few minutes and ~400 MB the first time; seconds
# after that). The node's files stay in the chroot; its ports are the host's. Needs root.
#
#   rabbitmq4.sh up         build the chroot if missing, start the node, wait for it
#   rabbitmq4.sh down       stop the node (the chroot stays)
#   rabbitmq4.sh ctl ARGS   rabbitmqctl of the node (-n NODE after ctl picks another node)
#   rabbitmq4.sh status     version and listeners of the node
#   rabbitmq4.sh root       print the chroot's path (files rabbitmqctl reads must be inside it)
#
# Node rabbit4@localhost on 127.0.0.1:5690 (guest/guest from loopback); distribution port
# 25690. Override with RICOCHET_RMQ4_ROOT, RICOCHET_RMQ4_PORT, RICOCHET_RMQ4_NODE.
# The tests reach it with RICOCHET_AMQP_URL=amqp://guest:guest@127.0.0.1:5690/ and
# RICOCHET_RABBITMQCTL="bash deploy/rabbitmq4.sh ctl" (deploy/test.sh --broker 4 sets both).
set -euo pipefail
ROOT=${RICOCHET_RMQ4_ROOT:-/srv/ricochet-rmq4}
PORT=${RICOCHET_RMQ4_PORT:-5690}
NODE=${RICOCHET_RMQ4_NODE:-rabbit4@localhost}
SUITE=trixie   # Debian 13: rabbitmq-server 4.0.x

port_open() { (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }

# rabbitmqctl inside the chroot, as root with the node's cookie. A caller's own -n wins
# (rabbitmqctl takes the last one).
ctl() { chroot "$ROOT" env HOME=/root /usr/lib/rabbitmq/bin/rabbitmqctl -n "$NODE" "$@"; }

mounts() {
  mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
}

install_server() {
  [[ -x "$ROOT/usr/lib/rabbitmq/bin/rabbitmqctl" ]] && return 0
  echo "rabbitmq4: building $ROOT (Debian $SUITE, rabbitmq-server; a few minutes)" >&2
  command -v debootstrap >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  }
  if [[ ! -x "$ROOT/usr/bin/apt-get" ]]; then
    mkdir -p "$ROOT"
    debootstrap --variant=minbase "$SUITE" "$ROOT" http://deb.debian.org/debian >/dev/null
  fi
  mounts
  # No service starts inside the chroot while packages install: we start the node ourselves.
  echo 'exit 101' >"$ROOT/usr/sbin/policy-rc.d" && chmod +x "$ROOT/usr/sbin/policy-rc.d"
  chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive bash -c \
    'apt-get update -qq && apt-get install -y -qq --no-install-recommends rabbitmq-server >/dev/null'
}

# Writes the node's configuration; returns 1 when it changed (a running node must restart).
configure() {
  local before
  before=$(cat "$ROOT"/etc/rabbitmq/rabbitmq{-env,}.conf 2>/dev/null || true)
  printf 'NODENAME=%s\nNODE_PORT=%s\nDIST_PORT=%s\n' "$NODE" "$PORT" "$((PORT + 20000))" \
    >"$ROOT/etc/rabbitmq/rabbitmq-env.conf"
  # What 4.3 refuses by default (global QoS, transient non-exclusive queues) is refused
  # here too, so the suite shows that nothing of Ricochet's needs it.
  cat >"$ROOT/etc/rabbitmq/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$PORT
loopback_users.guest = true
deprecated_features.permit.global_qos = false
deprecated_features.permit.transient_nonexcl_queues = false
EOF
  chroot "$ROOT" chown -R rabbitmq:rabbitmq /var/lib/rabbitmq /var/log/rabbitmq
  [[ "$before" == "$(cat "$ROOT"/etc/rabbitmq/rabbitmq{-env,}.conf)" ]]
}

# rabbitmqctl runs as root (HOME=/root) and needs the node's cookie, which the first start makes.
cookie() {
  local src="$ROOT/var/lib/rabbitmq/.erlang.cookie" dst="$ROOT/root/.erlang.cookie"
  [[ -f "$src" ]] || return 0
  cmp -s "$src" "$dst" 2>/dev/null && return 0
  install -m 400 "$src" "$dst"
}

up() {
  install_server
  mounts
  if ! configure && port_open "$PORT"; then
    echo "rabbitmq4: configuration changed, restarting the node" >&2
    ctl -q stop >/dev/null 2>&1 || true
    for _ in $(seq 30); do port_open "$PORT" && sleep 1; done
  fi
  if ! port_open "$PORT"; then
    chroot "$ROOT" su rabbitmq -s /bin/sh -c "ulimit -n 65536 2>/dev/null; rabbitmq-server -detached"
  fi
  for _ in $(seq 90); do
    cookie
    if port_open "$PORT" && ctl -q await_startup >/dev/null 2>&1; then
      echo "rabbitmq4: up, $(ctl -q version) on 127.0.0.1:$PORT ($NODE)"
      return 0
    fi
    sleep 2
  done
  echo "rabbitmq4: the node did not start; see $ROOT/var/log/rabbitmq/" >&2
  return 1
}

case "${1:-}" in
  up) up ;;
  down) ctl -q stop >/dev/null 2>&1 || true ;;
  ctl) shift && mounts && ctl "$@" ;;
  status) ctl -q status | grep -E 'RabbitMQ version|Erlang configuration|Interface' ;;
  root) echo "$ROOT" ;;
  *) sed -n '2,17p' "$0" && exit 2 ;;
esac
