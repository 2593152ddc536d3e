"""The projector's token on the command line: only as a file (``--projector-token-file``)
or the environment, never as a flag's value, which ``ps`` and shell history would show."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ricochet.errors import TokenFileError
from ricochet.workers.read.auth import projector_token
from ricochet.workers.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def token_file_option(command: F) -> F:
    """``--projector-token-file``: for the projector (to require it) and for ``status`` and
    ``executions`` (to send it)."""
    return click.option(
        "--projector-token-file",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        envvar="RICOCHET_PROJECTOR_TOKEN_FILE",
        help="File holding the projector's bearer token (or set RICOCHET_PROJECTOR_TOKEN).",
    )(command)


def token_of(settings: Settings) -> str | None:
    """The token, or a usage error naming the file and why (never the token)."""
    try:
        return projector_token(settings)
    except TokenFileError as err:
        raise click.UsageError(str(err)) from None
