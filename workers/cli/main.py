"""``ricochet``: run workers and the projector, submit work, read the log.

Every flag has an environment twin, shown in ``--help``: ``RICOCHET_<FLAG>`` for the
connection options (accepted before or after the command), ``RICOCHET_<COMMAND>_<FLAG>``
for the others unless the help names another. click is used because it is small,
well kept, and gives env twins and help text for free. Each command is defined
beside what it does (``running``, ``starting``, ``reading``, ``log_tools``, ``roles``).
"""

from __future__ import annotations

from typing import Any

import click

from ricochet.workers.cli import log_tools, reading, roles, running, starting
from ricochet.workers.cli.options import (
    AMQP_URL_HELP,
    EVENT_WRITERS_HELP,
    LOG_JSON_HELP,
    NAMESPACE_HELP,
    check_addresses,
    tls_group_options,
)
from ricochet.workers.logs import configure
from ricochet.workers.settings import Settings


@click.group(context_settings={"auto_envvar_prefix": "RICOCHET", "show_default": True})
@click.option(
    "--amqp-url",
    default="amqp://guest:guest@localhost:5672/",
    envvar="RICOCHET_AMQP_URL",
    callback=lambda _ctx, _param, value: check_addresses(value),
    help=AMQP_URL_HELP,
)
@click.option("--namespace", default="ricochet", envvar="RICOCHET_NAMESPACE", help=NAMESPACE_HELP)
@click.option(
    "--event-writers", default=None, envvar="RICOCHET_EVENT_WRITERS", help=EVENT_WRITERS_HELP
)
@click.option("--log-level", default="INFO", envvar="RICOCHET_LOG_LEVEL")
@click.option(
    "--log-json/--log-pretty", default=None, envvar="RICOCHET_LOG_JSON", help=LOG_JSON_HELP
)
@tls_group_options
@click.pass_context
def main(
    ctx: click.Context,
    /,
    amqp_url: str,
    namespace: str,
    event_writers: str | None,
    log_level: str,
    log_json: bool | None,
    **tls: Any,
) -> None:
    """Ricochet: an event-sourced retry engine on RabbitMQ."""
    configure(log_level, log_json)
    try:
        ctx.obj = Settings.from_env(
            amqp_url=amqp_url, namespace=namespace, event_writers=event_writers, **tls
        )
    except ValueError as err:  # a RICOCHET_* variable out of range: say which, no traceback
        raise click.UsageError(str(err)) from err


for command in (
    running.worker_command,
    running.projector_command,
    starting.submit_command,
    starting.rerun_command,
    starting.cancel_command,
    reading.status_command,
    reading.executions_command,
    reading.debug_command,
    log_tools.replay_command,
    log_tools.topology_command,
    log_tools.schemas_command,
    roles.roles_group,
):
    main.add_command(command)


def _show_environment_twins(group: click.Group) -> None:
    """Every option's environment variable in ``--help`` (click hides them by default)."""
    for command in (group, *group.commands.values()):
        for param in command.params:
            if isinstance(param, click.Option) and param.allow_from_autoenv:
                param.show_envvar = True


_show_environment_twins(main)
