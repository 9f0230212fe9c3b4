"""compose.fleet.yaml and deploy/kubernetes/fleet: valid, and shaped as docs/deploy.md says."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from sidecar.config import parse_settings

pytestmark = pytest.mark.fleet
ROOT = Path(__file__).resolve().parents[3]
MANIFESTS = sorted((ROOT / "deploy/kubernetes/fleet").glob("*.yaml"))


def docs() -> list[dict[str, Any]]:
    return [d for p in MANIFESTS for d in yaml.safe_load_all(p.read_text()) if d]


@pytest.mark.parametrize("version", ["1.29.0", "1.37.0"])
def test_fleet_manifests_are_valid_kubernetes(version: str) -> None:
    """Each document passes the strict schema of that Kubernetes version."""
    validate = pytest.importorskip("kubernetes_validate")
    for doc in docs():
        validate.validate(doc, version, strict=True)


def test_the_deployment_runs_replicas_that_share_only_redis() -> None:
    """Two or more replicas, each with an emptyDir state, the fleet config parsing."""
    (deployment,) = [d for d in docs() if d["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] >= 2
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["state"] == {"name": "state", "emptyDir": {}}
    (config,) = [d for d in docs() if d["kind"] == "ConfigMap"]
    settings = parse_settings(tomllib.loads(config["data"]["config.toml"]), source="configmap")
    assert settings.fleet is not None
    assert str(settings.fleet.url_file) == "/run/secrets/openclaw/redis-url"


def test_compose_runs_redis_and_two_sidecars_with_separate_state() -> None:
    """One Redis, two sidecars, a state volume each, one fleet config they both mount."""
    doc = yaml.safe_load((ROOT / "compose.fleet.yaml").read_text())
    services = doc["services"]
    assert set(services) == {"redis", "fleet-a", "fleet-b"}
    states = [v.split(":")[0] for s in ("fleet-a", "fleet-b") for v in services[s]["volumes"]]
    assert {"fleet-state-a", "fleet-state-b"} <= set(states)
    config = (ROOT / "deploy/compose/sidecar.fleet.toml").read_text()
    assert parse_settings(tomllib.loads(config), source="compose").fleet is not None
