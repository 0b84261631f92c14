"""Static checks of the vLLM recipe (deploy/vllm/): the files parse, the judge's endpoint and model
name agree with the vLLM service's name, port and served model, a GPU is requested, the model
cache is persistent and /health is probed. No network, no container engine: docker-compose and
kubectl are used when present and skipped with the reason otherwise."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from services.judge.instructions import RESPONSE_FORMATS
from services.judge.server import MAX_IMAGES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
VLLM = DEPLOY / "vllm"
COMPOSE = VLLM / "docker-compose.vllm.yml"
K8S = VLLM / "k8s"
MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"
K8S_VERSION = "1.37.0"


def arg(args: list[str], flag: str) -> str:
    assert flag in args, f"{flag} missing from {args}"
    return str(args[args.index(flag) + 1])


def default_of(value: str) -> str:
    """'${VAR:-default}' -> 'default'; a plain value as it is."""
    m = re.fullmatch(r"\$\{\w+:-(.*)\}", str(value))
    return m.group(1) if m else str(value)


def check_endpoint(base_url: str, service: str, port: int) -> None:
    url = urlsplit(base_url)
    assert (url.scheme, url.hostname, url.port, url.path) == ("http", service, port, "/v1"), base_url


def check_server_args(args: list[str], model: str) -> int:
    """vLLM's command line: the model, its served name (what the judge asks for), the port, and
    room for the judge's largest question. Returns the port."""
    assert arg(args, "--model") == MODEL
    assert arg(args, "--served-model-name") == model
    assert arg(args, "--host") == "0.0.0.0"
    assert json.loads(arg(args, "--limit-mm-per-prompt"))["image"] >= MAX_IMAGES
    return int(arg(args, "--port"))


def check_judge_env(env: dict) -> None:
    assert env["ATOM_JUDGE_ALLOW_NO_KEY"] in ("1", "true")
    assert default_of(env["ATOM_JUDGE_RESPONSE_FORMAT"]) in RESPONSE_FORMATS
    assert float(env["ATOM_JUDGE_USD_PER_1K_INPUT"]) == 0 and float(env["ATOM_JUDGE_USD_PER_1K_OUTPUT"]) == 0


def test_every_file_parses():
    files = sorted(p for p in VLLM.rglob("*") if p.suffix in (".yml", ".yaml"))
    assert len(files) >= 5, files
    for path in files:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert docs and all(isinstance(d, dict) for d in docs), path


# ---------------------------------------------------------------- Compose


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_vllm_service(compose):
    base = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    vllm, judge = compose["services"]["vllm"], compose["services"]["judge"]
    assert "judge" in base["services"] and "vllm" not in base["services"]
    assert vllm["profiles"] == ["vllm"]
    assert default_of(vllm["image"]).startswith("vllm/vllm-openai:")
    env = judge["environment"]
    port = check_server_args(vllm["command"], env["ATOM_JUDGE_MODEL"])
    assert str(port) in vllm["expose"]
    check_endpoint(env["ATOM_JUDGE_BASE_URL"], "vllm", port)
    check_judge_env(env)
    assert judge["depends_on"]["vllm"]["condition"] == "service_healthy"
    # /health on the served port, with time for the first download
    test = " ".join(vllm["healthcheck"]["test"])
    assert f"localhost:{port}/health" in test
    assert int(vllm["healthcheck"]["start_period"].rstrip("s")) >= 600
    # one NVIDIA GPU reserved
    (dev,) = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert dev["driver"] == "nvidia" and dev["count"] == 1 and "gpu" in dev["capabilities"]
    # the Hugging Face cache is a named volume mounted where HF_HOME points
    hf_home = vllm["environment"]["HF_HOME"]
    assert any(v.split(":")[0] in compose["volumes"] and v.split(":")[1] == hf_home for v in vllm["volumes"])


