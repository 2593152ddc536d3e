"""Where the tests' own RabbitMQ nodes (the 3-node cluster, the TLS node) run.

Unset ``RICOCHET_NODE_ROOT``: the machine's RabbitMQ (3.10 here), started through its
packaged scripts, which switch to the ``rabbitmq`` user. Set (``deploy/test.sh --broker
4`` sets it to ``deploy/rabbitmq4.sh``'s chroot): the RabbitMQ 4.x installed in that
chroot, run there as root with root's cookie (the one ``rabbitmq4.sh ctl`` uses), nodes
named ``…@localhost`` (the chroot resolves no other host name). A node reads paths as
seen inside its root; the test process writes them under the root (``outside``).
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

ROOT_VARIABLE = "RICOCHET_NODE_ROOT"
PROGRAMS = Path("/usr/lib/rabbitmq/bin")


def root() -> Path | None:
    given = os.environ.get(ROOT_VARIABLE)
    return Path(given) if given else None


def host_name() -> str:
    """The host part of the nodes' names."""
    return "localhost" if root() else socket.gethostname().split(".")[0]


def command(program: str, *args: str) -> list[str]:
    """``rabbitmq-server`` or ``rabbitmqctl`` with ``args``, from the right installation."""
    chroot = root()
    if chroot is None:
        return [program, *args]
    return ["chroot", str(chroot), "env", "HOME=/root", str(PROGRAMS / program), *args]


def outside(inside: Path) -> Path:
    """Where the test process finds a path that a node sees as ``inside``."""
    chroot = root()
    return inside if chroot is None else chroot / inside.relative_to("/")


def inside(path: Path) -> Path:
    """How a node sees ``path``, a path the test process wrote under the root."""
    chroot = root()
    return path if chroot is None else Path("/") / path.relative_to(chroot)


def hand_over(directory: Path) -> None:
    """Let the node's user own ``directory`` (outside path): the packaged scripts run the
    node as ``rabbitmq``; in the chroot it runs as root, which needs nothing."""
    if root() is None:
        for path in [directory, *directory.rglob("*")]:
            shutil.chown(path, "rabbitmq", "rabbitmq")
