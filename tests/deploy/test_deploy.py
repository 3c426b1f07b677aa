"""deploy/: every manifest parses and says what a cluster needs; no credential is written anywhere;
the CPU image's dependency set resolves from the constraints file alone."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ROOT = DEPLOY.parent


def load(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d is not None]


def containers(pod_template: dict) -> list[dict]:
    return pod_template["spec"]["containers"]


def check_resources(container: dict, where: str) -> None:
    res = container.get("resources", {})
    for part in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(res.get(part, {})), f"{where}: {part} needs cpu and memory"


def check_no_inline_env_secrets(container: dict, where: str) -> None:
    for env in container.get("env", []):
        if re.search(r"PASSWORD|SECRET|TOKEN|KEY", env["name"]):
            assert "value" not in env and "valueFrom" in env, f"{where}: {env['name']} must come from a Secret"
    assert any("secretRef" in e for e in container.get("envFrom", [])), f"{where}: credentials from Secrets"


def test_every_yaml_file_parses():
    files = sorted(p for p in DEPLOY.rglob("*.yaml"))
    assert {p.relative_to(DEPLOY).as_posix() for p in files} >= {
        "kuberay/raycluster.yaml", "kuberay/rayjob.yaml", "kuberay/secrets.example.yaml", "ray-cluster.yaml",
        "mlflow/compose.yaml"}
    for path in files:
        assert list(yaml.safe_load_all(path.read_text())), path


def test_raycluster_head_and_gpu_workers():
    (cluster,) = load("kuberay/raycluster.yaml")
    assert cluster["apiVersion"] == "ray.io/v1" and cluster["kind"] == "RayCluster"
    spec = cluster["spec"]
    head = spec["headGroupSpec"]
    assert head["serviceType"] == "ClusterIP"  # dashboard / job endpoint not exposed outside the cluster
    assert head["rayStartParams"]["num-cpus"] == "0"
    for c in containers(head["template"]):
        check_resources(c, "head")
        check_no_inline_env_secrets(c, "head")
        assert not c["image"].endswith(":latest")
    (gpu,) = spec["workerGroupSpecs"]
    assert 0 <= gpu["minReplicas"] <= gpu["replicas"] <= gpu["maxReplicas"]
    assert spec["enableInTreeAutoscaling"] is True
    for c in containers(gpu["template"]):
        check_resources(c, "gpu worker")
        check_no_inline_env_secrets(c, "gpu worker")
        assert c["resources"]["requests"]["nvidia.com/gpu"] == c["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_rayjob_runs_a_loso_and_tears_down():
    (job,) = load("kuberay/rayjob.yaml")
    assert job["kind"] == "RayJob" and job["spec"]["shutdownAfterJobFinishes"] is True
    assert job["spec"]["entrypoint"].startswith("moodops run loso --dataset deap")
    cluster = job["spec"]["rayClusterSpec"]
    assert cluster["headGroupSpec"]["serviceType"] == "ClusterIP"
    for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]:
        for c in containers(group["template"]):
            check_resources(c, "rayjob")
            check_no_inline_env_secrets(c, "rayjob")
    assert all("nvidia.com/gpu" in c["resources"]["requests"]
               for g in cluster["workerGroupSpecs"] for c in containers(g["template"]))


def test_secret_example_holds_no_values():
    for secret in load("kuberay/secrets.example.yaml"):
        assert secret["kind"] == "Secret"
        assert all(v == "" for v in secret["stringData"].values())


def test_cluster_launcher_config():
    (config,) = load("ray-cluster.yaml")
    assert config["head_node_type"] in config["available_node_types"]
    assert config["max_workers"] >= config["available_node_types"]["gpu_worker"]["max_workers"] > 0
    assert config["available_node_types"]["head"]["resources"] == {"CPU": 0}
    assert any("--dashboard-host=127.0.0.1" in c for c in config["head_start_ray_commands"])


def test_tracking_server_compose_has_postgres_s3_and_auth():
    (compose,) = load("mlflow/compose.yaml")
    services = compose["services"]
    assert {"postgres", "minio", "mlflow"} <= set(services)
    command = services["mlflow"]["command"]
    assert "--app-name basic-auth" in command
    assert "--backend-store-uri postgresql://" in command and "--artifacts-destination s3://" in command
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|KEY_ID|ACCESS_KEY", key):
                assert re.fullmatch(r"\$\{[A-Z_]+\}", str(value)), f"{name}.{key} must come from .env"
    example = (DEPLOY / "mlflow" / ".env.example").read_text()
    assert "change-me" in example


def test_no_credentials_anywhere_in_deploy():
    patterns = [r"AKIA[0-9A-Z]{16}", r"(?i)password\s*[:=]\s*['\"]?[A-Za-z0-9!#%^&*]{6,}",
                r"-----BEGIN [A-Z ]*PRIVATE KEY-----", r"(?i)token\s*[:=]\s*['\"]?[A-Za-z0-9]{16,}"]
    for path in DEPLOY.rglob("*"):
        if not path.is_file() or path.name in ("constraints.txt", ".env.example"):
            continue
        text = path.read_text()
        for pattern in patterns:
            assert not re.search(pattern, text), f"{path}: looks like an inline credential ({pattern})"


def test_dockerfiles_install_from_the_constraints():
    cpu = (DEPLOY / "docker" / "Dockerfile.cpu").read_text()
    gpu = (DEPLOY / "docker" / "Dockerfile.gpu").read_text()
    assert re.search(r"^FROM python:3\.11", cpu, re.M)
    assert re.search(r"^FROM nvidia/cuda:[\d.]+-\S*runtime", gpu, re.M)
    for text in (cpu, gpu):
        assert "-c deploy/constraints.txt" in text and '".[cluster]"' in text
        assert re.search(r"^USER ray$", text, re.M)  # not root


def test_constraints_pin_every_declared_dependency():
    import tomllib

    pins = dict(line.split("==", 1) for line in (DEPLOY / "constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    pins = {k.lower().replace("_", "-"): v for k, v in pins.items()}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + [d for group in project["optional-dependencies"].values() for d in group]
    for requirement in declared:
        name = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        assert name in pins, f"{name} is not pinned in deploy/constraints.txt"
    assert pins["torch"] == "2.13.0"


@pytest.mark.slow
def test_cpu_image_dependency_set_resolves_from_the_constraints(tmp_path):
    """What `pip install -c deploy/constraints.txt ".[cluster]"` in Dockerfile.cpu would install, resolved
    against the package index (no install): every package must be one the constraints pin, at that version."""
    report = tmp_path / "report.json"
    # --no-build-isolation: moodops's own metadata is built with the setuptools already here, not a fresh one
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
                           "--no-build-isolation", "--quiet", "--report", str(report),
                           "-c", str(DEPLOY / "constraints.txt"), f"{ROOT}[cluster]"],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 and re.search(r"(?i)(connection|network|resolve host|no matching distribution)",
                                          proc.stderr):
        pytest.skip(f"no package index reachable: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    pins = dict(line.split("==", 1) for line in (DEPLOY / "constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    pins = {k.lower().replace("_", "-"): v for k, v in pins.items()}
    installed = {i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"]
                 for i in json.loads(report.read_text())["install"]}
    assert {"moodops", "torch", "ray", "mlflow", "optuna", "psycopg2-binary", "boto3"} <= set(installed)
    for name, version in installed.items():
        if name == "moodops":
            continue
        assert name in pins, f"{name} {version} would be installed unpinned"
        assert version.split("+")[0] == pins[name], f"{name}: {version} instead of {pins[name]}"
