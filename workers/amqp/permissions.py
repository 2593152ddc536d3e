"""Who may do what on RabbitMQ: the least-privilege roles of one namespace, as data.

RabbitMQ grants a user three regular expressions per vhost, matched against the
names of the queues and exchanges an operation touches (its access-control guide):

- *configure*: ``queue.declare`` (even of an existing queue with equal arguments;
  a *passive* declare needs nothing), ``exchange.declare``, deletes;
- *write*: ``basic.publish`` on the exchange (the default exchange is checked as
  ``amq.default``), and the queue side of ``queue.bind``;
- *read*: ``basic.consume``/``basic.get`` on the queue, the exchange side of
  ``queue.bind``.

The broker's own dead-lettering is not checked against any user, but declaring a
queue with ``x-dead-letter-exchange`` is: it needs read on the queue and write on that
exchange (else the DLX would be a way round the read and write rights). A queue and an
exchange of the same name (``<ns>.events``, ``<ns>.triggers``, ``<ns>.dead``) share
every regex that matches one of them. The roles (README, "Roles and permissions"):

- ``topology``: an administrator's user that declares everything once, at deploy.
- ``worker``: a worker process and its in-process supervisor. Declares its work
  queues (and binds them to ``<ns>.work``) and the delay queues, one per delay value,
  on the fly; everything else it only checks (``workers.amqp.declaring``). Publishes
  events, work, retries, dead letters, and through the default exchange heartbeats,
  checkpoints and trigger replies; consumes work, heartbeats, triggers, dead-letter
  notices and the two streams.
- ``client``: the Python ``Client``: records requests, publishes work and triggers,
  reads the log to wait.
- ``reader``: replay, status, executions, the projector: reads the log, nothing else.
- ``trigger-publisher``: publishes triggers, nothing else. One that wants replies
  (``reply_to``) needs a queue for them: see ``REPLY_QUEUE``.

Pure: no I/O. ``definitions`` takes its salt source, so its output can be tested.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ricochet.errors import BadPasswords

NOTHING = "^$"
"""RabbitMQ's way to grant nothing (no resource has an empty name)."""


@dataclass(frozen=True, slots=True)
class Permission:
    """One user's three regexes on the vhost, and what the role is for."""

    configure: str
    write: str
    read: str
    purpose: str


ROLES = ("topology", "worker", "client", "reader", "trigger-publisher")

REPLY_QUEUE = Permission(
    configure=r"^amq\.gen-.*$",
    write=NOTHING,
    read=r"^amq\.gen-.*$",
    purpose="added to a trigger publisher that wants replies: a server-named exclusive queue",
)
"""What a trigger publisher adds to receive replies: declare a server-named queue
(``queue.declare`` with an empty name; the broker names it ``amq.gen-…`` and checks
configure on that name) and consume it. Ricochet's worker publishes the reply through
the default exchange, which its own ``amq.default`` write right covers. Not part of the
role by default: the issue's trigger publisher writes triggers and nothing else, and
configure on ``amq.gen-.*`` would also let it delete other clients' non-exclusive
server-named queues in the vhost. Alternatively the admin declares a named reply queue
and grants read on it alone."""


