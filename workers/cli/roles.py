"""``ricochet roles``: the least-privilege RabbitMQ users of a namespace.

``show`` prints the table (``workers.amqp.permissions``); ``definitions`` prints them
as RabbitMQ definitions (JSON with salted password hashes, for ``load_definitions``
at boot or ``rabbitmqctl import_definitions``); ``apply`` imports those definitions
with ``rabbitmqctl``, so passwords never appear on a command line. The vhost is the
one in the amqp URL.

``apply`` hands rabbitmqctl a private file (mode 0600) rather than standard input:
RabbitMQ 4.0.0-4.0.5's ``import_definitions`` waits for ever on standard input
(rabbitmq-server#13157). ``--stdin`` keeps the pipe for a rabbitmqctl that cannot see
this machine's files (``docker compose exec``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from ricochet.errors import BadPasswords
from ricochet.workers.amqp.permissions import ROLES, definitions, read_passwords, table_lines
from ricochet.workers.cli.options import connection_options, settings_of
from ricochet.workers.settings import Settings

PASSWORDS_HELP = (
    "Env-style file of RICOCHET_PASSWORD_<ROLE>=... lines (e.g. RICOCHET_PASSWORD_WORKER,"
    " RICOCHET_PASSWORD_TRIGGER_PUBLISHER); a role without a line is left out."
)
APPLY_TIMEOUT_S = 120
CTL_USER = "rabbitmq"
"""RabbitMQ's Debian and RPM packages run rabbitmqctl as this user when root starts it."""
F = TypeVar("F", bound=Callable[..., Any])


def _vhost(settings: Settings) -> str:
    return settings.amqp_addresses[0].vhost


def _passwords(path: Path) -> dict[str, str]:
    """The file's roles and passwords, or a usage error naming the bad line."""
    try:
        found = read_passwords(path.read_text())
    except BadPasswords as err:
        raise click.BadParameter(f"{path}: {err}", param_hint="--passwords") from None
    if not found:
        raise click.BadParameter(f"{path} names no role", param_hint="--passwords")
    return found


def _definitions_json(settings: Settings, path: Path) -> bytes:
    made = definitions(settings.namespace, _vhost(settings), _passwords(path))
    return orjson.dumps(made, option=orjson.OPT_INDENT_2) + b"\n"


def passwords_option(command: F) -> F:
    """``--passwords FILE``, shared by ``definitions`` and ``apply``."""
    return click.option(
        "--passwords",
        type=click.Path(path_type=Path, exists=True, dir_okay=False),
        required=True,
        envvar="RICOCHET_ROLES_PASSWORDS",
        show_envvar=True,
        metavar="FILE",
        help=PASSWORDS_HELP,
    )(command)


@click.group("roles")
def roles_group() -> None:
    """Least-privilege RabbitMQ users for the namespace: show, definitions, apply."""


@roles_group.command("show")
@connection_options
@click.pass_context
def show_command(ctx: click.Context) -> None:
    """Print each role's user and its configure / write / read regexes."""
    settings = settings_of(ctx)
    rows = [["ROLE", "USER", "CONFIGURE", "WRITE", "READ", "FOR"]]
    rows += table_lines(settings.namespace)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    print(f"vhost {_vhost(settings)!r}, namespace {settings.namespace!r}")
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip())


@roles_group.command("definitions")
@passwords_option
@connection_options
@click.pass_context
def definitions_command(ctx: click.Context, passwords: Path) -> None:
    """Print the users (salted SHA-256 hashes), vhost and permissions as RabbitMQ
    definitions JSON, for load_definitions or rabbitmqctl import_definitions."""
    sys.stdout.buffer.write(_definitions_json(settings_of(ctx), passwords))


@contextlib.contextmanager
def definitions_file(body: bytes, root: Path) -> Iterator[str]:
    """``body`` in a new file under ``root``/tmp, mode 0600, named as a rabbitmqctl whose
    file system starts at ``root`` (a chroot) sees it; removed afterwards. As root, the
    file is handed to the ``rabbitmq`` user where there is one: the packages' rabbitmqctl
    wrapper switches to that user before reading it (root reads it either way)."""
    handle, name = tempfile.mkstemp(prefix="ricochet-definitions-", dir=root / "tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(body)
        with contextlib.suppress(KeyError):
            if os.geteuid() == 0:
                os.chown(name, pwd.getpwnam(CTL_USER).pw_uid, -1)
        yield "/" + str(Path(name).relative_to(root))
    finally:
        Path(name).unlink(missing_ok=True)


def _import(
    command: str, body: bytes, root: Path, stdin: bool
) -> subprocess.CompletedProcess[bytes]:
    """``COMMAND import_definitions FILE`` (or the body on standard input)."""
    argv = [*shlex.split(command), "import_definitions"]
    if stdin:
        return subprocess.run(argv, input=body, capture_output=True, timeout=APPLY_TIMEOUT_S)
    with definitions_file(body, root) as path:
        return subprocess.run(
            [*argv, path], stdin=subprocess.DEVNULL, capture_output=True, timeout=APPLY_TIMEOUT_S
        )


@roles_group.command("apply")
@passwords_option
@click.option(
    "--rabbitmqctl",
    "command",
    default="rabbitmqctl",
    envvar="RICOCHET_ROLES_RABBITMQCTL",
    show_envvar=True,
    help="How to run rabbitmqctl, e.g. 'docker compose exec -T rabbitmq rabbitmqctl'.",
)
@click.option(
    "--rabbitmqctl-root",
    "root",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=Path("/"),
    envvar="RICOCHET_ROLES_RABBITMQCTL_ROOT",
    show_envvar=True,
    help="Where rabbitmqctl's file system starts on this machine when it runs in a chroot:"
    " the definitions file is written under ROOT/tmp.",
)
@click.option(
    "--stdin",
    is_flag=True,
    help="Pipe the definitions to rabbitmqctl instead of a file, for one that cannot see"
    " this machine's files (docker compose exec). RabbitMQ 4.0.0-4.0.5 hang there.",
)
@connection_options
@click.pass_context
def apply_command(
    ctx: click.Context, passwords: Path, command: str, root: Path, stdin: bool
) -> None:
    """Create or update the users and their permissions (rabbitmqctl import_definitions
    of a private temporary file: no password on a command line)."""
    settings = settings_of(ctx)
    body = _definitions_json(settings, passwords)
    try:
        done = _import(command, body, root, stdin)
    except (OSError, subprocess.TimeoutExpired) as err:
        print(f"error: cannot run {command!r}: {err}", file=sys.stderr)
        sys.exit(2)
    if done.returncode != 0:
        why = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
        print(f"error: {command} import_definitions failed: {' '.join(why)[:500]}", file=sys.stderr)
        sys.exit(1)
    roles = [role for role in ROLES if role in _passwords(passwords)]
    for role in roles:
        print(f"applied: {settings.namespace}-{role} on vhost {_vhost(settings)!r}")
