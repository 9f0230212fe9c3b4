"""deploy/kubernetes: validated offline against the Kubernetes schemas; the pod's rules."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from sidecar.config import parse_settings

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="needs kubernetes-validate (the test extra)"
)

pytestmark = pytest.mark.deploy

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((ROOT / "deploy/kubernetes").glob("*.yaml"))
# The oldest and newest Kubernetes versions whose schemas kubernetes-validate ships that we claim.
VERSIONS = ("1.29.0", "1.37.0")


def documents() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def by_kind(kind: str) -> dict[str, Any]:
    (doc,) = [d for d in documents() if d["kind"] == kind]
    return doc


def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = by_kind("Deployment")["spec"]["template"]["spec"]
    return spec


def sidecar_container() -> dict[str, Any]:
    (container,) = [c for c in pod_spec()["containers"] if c["name"] == "sidecar"]
    return container


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_is_valid_against_the_kubernetes_schema(path: Path, version: str) -> None:
    """Each manifest passes the strict (no unknown fields) schema of that Kubernetes version."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_strict_validation_catches_a_misspelt_field() -> None:
    """A typo in the pod spec is refused, so the schema check is not vacuous."""
    doc = copy.deepcopy(by_kind("Deployment"))
    doc["spec"]["template"]["spec"]["shareProcessNamspace"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, VERSIONS[-1], strict=True)


def test_pod_shares_its_pid_namespace_and_runs_one_replica() -> None:
    """One pod at a time on the store (Recreate), one PID namespace inside it."""
    deployment = by_kind("Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert pod_spec()["shareProcessNamespace"] is True
    assert {c["name"] for c in pod_spec()["containers"]} == {"sidecar", "agent"}


def test_sidecar_is_locked_down_with_probes_and_resources() -> None:
    """Non-root, read-only root, no capabilities; probes on /healthz and /readyz; requests."""
    security = pod_spec()["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == security["fsGroup"] == 10001
    for container in pod_spec()["containers"]:
        ctx = container["securityContext"]
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["capabilities"]["drop"] == ["ALL"]
        assert container["resources"]["requests"]
    sidecar = sidecar_container()
    assert sidecar["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert sidecar["readinessProbe"]["httpGet"]["path"] == "/readyz"
    mounts = {m["name"]: m["mountPath"] for m in sidecar["volumeMounts"]}
    assert mounts["state"] == "/state"
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    assert env["OPENCLAW_STATE_DIR"] == "/state"
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    assert (
        volumes["state"]["persistentVolumeClaim"]["claimName"]
        == by_kind("PersistentVolumeClaim")["metadata"]["name"]
    )


def test_agent_gets_the_client_token_from_the_secret_and_no_store() -> None:
    """The agent's API key is the Secret's client token; it mounts nothing of the store."""
    (agent,) = [c for c in pod_spec()["containers"] if c["name"] == "agent"]
    env = {e["name"]: e for e in agent["env"]}
    ref = env["OPENAI_API_KEY"]["valueFrom"]["secretKeyRef"]
    secret = by_kind("Secret")
    assert ref["name"] == secret["metadata"]["name"]
    assert ref["key"] in secret["stringData"]
    assert env["OPENAI_BASE_URL"]["value"].startswith("http://127.0.0.1:18801/")
    assert "volumeMounts" not in agent


def test_network_policy_denies_all_ingress_to_the_pod() -> None:
    """The NetworkPolicy selects the pod's labels, isolates Ingress and allows nothing."""
    policy = by_kind("NetworkPolicy")["spec"]
    labels = by_kind("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["policyTypes"] == ["Ingress"]
    assert not policy.get("ingress")


def test_configmap_config_passes_the_sidecar_parser() -> None:
    """The ConfigMap's TOML is a valid sidecar config whose token file is the mounted Secret."""
    text = by_kind("ConfigMap")["data"]["config.toml"]
    settings = parse_settings(tomllib.loads(text), source="configmap.yaml")
    (listener,) = settings.listeners
    assert listener.port == sidecar_container()["ports"][0]["containerPort"]
    mounts = {m["name"]: m["mountPath"] for m in sidecar_container()["volumeMounts"]}
    assert str(listener.client_token_file) == mounts["client-token"] + "/token"
