"""``ricochet roles apply`` hands rabbitmqctl a private file, named as rabbitmqctl sees it:
RabbitMQ 4.0.5's ``import_definitions`` waits for ever on standard input."""

from __future__ import annotations

import stat
from pathlib import Path

from ricochet.workers.cli.roles import definitions_file


def test_the_file_is_private_holds_the_body_and_is_gone_afterwards(tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    with definitions_file(b'{"users": []}', tmp_path) as named:
        on_disk = tmp_path / named.lstrip("/")
        assert named.startswith("/tmp/ricochet-definitions-")
        assert on_disk.read_bytes() == b'{"users": []}'
        assert stat.S_IMODE(on_disk.stat().st_mode) == 0o600
    assert not on_disk.exists()


def test_without_a_chroot_the_path_is_the_file_itself() -> None:
    with definitions_file(b"{}", Path("/")) as named:
        assert Path(named).read_bytes() == b"{}"
        assert Path(named).parent == Path("/tmp")
    assert not Path(named).exists()
