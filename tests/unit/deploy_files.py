"""What the deploy-file tests share: the files parsed, and what the CLI really offers.

The deploy files name settings, commands and users that live in the code; these
helpers read both sides, so a test can hold one against the other.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import click
import yaml

from ricochet.workers.cli.main import main
from ricochet.workers.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE_FILE = DEPLOY / "compose.yaml"
RABBITMQ_CONF = DEPLOY / "rabbitmq" / "rabbitmq.conf"

ROLES = ("topology", "worker", "client", "reader", "trigger-publisher")
"""The roles of issue 13 (README, "Roles and permissions"); users are ``<ns>-<role>``."""
WRITER_ROLES = ("worker", "client")
"""The roles whose users write events; the strict writer set names these only."""
NAMESPACE = "ricochet"

# --- PENDING AT MERGE (issue 13) -------------------------------------------------
# Names the other parts of issue 13 add, used by the deploy files before they exist
# on this branch. The lead removes each entry when merging the branch that makes it
# real: test_pending_names_are_not_real_yet fails until then, to say so.
PENDING_ENV_VARS: frozenset[str] = frozenset()
PENDING_COMMANDS: dict[str, dict[str, tuple[str, ...]]] = {}
# ----------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    """deploy/compose.yaml, anchors and merge keys resolved."""
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return loaded


def k8s_documents() -> list[dict[str, Any]]:
    """Every object in deploy/k8s, Kustomization included, each with its file name."""
    documents = []
    for path in sorted(K8S.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            assert isinstance(document, dict), path
            documents.append({**document, "_file": path.name})
    return documents


def k8s_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in k8s_documents() if d.get("kind") == kind]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def ricochet_env_vars() -> frozenset[str]:
    """Every variable Ricochet reads: a Settings field's twin or a CLI option's."""
    names = {f"RICOCHET_{field.upper()}" for field in Settings.model_fields}
    _option_env_vars(main, [], names)
    return frozenset(names)


def _option_env_vars(command: click.Command, path: list[str], names: set[str]) -> None:
    """Explicit ``envvar`` names, and click's automatic ``RICOCHET_<COMMAND>_<OPTION>``."""
    for param in command.params:
        if not isinstance(param, click.Option):
            continue
        if param.envvar:
            names.update([param.envvar] if isinstance(param.envvar, str) else param.envvar)
        elif param.allow_from_autoenv and param.name:
            names.add("_".join(["RICOCHET", *path, param.name]).upper())
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            _option_env_vars(sub, [*path, name], names)


def parse_ricochet_args(args: list[str]) -> tuple[str, dict[str, Any]]:
    """``ricochet`` arguments as the CLI parses them: the command and its values.

    A command of PENDING_COMMANDS is checked against the agreed interface instead.
    """
    name, rest = args[0], args[1:]
    if name in PENDING_COMMANDS:
        assert rest[0] in PENDING_COMMANDS[name], args
        options = [a.split("=")[0] for a in rest[1:] if a.startswith("--")]
        assert set(options) <= set(PENDING_COMMANDS[name][rest[0]]), args
        return name, {}
    assert name in main.commands, f"no command `ricochet {name}`"
    context = main.commands[name].make_context(name, list(rest))
    return name, context.params


def shell_ricochet_args(script: str) -> list[str]:
    """The ``ricochet`` arguments of a ``sh -c`` script (up to a redirection or &&)."""
    words = shlex.split(script)
    start = words.index("ricochet") + 1
    stops = [i for i, w in enumerate(words[start:], start) if w in (">", "&&", "|", ";")]
    return words[start : stops[0] if stops else None]


def amqp_users(text: str) -> list[tuple[str, str]]:
    """(user, password) of every amqp(s):// URL with credentials in ``text``; a password
    may be a compose interpolation, ``${NAME:?message with spaces}``."""
    return re.findall(r"amqps?://([^:@/\s\"']+):(\$\{[^}]*\}|[^@\s\"']+)@", text)


def role_of(user: str) -> str:
    """The role of a ``<ns>-<role>`` user name."""
    assert user.startswith(f"{NAMESPACE}-"), user
    role = user.removeprefix(f"{NAMESPACE}-")
    assert role in ROLES, user
    return role


def secret_env_name(role: str) -> str:
    """The passwords file's line for a role: RICOCHET_PASSWORD_TRIGGER_PUBLISHER, ..."""
    return "RICOCHET_PASSWORD_" + role.upper().replace("-", "_")
