"""deploy/compose.yaml is a set-up a security review would pass (issue 13, item 6).

One user per role made at start-up and no guest, ports on loopback only, no secret
written in the file, a supported RabbitMQ, and every setting, command, path and
port it names is one Ricochet really has.
"""

from __future__ import annotations

import json
import re
import subprocess
from importlib import resources
from typing import Any

import jsonschema

from tests.unit.deploy_files import (
    DEPLOY,
    NAMESPACE,
    PENDING_COMMANDS,
    PENDING_ENV_VARS,
    RABBITMQ_CONF,
    ROLES,
    ROOT,
    WRITER_ROLES,
    amqp_users,
    compose,
    parse_ricochet_args,
    ricochet_env_vars,
    role_of,
    secret_env_name,
    shell_ricochet_args,
)

OUR_IMAGE = "ricochet:dev"
RABBITMQ_IMAGE = "rabbitmq:4.3-management"
"""The supported series README names (test_readme_names_the_image_compose_runs)."""
USER_OF = {"topology": "topology", "worker": "worker", "projector": "reader", "client": "client"}
INTERPOLATED = re.compile(r"^\$\{(?P<name>[A-Z0-9_]+):\?[^}]+\}$")


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def ours() -> dict[str, dict[str, Any]]:
    """The services that run the Ricochet image."""
    return {name: s for name, s in services().items() if s.get("image") == OUR_IMAGE}


def test_the_file_is_valid_compose() -> None:
    """The Compose Specification's own schema (vendored by check-jsonschema): a
    misspelt key is an error there, where Docker would only ignore or refuse it."""
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads(vendor.joinpath("compose-spec.json").read_text(encoding="utf-8"))
    jsonschema.validators.validator_for(schema)(schema).validate(compose())
    assert {"roles", "rabbitmq", "topology", "worker", "projector"} <= set(services())


def test_every_published_port_is_bound_to_loopback() -> None:
    published = [(name, p) for name, s in services().items() for p in s.get("ports", [])]
    assert len(published) >= 4
    for name, port in published:
        assert isinstance(port, str), (name, port)
        assert port.startswith("127.0.0.1:"), (name, port)


def test_each_service_connects_as_its_roles_user_with_an_interpolated_password() -> None:
    """Passwords come from deploy/passwords.env (--env-file), never from this file."""
    for name, role in USER_OF.items():
        url = ours()[name]["environment"]["RICOCHET_AMQP_URL"]
        [(user, password)] = amqp_users(url)
        assert (f"{NAMESPACE}-{role}", role) == (user, role_of(user))
        matched = INTERPOLATED.match(password)
        assert matched is not None, (name, password)
        assert secret_env_name(role) == matched["name"]
    assert [] == amqp_users(ours()["roles"]["environment"]["RICOCHET_AMQP_URL"])


def test_no_guest_user_anywhere() -> None:
    """No URL logs in as guest, and the broker neither creates it nor lets it in remotely."""
    texts = [COMPOSE_TEXT, RABBITMQ_CONF.read_text(encoding="utf-8")]
    for text in texts:
        assert not re.search(r"amqps?://guest", text)
        assert "guest:guest" not in text
    conf = conf_keys()
    assert "true" == conf["loopback_users.guest"]
    assert "default_user" not in conf
    mount = services()["rabbitmq"]["volumes"][0]
    assert mount.startswith("./rabbitmq/rabbitmq.conf:/etc/rabbitmq/conf.d/9"), (
        "the image's conf.d/10-defaults.conf (loopback_users.guest = false) must not win"
    )


def test_the_broker_boots_with_the_users_the_roles_service_wrote() -> None:
    """roles -> rabbitmq (load_definitions from the same volume) -> topology -> the rest."""
    roles, broker = services()["roles"], services()["rabbitmq"]
    args = shell_ricochet_args(roles["command"][0])
    assert ["roles", "definitions", "--passwords", "/run/secrets/passwords"] == args
    [written] = re.findall(r"mv \S+ (\S+)", roles["command"][0])
    volume, _, mounted = roles["volumes"][0].partition(":")
    definitions = conf_keys()["load_definitions"]
    assert f"{volume}:{definitions.rpartition('/')[0]}:ro" in broker["volumes"]
    assert written.rpartition("/")[2] == definitions.rpartition("/")[2]
    assert written.startswith(mounted + "/")
    assert "service_completed_successfully" == broker["depends_on"]["roles"]["condition"]
    assert "service_healthy" == services()["topology"]["depends_on"]["rabbitmq"]["condition"]
    for name in ("worker", "projector", "client"):
        condition = services()[name]["depends_on"]["topology"]["condition"]
        assert "service_completed_successfully" == condition


def test_no_secret_is_written_in_the_file() -> None:
    """Every password or token is interpolated from the git-ignored env files."""
    for name, service in services().items():
        for key, value in dict(service.get("environment", {})).items():
            if re.search(r"PASSWORD|TOKEN|SECRET", key) and not key.endswith("_FILE"):
                assert INTERPOLATED.match(str(value)), (name, key)
    token = INTERPOLATED.match(ours()["projector"]["environment"]["RICOCHET_PROJECTOR_TOKEN"])
    assert token is not None
    assert "RICOCHET_PROJECTOR_TOKEN" == token["name"]
    secrets = compose()["secrets"]
    assert {"file": "./passwords.env"} == secrets["passwords"]
    assert {"environment": "RICOCHET_PROJECTOR_TOKEN"} == secrets["projector_token"]