def role_permissions(namespace: str) -> dict[str, Permission]:
    """The five roles' regexes for ``namespace`` (anchored, the namespace escaped)."""
    ns = re.escape(namespace)
    work_queues = r"work\..+"  # Names.work_queue
    delay_queues = r"delayq\.[0-9]+ms"  # Names.delay_queue
    return {
        "topology": Permission(
            configure=rf"^{ns}\..*$",
            write=rf"^{ns}\..*$",
            read=rf"^{ns}\..*$",
            purpose="declares every exchange and queue once, at deploy (ricochet topology)",
        ),
        "worker": Permission(
            configure=rf"^{ns}\.({work_queues}|{delay_queues})$",
            write=rf"^({ns}\.(events|work|delayq|dead|{work_queues}|{delay_queues})|amq\.default)$",
            read=rf"^{ns}\.(events|checkpoints|heartbeats|triggers|dead\.watch|work|delayq|{work_queues}|{delay_queues})$",
            purpose="runs attempts and supervises; declares its work queues and delay queues",
        ),
        "client": Permission(
            configure=NOTHING,
            write=rf"^{ns}\.(events|work|triggers)$",
            read=rf"^{ns}\.events$",
            purpose="the Python Client: submits, triggers, cancels, waits on the log",
        ),
        "reader": Permission(
            configure=NOTHING,
            write=NOTHING,
            read=rf"^{ns}\.events$",
            purpose="replay, status, executions, debug, the projector: reads the log only",
        ),
        "trigger-publisher": Permission(
            configure=NOTHING,
            write=rf"^{ns}\.triggers$",
            read=NOTHING,
            purpose="publishes triggers only (replies need a reply queue: see README)",
        ),
    }


def user_name(namespace: str, role: str) -> str:
    """``<namespace>-<role>``, e.g. ``ricochet-worker``."""
    return f"{namespace}-{role}"


def password_variable(role: str) -> str:
    """The passwords file's key for ``role``: ``RICOCHET_PASSWORD_TRIGGER_PUBLISHER``."""
    return "RICOCHET_PASSWORD_" + role.upper().replace("-", "_")


def read_passwords(text: str) -> dict[str, str]:
    """Roles and passwords from an env-style file: ``RICOCHET_PASSWORD_<ROLE>=...`` lines;
    blank lines, ``#`` comments and an ``export`` prefix are allowed, and one pair of
    quotes around a value is removed. A role without a line is left out. Raises
    ``BadPasswords`` (naming the line) for an unknown key, an empty password or a
    line that is not ``KEY=value``: a typo must not silently leave a role out."""
    by_variable = {password_variable(role): role for role in ROLES}
    found: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        key, value = key.strip(), _unquoted(value.strip())
        if not sep or key not in by_variable:
            known = ", ".join(by_variable)
            raise BadPasswords(f"line {number}: expected one of {known} followed by =password")
        if not value:
            raise BadPasswords(f"line {number}: {key} has an empty password")
        found[by_variable[key]] = value
    return found


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def password_hash(password: str, salt: bytes) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + SHA-256(salt + password)),
    with a 4-byte salt; what ``load_definitions`` and ``import_definitions`` accept."""
    digest = hashlib.sha256(salt + password.encode()).digest()
    return base64.b64encode(salt + digest).decode()


def definitions(
    namespace: str,
    vhost: str,
    passwords: Mapping[str, str],
    salt: Callable[[], bytes] = lambda: os.urandom(4),
) -> dict[str, Any]:
    """RabbitMQ definitions (JSON) for the roles given a password: users with salted
    hashes and no tags (no management UI), the vhost, and each user's permissions."""
    table = role_permissions(namespace)
    chosen = [role for role in ROLES if role in passwords]
    users = [
        {
            "name": user_name(namespace, role),
            "password_hash": password_hash(passwords[role], salt()),
            "hashing_algorithm": "rabbit_password_hashing_sha256",
            "tags": [],
        }
        for role in chosen
    ]
    permissions = [
        {
            "user": user_name(namespace, role),
            "vhost": vhost,
            "configure": table[role].configure,
            "write": table[role].write,
            "read": table[role].read,
        }
        for role in chosen
    ]
    return {"users": users, "vhosts": [{"name": vhost}], "permissions": permissions}


def table_lines(namespace: str, roles: Iterable[str] = ROLES) -> list[list[str]]:
    """Rows for ``ricochet roles show``: role, user, configure, write, read, purpose."""
    table = role_permissions(namespace)
    return [
        [
            role,
            user_name(namespace, role),
            table[role].configure,
            table[role].write,
            table[role].read,
            table[role].purpose,
        ]
        for role in roles
    ]
