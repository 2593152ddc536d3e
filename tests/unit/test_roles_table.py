"""The role table: what each role's regexes let through, the passwords file, the
definitions and the ``ricochet roles`` commands (the broker proves them in
``tests/integration/test_roles.py``)."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from ricochet.errors import BadPasswords
from ricochet.workers.amqp.permissions import (
    NOTHING,
    REPLY_QUEUE,
    ROLES,
    definitions,
    password_hash,
    password_variable,
    read_passwords,
    role_permissions,
    user_name,
)
from ricochet.workers.amqp.topology import Names
from ricochet.workers.cli.main import main

NS = Names("shop")
EVERY = [
    NS.events,
    NS.work,
    NS.delay,
    NS.dead,
    NS.triggers,
    NS.supervisor,
    NS.checkpoints,
    NS.dead_watch,
    NS.work_queue("default"),
    NS.delay_queue(500),
    "amq.default",
    "amq.gen-abc",
    "shopping.events",
    "other.events",
]
"""Every name Ricochet uses in namespace ``shop``, and some that are not its own."""


def allowed(role: str, kind: str) -> set[str]:
    """The names ``role`` gets ``kind`` rights on; RabbitMQ searches (``re:run``), and
    every regex is anchored, so ``re.search`` tells the same."""
    pattern = getattr(role_permissions("shop")[role], kind)
    return {name for name in EVERY if re.search(pattern, name)}


def test_the_roles_are_the_agreed_five_with_namespaced_users() -> None:
    assert ROLES == ("topology", "worker", "client", "reader", "trigger-publisher")
    assert set(role_permissions("shop")) == set(ROLES)
    assert user_name("shop", "trigger-publisher") == "shop-trigger-publisher"
    assert password_variable("trigger-publisher") == "RICOCHET_PASSWORD_TRIGGER_PUBLISHER"


def test_topology_may_do_anything_in_its_namespace_and_nothing_outside() -> None:
    own = {name for name in EVERY if name.startswith("shop.")}
    for kind in ("configure", "write", "read"):
        assert allowed("topology", kind) == own


def test_a_reader_reads_the_log_and_nothing_else() -> None:
    assert allowed("reader", "configure") == set()
    assert allowed("reader", "write") == set()
    assert allowed("reader", "read") == {NS.events}


def test_a_trigger_publisher_writes_triggers_only() -> None:
    assert allowed("trigger-publisher", "configure") == set()
    assert allowed("trigger-publisher", "write") == {NS.triggers}
    assert allowed("trigger-publisher", "read") == set()


def test_a_client_records_and_publishes_work_and_triggers_and_reads_the_log() -> None:
    assert allowed("client", "configure") == set()
    assert allowed("client", "write") == {NS.events, NS.work, NS.triggers}
    assert allowed("client", "read") == {NS.events}


def test_a_worker_configures_only_its_work_and_delay_queues() -> None:
    """It can never delete or re-declare the log, the checkpoints, triggers or heartbeats."""
    assert allowed("worker", "configure") == {NS.work_queue("default"), NS.delay_queue(500)}
    assert allowed("worker", "write") == {
        NS.events,
        NS.work,
        NS.delay,
        NS.dead,
        NS.work_queue("default"),
        NS.delay_queue(500),
        "amq.default",
    }
    assert allowed("worker", "read") == {
        NS.events,
        NS.checkpoints,
        NS.supervisor,
        NS.triggers,
        NS.dead_watch,
        NS.work,
        NS.delay,
        NS.work_queue("default"),
        NS.delay_queue(500),
    }


def test_a_namespace_with_regex_characters_is_matched_literally() -> None:
    table = role_permissions("a.b")
    assert re.search(table["reader"].read, "a.b.events")
    assert not re.search(table["reader"].read, "aXb.events")
    assert not re.search(table["topology"].configure, "a.bc.events")


def test_nothing_grants_nothing_and_replies_need_a_server_named_queue() -> None:
    assert not re.search(NOTHING, "amq.default")
    assert re.search(REPLY_QUEUE.configure, "amq.gen-JzTY20BRgKO-HjmUJj0wLg")
    assert not re.search(REPLY_QUEUE.read, "shop.events")


def test_the_hash_is_rabbitmqs_salted_sha256() -> None:
    salt = bytes([0x90, 0x8D, 0xC6, 0x0A])
    decoded = base64.b64decode(password_hash("s3cret", salt))
    assert decoded == salt + hashlib.sha256(salt + b"s3cret").digest()


def test_the_passwords_file_is_env_style() -> None:
    text = (
        "# made by the deploy\n\nRICOCHET_PASSWORD_WORKER=w=1\n"
        "export RICOCHET_PASSWORD_TRIGGER_PUBLISHER='t p'\n"
        'RICOCHET_PASSWORD_READER="r"\n'
    )
    assert read_passwords(text) == {"worker": "w=1", "trigger-publisher": "t p", "reader": "r"}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("RICOCHET_PASSWORD_WROKER=x\n", "line 1: expected one of"),
        ("# ok\nRICOCHET_PASSWORD_READER=\n", "line 2: RICOCHET_PASSWORD_READER has an empty"),
        ("RICOCHET_PASSWORD_READER\n", "line 1: expected"),
    ],
)
def test_a_bad_passwords_line_is_named(text: str, says: str) -> None:
    with pytest.raises(BadPasswords, match=says):
        read_passwords(text)


def test_definitions_hold_only_the_roles_given() -> None:
    made = definitions("shop", "prod", {"reader": "r", "worker": "w"}, salt=lambda: b"salt")
    assert [u["name"] for u in made["users"]] == ["shop-worker", "shop-reader"]
    assert {u["hashing_algorithm"] for u in made["users"]} == {"rabbit_password_hashing_sha256"}
    assert made["users"][1]["password_hash"] == password_hash("r", b"salt")
    assert made["vhosts"] == [{"name": "prod"}]
    reader = made["permissions"][1]
    table = role_permissions("shop")["reader"]
    assert reader == {
        "user": "shop-reader",
        "vhost": "prod",
        "configure": table.configure,
        "write": table.write,
        "read": table.read,
    }


def test_roles_show_prints_every_role() -> None:
    done = CliRunner().invoke(main, ["--namespace", "shop", "roles", "show"])
    assert done.exit_code == 0, done.output
    assert "vhost '/', namespace 'shop'" in done.output
    for role in ROLES:
        assert f"shop-{role}" in done.output
    assert role_permissions("shop")["worker"].configure in done.output


def test_roles_definitions_uses_the_urls_vhost(tmp_path: Path) -> None:
    path = tmp_path / "passwords.env"
    path.write_text("RICOCHET_PASSWORD_READER=r\n")
    url = "amqp://admin:x@localhost:5672/prod%2Fa"
    done = CliRunner().invoke(
        main, ["roles", "definitions", "--passwords", str(path), "--amqp-url", url]
    )
    assert done.exit_code == 0, done.output
    made = orjson.loads(done.output)
    assert made["vhosts"] == [{"name": "prod/a"}]
    assert [u["name"] for u in made["users"]] == ["ricochet-reader"]


def test_a_bad_passwords_file_is_a_usage_error_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "passwords.env"
    path.write_text("RICOCHET_PASSWORD_NOBODY=x\n")
    done = CliRunner().invoke(main, ["roles", "apply", "--passwords", str(path)])
    assert done.exit_code == 2
    assert "line 1: expected one of RICOCHET_PASSWORD_TOPOLOGY" in done.output
    assert done.exception is None or isinstance(done.exception, SystemExit)


def test_the_readme_table_is_the_code_table() -> None:
    """README's role table, with ``<ns>`` for the namespace, is what the code grants."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Roles and permissions", 1)[1].split("\n\n", 3)[2]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    table = role_permissions("NS")

    def cell(pattern: str) -> str:
        return "`" + pattern.replace("NS", "<ns>").replace("|", "\\|") + "`"

    assert rows == [
        f"| `{role}` | {cell(table[role].configure)} | {cell(table[role].write)}"
        f" | {cell(table[role].read)} |"
        for role in ROLES
    ]