def test_compose_merges_with_the_base_file():
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("docker-compose is not installed (Debian: apt-get install --no-install-recommends docker-compose)")
    out = subprocess.run(
        [exe, "-f", str(DEPLOY / "docker-compose.yml"), "-f", str(COMPOSE), "--profile", "vllm", "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    merged = yaml.safe_load(out.stdout)
    judge = merged["services"]["judge"]
    env = judge["environment"]
    check_endpoint(env["ATOM_JUDGE_BASE_URL"], "vllm", 8000)
    assert env["ATOM_JUDGE_MODEL"] == MODEL
    assert env["ATOM_JUDGE_API_KEY_FILE"] == "/run/secrets/judge_api_key"  # the base's secret stays
    assert env["ATOM_STORE_URL"]  # and the base's settings too


def test_compose_judge_env_makes_a_valid_judge_config(compose, monkeypatch):
    from services.judge.server import vlm_config_from_env

    for k, v in compose["services"]["judge"]["environment"].items():
        monkeypatch.setenv(k, default_of(v))
    cfg = vlm_config_from_env(compose["services"]["judge"]["environment"]["ATOM_JUDGE_MODEL"])
    assert cfg.base_url == "http://vllm:8000/v1" and cfg.allow_no_key and cfg.response_format == "structured_outputs"
    assert cfg.cost.cost(10_000, 1_000) == 0 and cfg.concurrency == 16


# ---------------------------------------------------------------- Kubernetes


def component_docs() -> dict[tuple[str, str], dict]:
    docs = {}
    for path in (K8S / "component").glob("*.yaml"):
        for d in yaml.safe_load_all(path.read_text()):
            if d and "metadata" in d:
                docs[(d["kind"], d["metadata"]["name"])] = d
    return docs


def check_k8s(docs: dict[tuple[str, str], dict], judge_env: dict) -> None:
    dep, svc = docs[("Deployment", "vllm")], docs[("Service", "vllm")]
    pod = dep["spec"]["template"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (c,) = pod["spec"]["containers"]
    assert c["image"].startswith("vllm/vllm-openai:")
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    port = check_server_args(c["args"], judge_env["ATOM_JUDGE_MODEL"])
    assert ports["http"] == port
    (sp,) = svc["spec"]["ports"]
    assert sp["targetPort"] in ("http", port)
    check_endpoint(judge_env["ATOM_JUDGE_BASE_URL"], svc["metadata"]["name"], sp["port"])
    check_judge_env(judge_env)
    for kind in ("requests", "limits"):
        assert int(c["resources"][kind]["nvidia.com/gpu"]) == 1
    assert any(t["key"] == "nvidia.com/gpu" for t in pod["spec"]["tolerations"])
    for probe in ("readinessProbe", "startupProbe", "livenessProbe"):
        get = c[probe]["httpGet"]
        assert get["path"] == "/health" and get["port"] in ("http", port), probe
    env = {e["name"]: e["value"] for e in c["env"]}
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    cache = next(n for n, p in mounts.items() if p == env["HF_HOME"])
    claim = volumes[cache]["persistentVolumeClaim"]["claimName"]
    assert ("PersistentVolumeClaim", claim) in docs
    assert dep["spec"]["strategy"]["type"] == "Recreate"  # a ReadWriteOnce cache cannot be shared by a surge pod


def judge_env_of(deployment: dict) -> dict:
    (c,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "judge"]
    return {e["name"]: e.get("value") for e in c["env"]}


def test_kubernetes_component_files():
    docs = component_docs()
    check_k8s(docs, judge_env_of(docs[("Deployment", "judge")]))
    kust = yaml.safe_load((K8S / "component" / "kustomization.yaml").read_text())
    assert kust["kind"] == "Component"
    listed = set(kust["resources"]) | {p["path"] for p in kust["patches"]}
    assert listed == {p.name for p in (K8S / "component").glob("*.yaml")} - {"kustomization.yaml"}


def test_kubernetes_overlay_builds_and_validates():
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: cannot build the kustomize overlay")
    res = subprocess.run([kubectl, "kustomize", str(K8S)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    built = [d for d in yaml.safe_load_all(res.stdout) if d]
    docs = {(d["kind"], d["metadata"]["name"]): d for d in built}
    assert all(d["metadata"].get("namespace") == "atom" for d in built if d["kind"] != "Namespace")
    judge = docs[("Deployment", "judge")]
    env = judge_env_of(judge)
    check_k8s(docs, env)
    # The patch adds to the judge's env; the base's key file and store settings stay.
    assert env["ATOM_JUDGE_API_KEY_FILE"] and env["ATOM_PORT"] == "50053"
    gpu = {
        n
        for (k, n), d in docs.items()
        if k == "Deployment"
        and any("nvidia.com/gpu" in c.get("resources", {}).get("limits", {}) for c in d["spec"]["template"]["spec"]["containers"])
    }
    assert "vllm" in gpu and "judge" not in gpu
    kv = pytest.importorskip("kubernetes_validate.utils", reason="kubernetes-validate is not installed")
    errors = []
    for d in built:
        try:
            kv.validate(d, K8S_VERSION, True)
        except kv.ValidationError as exc:
            errors.append(f"{d['kind']}/{d['metadata']['name']}: {exc.message}")
    assert not errors, "\n".join(errors)
