"""The README's settings table tells the truth: every ``Settings`` field is in it and
nothing else, each with its environment variable, its flag (which must exist and read
that same variable) and its default."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from ricochet.workers.cli.main import main
from ricochet.workers.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
SIZES = {"KiB": 1024, "MiB": 1024 * 1024, "GiB": 1024 * 1024 * 1024}


def settings_rows() -> dict[str, list[str]]:
    """The rows of the table under ``## Settings``, by setting name: its cells."""
    section = README.read_text(encoding="utf-8").split("\n## Settings\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            rows[cells[0].strip("`")] = cells[1:]
    return rows


ROWS = settings_rows()


def test_every_setting_is_in_the_table_and_nothing_else() -> None:
    fields = set(Settings.model_fields)

    missing, stale = sorted(fields - set(ROWS)), sorted(set(ROWS) - fields)

    assert ([], []) == (missing, stale), "README ## Settings: add missing, remove stale rows"


@pytest.mark.parametrize("name", sorted(ROWS))
def test_the_environment_variable_is_the_one_settings_read(name: str) -> None:
    variable = ROWS[name][0]

    assert f"`RICOCHET_{name.upper()}`" == variable


@pytest.mark.parametrize("name", sorted(ROWS))
def test_the_default_is_the_model_default(name: str) -> None:
    cell = ROWS[name][2]
    default = getattr(Settings(), name)

    if cell.startswith("unset"):
        assert default is None
    elif name == "worker_id":
        assert re.fullmatch(r"[^:]+:\d+", default)
    else:
        assert default == _value(cell, type(default))


def _value(cell: str, kind: type) -> object:
    size = re.fullmatch(r"(\d+) (KiB|MiB|GiB)", cell)
    if size:
        return int(size[1]) * SIZES[size[2]]
    literal = re.match(r"`([^`]*)`", cell)
    assert literal, f"default {cell!r} is neither `value`, N KiB/MiB/GiB nor unset"
    return kind(literal[1])


@pytest.mark.parametrize("name", sorted(name for name, cells in ROWS.items() if cells[1]))
def test_each_flag_exists_where_the_table_says_and_reads_the_same_variable(name: str) -> None:
    """A flag whose own variable differed from the setting's would override it with the
    flag's default (``--heartbeat`` once did, for ``RICOCHET_HEARTBEAT_S``)."""
    variable, flag_cell = ROWS[name][0].strip("`"), ROWS[name][1]
    flag = re.match(r"`(--[a-z-]+)`", flag_cell)
    assert flag, flag_cell
    where = re.findall(r"`([a-z]+)`", flag_cell)
    commands: list[click.Command] = (
        [main] if "every command" in flag_cell else [main.commands[c] for c in where]
    )

    for command in commands:
        option = next(p for p in command.params if flag[1] in getattr(p, "opts", ()))
        envvars = [option.envvar] if isinstance(option.envvar, str) else list(option.envvar or ())
        assert variable in envvars, (command.name, flag[1], envvars)
