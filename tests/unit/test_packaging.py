"""The wheel installs one import name, ``ricochet``, with its data, and the ``ricochet`` command.

Built from this checkout by pip, as a user's ``pip install`` would build it.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_installs_only_the_ricochet_package(wheel: zipfile.ZipFile) -> None:
    """No ``contracts``, ``engine`` or ``workers`` beside other projects' packages."""
    tops = {name.split("/")[0] for name in wheel.namelist()}
    dist_info = {top for top in tops if top.endswith(".dist-info")}

    assert {"ricochet"} == tops - dist_info
    assert [True] == [top.startswith("ricochet_retries-") for top in dist_info]


def test_the_wheel_carries_the_layers_schemas_and_type_marker(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())

    expected = {
        "ricochet/py.typed",
        "ricochet/errors.py",
        "ricochet/contracts/schemas/trigger.v1.json",
        "ricochet/engine/decider.py",
        "ricochet/workers/cli/main.py",
    }
    assert set() == expected - names


def test_the_wheel_names_the_ricochet_command_and_its_license(wheel: zipfile.ZipFile) -> None:
    (entry_points,) = [n for n in wheel.namelist() if n.endswith("entry_points.txt")]
    licenses = [n for n in wheel.namelist() if n.endswith("LICENSE")]

    assert "ricochet = ricochet.workers.cli.main:main" in wheel.read(entry_points).decode()
    assert 1 == len(licenses)


def test_the_wheel_carries_the_web_timelines_script_and_style(wheel: zipfile.ZipFile) -> None:
    """The projector's pages load these from the package, never from the internet."""
    names = set(wheel.namelist())
    assert "ricochet/workers/read/static/live.js" in names
    assert "ricochet/workers/read/static/timeline.css" in names
