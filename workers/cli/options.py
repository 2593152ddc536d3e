"""What every command shares: connection options (before or after the command name),
settings, running a coroutine, and parsing JSON arguments.

``ricochet --amqp-url X submit t`` and ``ricochet submit t --amqp-url X`` are the same:
the options are defined on the group and again on each command; a value given after
the command wins over one given before it, which wins over the environment.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click
import orjson

from ricochet.errors import AddressError, BrokerUnreachable, TopologyMismatch, TopologyMissing
from ricochet.workers.addresses import parse_addresses
from ricochet.workers.logs import configure, get_logger
from ricochet.workers.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])
API_DEFAULT = "http://127.0.0.1:8765"
OVERRIDES = "ricochet.overrides"
log = get_logger(__name__)


def check_addresses(value: str | None) -> str | None:
    """Check ``--amqp-url`` before anything starts: the error names the item at fault."""
    if value is None:
        return None
    try:
        parse_addresses(value)
    except AddressError as err:
        raise click.BadParameter(str(err), param_hint="--amqp-url") from None
    return value


AMQP_URL_HELP = (
    "Broker URL, or several comma-separated to fail over among (the nodes of a cluster):"
    " a full amqp[s]:// URL first, then full URLs or host[:port] that reuse its"
    " credentials and vhost."
)
NAMESPACE_HELP = "Prefix of every queue and exchange."
EVENT_WRITERS_HELP = (
    "RabbitMQ users whose events are believed, comma-separated (the AMQP user_id"
    " RabbitMQ checks); unset believes every writer."
)
LOG_JSON_HELP = "Default: JSON unless stderr is a terminal."

# -- TLS (README "Run it safely", "TLS"): flags for the tls_* settings, for amqps:// URLs.
TLS_HELP = {
    "--tls-ca-file": "PEM file of the CA(s) that signed the broker's certificate (default:"
    " the system's CAs).",
    "--tls-cert-file": "PEM file of this client's certificate, for a broker that requires one.",
    "--tls-key-file": "PEM file of the client certificate's key (no passphrase).",
    "--tls-verify-hostname/--no-tls-verify-hostname": "Check that the broker's certificate is"
    " for the host name in the URL (the certificate itself is always checked). [default: on]",
}


def _envvar(flag: str) -> str:
    """``--tls-ca-file`` -> ``RICOCHET_TLS_CA_FILE`` (of a ``--x/--no-x`` pair, the first)."""
    return "RICOCHET_" + flag.split("/")[0].removeprefix("--").replace("-", "_").upper()


def tls_group_options(command: F) -> F:
    """The TLS flags before the command name, reading their environment variables."""
    for flag, text in reversed(TLS_HELP.items()):
        command = click.option(flag, default=None, envvar=_envvar(flag), help=text)(command)
    return command


def _after(flag: str, text: str) -> Callable[[F], F]:
    """A connection option after the command name: an override of the group's, as
    ``--amqp-url`` there; its environment variable is read by the group only."""
    return click.option(
        flag,
        default=None,
        expose_value=False,
        allow_from_autoenv=False,
        callback=_remember,
        help=f"{text} [env var: {_envvar(flag)}]".strip(),
    )


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """A connection option given after the command: kept to override the group's."""
    if value is not None and param.name is not None:
        if param.name == "amqp_url":
            check_addresses(value)
        ctx.meta.setdefault(OVERRIDES, {})[param.name] = value
    return value


def connection_options(command: F) -> F:
    """The group's connection and logging options, accepted after the command too."""
    after = {
        "--amqp-url": AMQP_URL_HELP,
        "--namespace": NAMESPACE_HELP,
        "--event-writers": EVENT_WRITERS_HELP,
        "--log-level": "",
        "--log-json/--log-pretty": LOG_JSON_HELP,
        **TLS_HELP,
    }
    for flag, text in reversed(after.items()):
        command = _after(flag, text)(command)
    return command


def settings_of(ctx: click.Context, **given: Any) -> Settings:
    """The group's settings, with what was given after the command, then ``given``."""
    base: Settings = ctx.find_root().obj
    overrides = dict(ctx.meta.get(OVERRIDES, {}))
    level, as_json = overrides.pop("log_level", None), overrides.pop("log_json", None)
    if level is not None or as_json is not None:
        root = ctx.find_root().params
        configure(level or root["log_level"], root["log_json"] if as_json is None else as_json)
    chosen = {**overrides, **{k: v for k, v in given.items() if v is not None}}
    try:
        return Settings.model_validate({**base.model_dump(), **chosen})
    except ValueError as err:
        raise click.UsageError(str(err)) from err


async def until_signalled() -> None:
    """Return on the first SIGTERM/SIGINT; a second one exits at once."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal() -> None:
        if stop.is_set():
            log.warning("signal.again_exiting_now")
            os._exit(1)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    await stop.wait()


STRICT_HELP = "With --file: stop at the first line that cannot be read (exit 4)."


def strict_needs_file(strict: bool, source: object) -> None:
    """``--strict`` is about an exported file's lines; alone it would silently do nothing."""
    if strict and source is None:
        raise click.UsageError("--strict applies to --file only")


def json_arg(value: str, what: str) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as err:
        raise click.BadParameter(f"{what} is not valid JSON: {err}") from err


def run(main: Callable[[], Coroutine[Any, Any, int]]) -> None:
    """Run a command's body and exit with its code.

    A broker that cannot be reached is the user's to fix, not a bug: it ends the
    command with one line (``error: cannot connect to ...``, naming each address
    without its password, and why) and exit code 2, never a traceback; so does a queue
    that exists with other arguments than the settings give (``TopologyMismatch``), and
    a topology that a read-only or least-privilege user does not declare and that is not
    there (``TopologyMissing``: ``... does not exist ...: run `ricochet topology` first``). Ctrl-C
    before the command has its own signal handling (a worker waiting for its
    broker, say) exits 130, also without a traceback.
    """
    try:
        sys.exit(_run_on_fastest_loop(main))
    except (BrokerUnreachable, TopologyMismatch, TopologyMissing) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


def _run_on_fastest_loop(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """uvloop where it exists: its transports and thread wake-ups are written in C, and a
    busy worker spends a fifth of its time in them on the stock loop."""
    try:
        import uvloop
    except ImportError:  # not built for Windows
        return asyncio.run(main())
    return uvloop.run(main())