def test_the_real_env_files_are_ignored_and_the_examples_hold_placeholders_only() -> None:
    for real in ("passwords.env", "projector.env"):
        ignored = subprocess.run(["git", "check-ignore", "-q", f"deploy/{real}"], cwd=ROOT)
        assert 0 == ignored.returncode, real
        example = DEPLOY / real.replace(".env", ".example.env")
        tracked = subprocess.run(["git", "check-ignore", "-q", str(example)], cwd=ROOT)
        assert 1 == tracked.returncode, example
        values = env_lines(example.read_text(encoding="utf-8"))
        assert values
        assert {"replace-with-a-random-hex-string"} == set(values.values())
    lines = env_lines((DEPLOY / "passwords.example.env").read_text(encoding="utf-8"))
    assert {secret_env_name(role) for role in ROLES} == set(lines)


def test_images_are_pinned_and_rabbitmq_is_a_supported_series() -> None:
    for name, service in services().items():
        image = service.get("image", "")
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", image), (name, image)
        assert not image.endswith((":latest", ":management")), (name, image)
    assert RABBITMQ_IMAGE == services()["rabbitmq"]["image"]
    assert "deploy/Dockerfile" == ours()["worker"]["build"]["dockerfile"]


def test_the_worker_gets_longer_than_its_grace_to_stop() -> None:
    worker = ours()["worker"]
    _, params = parse_ricochet_args(worker["command"])
    assert seconds(worker["stop_grace_period"]) > params["grace"]


def test_healthchecks_ask_the_paths_and_ports_the_processes_serve() -> None:
    _, worker = parse_ricochet_args(ours()["worker"]["command"])
    _, projector = parse_ricochet_args(ours()["projector"]["command"])
    port = projector["http"].rpartition(":")[2]
    expected = {
        "worker": f"http://127.0.0.1:{worker['metrics_port']}/metrics",
        "projector": f"http://127.0.0.1:{port}/health",
    }
    for name, url in expected.items():
        asked = re.findall(r"urlopen\('([^']+)'", " ".join(ours()[name]["healthcheck"]["test"]))
        assert [url] == asked, name
    scrape = (DEPLOY / "prometheus.yml").read_text(encoding="utf-8")
    assert f"projector:{port}" in scrape
    assert "credentials_file: /run/secrets/projector_token" in scrape


def test_every_ricochet_command_exists() -> None:
    for name, service in ours().items():
        if name == "roles":
            continue  # a shell line: test_the_broker_boots_with_the_users_the_roles_...
        if "command" in service:
            command, _ = parse_ricochet_args(service["command"])
            assert command in {"topology", "worker", "projector"}, name


def test_every_ricochet_variable_is_a_setting_or_an_option() -> None:
    known = ricochet_env_vars() | PENDING_ENV_VARS
    used = {k for s in services().values() for k in s.get("environment", {}) if "RICOCHET" in k}
    assert used
    assert set() == used - known


def test_readers_accept_events_from_the_writer_roles_only() -> None:
    """The strict setting of issue 13 item 2, on every Ricochet process."""
    writers = {f"{NAMESPACE}-{role}" for role in WRITER_ROLES}
    for name, service in ours().items():
        if name != "roles":
            assert writers == set(service["environment"]["RICOCHET_EVENT_WRITERS"].split(","))


def test_ricochet_containers_are_read_only_and_drop_every_capability() -> None:
    for name, service in ours().items():
        assert (True, ["ALL"]) == (service["read_only"], service["cap_drop"]), name
    for name, service in services().items():
        assert "no-new-privileges:true" in service["security_opt"], name


def test_pending_names_are_not_real_yet() -> None:
    """PENDING_* (deploy_files) list what other branches add: once merged, delete them."""
    assert set() == PENDING_ENV_VARS & ricochet_env_vars()
    from ricochet.workers.cli.main import main

    assert set() == set(PENDING_COMMANDS) & set(main.commands)


def test_readme_names_the_image_compose_runs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    safely = readme.split("\n## Run it safely\n")[1].split("\n## ")[0]
    assert f"`{RABBITMQ_IMAGE}`" in safely
    assert "3.10.8" in safely


COMPOSE_TEXT = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")


def conf_keys() -> dict[str, str]:
    return env_lines(RABBITMQ_CONF.read_text(encoding="utf-8"), " = ")


def env_lines(text: str, separator: str = "=") -> dict[str, str]:
    """KEY=value lines (rabbitmq.conf: key = value), comments and blanks skipped."""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    pairs = [line.split(separator, 1) for line in lines]
    return {key.strip(): value.strip() for key, value in pairs}


def seconds(duration: str) -> float:
    """A compose duration such as 40s or 1m30s."""
    units = {"h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|m|s)", duration)
    assert parts, duration
    assert "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)
