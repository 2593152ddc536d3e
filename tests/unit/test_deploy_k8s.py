"""deploy/k8s is a manifest set a security review would pass (issue 13, item 6).

Namespace-agnostic; Secrets as placeholders only, read per role; workers given
longer than their --grace to stop; the projector's SQLite file on a claimed volume;
probes that ask what the processes really serve; non-root, read-only, bounded.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

import yaml
from aiohttp import ClientSession
from prometheus_client import CollectorRegistry

from ricochet.workers.observe.serving import serve_metrics
from ricochet.workers.read import api
from ricochet.workers.read.provenance import Provenance
from tests.unit.deploy_files import (
    K8S,
    NAMESPACE,
    PENDING_ENV_VARS,
    ROLES,
    WRITER_ROLES,
    amqp_users,
    k8s_documents,
    k8s_kind,
    parse_ricochet_args,
    pod_spec,
    ricochet_env_vars,
    role_of,
    secret_env_name,
)

WORKLOADS = ("Deployment", "StatefulSet", "Job")
PLACEHOLDER = "REPLACE-ME"


def workloads() -> list[dict[str, Any]]:
    return [d for d in k8s_documents() if d["kind"] in WORKLOADS]


def containers() -> list[dict[str, Any]]:
    return [c for w in workloads() for c in pod_spec(w)["containers"]]


def only(kind: str) -> dict[str, Any]:
    [document] = k8s_kind(kind)
    return document


def probes(container: dict[str, Any]) -> list[dict[str, Any]]:
    names = ("startupProbe", "readinessProbe", "livenessProbe")
    return [container[name]["httpGet"] for name in names]


def port_number(container: dict[str, Any], port: int | str) -> int:
    """A probe's port, by number or by the name of one of the container's ports."""
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    return port if isinstance(port, int) else int(named[port])


def test_every_file_parses_and_the_set_is_namespace_agnostic() -> None:
    documents = k8s_documents()
    kinds = sorted(d["kind"] for d in documents)
    assert ["ConfigMap", "Deployment", "Job", "Kustomization", "Secret", "Secret"] == [
        k for k in kinds if k not in ("Service", "StatefulSet")
    ]
    for document in documents:
        assert "namespace" not in document.get("metadata", {}), document["_file"]
        assert "namespace" not in document, document["_file"]


def test_kustomization_lists_every_manifest_but_the_placeholder_secrets() -> None:
    listed = set(only("Kustomization")["resources"])
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert files - {"secrets.yaml"} == listed
    for name in listed:
        assert all(d.get("kind") != "Secret" for d in yaml.safe_load_all((K8S / name).read_text()))


def test_secrets_hold_placeholders_only_and_are_read_by_key_per_role() -> None:
    """No real value is committed; each pod reads its own role's password and no other."""
    for secret in k8s_kind("Secret"):
        assert {PLACEHOLDER} == set(secret["stringData"].values()), secret["metadata"]["name"]
    keys: set[str] = set()
    for secret in k8s_kind("Secret"):
        keys |= set(secret["stringData"])
    assert {secret_env_name(role) for role in ROLES} | {"RICOCHET_PROJECTOR_TOKEN"} == keys
    for container in containers():
        env = {e["name"]: e for e in container["env"]}
        [(user, password)] = amqp_users(env["RICOCHET_AMQP_URL"]["value"])
        assert "$(AMQP_PASSWORD)" == password
        key = env["AMQP_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"]
        assert secret_env_name(role_of(user)) == key
        for name, entry in env.items():
            if re.search(r"PASSWORD|TOKEN|SECRET", name):
                assert "value" not in entry, (container["name"], name)


def test_each_process_runs_as_its_roles_user() -> None:
    expected = {"topology": "topology", "worker": "worker", "projector": "reader"}
    for container in containers():
        url = next(e["value"] for e in container["env"] if e["name"] == "RICOCHET_AMQP_URL")
        [(user, _)] = amqp_users(url)
        assert f"{NAMESPACE}-{expected[container['name']]}" == user
    writers = {f"{NAMESPACE}-{role}" for role in WRITER_ROLES}
    config = only("ConfigMap")["data"]
    assert writers == set(config["RICOCHET_EVENT_WRITERS"].split(","))
    for container in containers():
        assert [{"configMapRef": {"name": "ricochet"}}] == container["envFrom"]


def test_workers_get_longer_than_their_grace_to_stop() -> None:
    deployment = only("Deployment")
    [container] = pod_spec(deployment)["containers"]
    command, params = parse_ricochet_args(container["args"])
    assert "worker" == command
    assert pod_spec(deployment)["terminationGracePeriodSeconds"] > params["grace"]


def test_worker_probes_ask_its_metrics_port_for_metrics() -> None:
    [container] = pod_spec(only("Deployment"))["containers"]
    _, params = parse_ricochet_args(container["args"])
    for probe in probes(container):
        assert "/metrics" == probe["path"]
        assert params["metrics_port"] == port_number(container, probe["port"])


def test_projector_probes_ask_its_http_port_for_health() -> None:
    [container] = pod_spec(only("StatefulSet"))["containers"]
    _, params = parse_ricochet_args(container["args"])
    for probe in probes(container):
        assert "/health" == probe["path"]
        assert int(params["http"].rpartition(":")[2]) == port_number(container, probe["port"])


def test_the_projector_keeps_its_store_on_its_claimed_volume() -> None:
    statefulset = only("StatefulSet")
    [container] = pod_spec(statefulset)["containers"]
    _, params = parse_ricochet_args(container["args"])
    [claim] = statefulset["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert Path(mounts[claim["metadata"]["name"]]) == Path(params["store"]).parent
    assert 1 == statefulset["spec"]["replicas"]  # a second projector finds the store locked
    service = only("Service")
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]


def test_the_topology_job_declares_the_work_queue() -> None:
    [container] = pod_spec(only("Job"))["containers"]
    command, params = parse_ricochet_args(container["args"])
    assert ("topology", ("default",)) == (command, params["queues"])
    assert "OnFailure" == pod_spec(only("Job"))["restartPolicy"]


def test_pods_run_as_non_root_on_read_only_roots_with_bounded_resources() -> None:
    for workload in workloads():
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["automountServiceAccountToken"] is False
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert ["ALL"] == context["capabilities"]["drop"]
            assert {"cpu", "memory"} == set(container["resources"]["requests"])
            assert "memory" in container["resources"]["limits"]


def test_the_image_is_pinned() -> None:
    [image] = only("Kustomization")["images"]
    assert {c["image"] for c in containers()} == {image["name"]}
    assert re.fullmatch(r"\d+\.\d+\.\d+", image["newTag"])


def test_every_ricochet_variable_is_a_setting_or_an_option() -> None:
    used = set(only("ConfigMap")["data"])
    used |= {e["name"] for c in containers() for e in c["env"] if e["name"].startswith("RICOCHET")}
    assert "RICOCHET_AMQP_URL" in used
    assert set() == used - ricochet_env_vars() - PENDING_ENV_VARS


def test_the_probed_paths_are_served() -> None:
    """/health is a route of the projector's API; needs no projection to be listed."""
    application = api.app(cast(Provenance, None), lambda: cast(Any, None), dict)
    paths = {resource.canonical for resource in application.router.resources()}
    assert "/health" in paths


async def test_a_worker_metrics_server_answers_on_the_probed_path() -> None:
    runner, port = await serve_metrics(CollectorRegistry(), 0, host="127.0.0.1")
    try:
        async with ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as r:
            assert 200 == r.status
    finally:
        await runner.cleanup()
