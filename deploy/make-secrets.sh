#!/usr/bin/env bash
# Write deploy/passwords.env and deploy/projector.env for deploy/compose.yaml, with
# random values (48 hex digits each: URL-safe, so they fit into amqp:// URLs), the
# files readable by their owner only. An existing file is left as it is: delete it
# to get new values (then restart the broker, which loads users at boot only).
set -euo pipefail
cd "$(dirname "$0")"
umask 077

random_hex() { od -An -tx1 -N24 /dev/urandom | tr -d ' \n'; }

write_once() {
  local file=$1
  shift
  if [[ -e "$file" ]]; then
    echo "deploy/$file: exists, left as it is"
    return
  fi
  for name in "$@"; do echo "$name=$(random_hex)"; done >"$file.tmp"
  mv "$file.tmp" "$file"
  echo "deploy/$file: written"
}

write_once passwords.env \
  RICOCHET_PASSWORD_TOPOLOGY RICOCHET_PASSWORD_WORKER RICOCHET_PASSWORD_CLIENT \
  RICOCHET_PASSWORD_READER RICOCHET_PASSWORD_TRIGGER_PUBLISHER
write_once projector.env RICOCHET_PROJECTOR_TOKEN
