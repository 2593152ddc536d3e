"""The CLI's options: every flag has an environment twin shown in ``--help``, and the
connection options work after the command as well as before it."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from ricochet.workers.cli.main import main
from ricochet.workers.cli.options import connection_options, settings_of

COMMANDS = sorted(main.commands)


@pytest.mark.parametrize("name", ["", *COMMANDS])
def test_every_option_shows_its_environment_twin(name: str) -> None:
    command = main if not name else main.commands[name]
    ctx = click.Context(main, info_name="ricochet", auto_envvar_prefix="RICOCHET")
    if name:
        ctx = click.Context(command, info_name=name, parent=ctx)
    params = [p for p in command.get_params(ctx) if isinstance(p, click.Option)]
    records = [p.get_help_record(ctx) for p in params]
    options = [r for r in records if r is not None and not r[0].startswith("--help")]

    missing = [flags for flags, text in options if "env var: RICOCHET_" not in text]

    assert [] == missing


def test_options_after_the_command_win_over_those_before() -> None:
    """Before the command, from the environment; after it, on the command line."""
    seen: dict[str, str] = {}

    @click.command("probe")
    @connection_options
    @click.pass_context
    def probe(ctx: click.Context) -> None:
        settings = settings_of(ctx)
        seen.update(url=settings.amqp_url, namespace=settings.namespace)

    main.add_command(probe)
    try:
        done = CliRunner().invoke(
            main,
            ["--namespace", "before", "probe", "--amqp-url", "amqp://u:p@after:5673/v"],
            env={"RICOCHET_AMQP_URL": "amqp://u:p@env:5672/"},
        )
    finally:
        del main.commands["probe"]

    assert 0 == done.exit_code, done.output
    assert {"url": "amqp://u:p@after:5673/v", "namespace": "before"} == seen
