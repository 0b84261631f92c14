"""What the operator objects (deploy/k8s/components/ops, built as overlays/ops) mean, checked on the
rendered manifests: which pod may reach which port under the NetworkPolicies, what the budgets,
autoscalers and monitors select, and that each service reads its own MinIO user, whose policy
reaches the `atom` bucket only. Schema validation of the same objects is in test_deploy_static.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from atom.runtime.ports import SERVICES

ROOT = Path(__file__).resolve().parents[2]
OPS = ROOT / "deploy" / "k8s" / "components" / "ops"
STORE_USERS = (*SERVICES, "controller")
SCALED = {"generator", "renderer", "judge"}


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: cannot build the kustomize overlays")
    res = subprocess.run([kubectl, "kustomize", str(ROOT / "deploy/k8s/overlays/ops")], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return [d for d in yaml.safe_load_all(res.stdout) if d]


def kind(docs, name: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == name}


# ------------------------------------------------------------------ pods, as NetworkPolicy sees them


class Pod:
    def __init__(self, name: str, labels: dict, ports: dict[str, int], namespace: str = "atom"):
        self.name, self.labels, self.ports, self.namespace = name, labels, ports, namespace

    def __repr__(self):
        return self.name


def pods_of(docs) -> dict[str, Pod]:
    out = {}
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "Job"):
            tpl = d["spec"]["template"]
            ports = {p["name"]: p["containerPort"] for c in tpl["spec"]["containers"] for p in c.get("ports", []) if "name" in p}
            out[d["metadata"]["name"]] = Pod(d["metadata"]["name"], tpl["metadata"]["labels"], ports)
    return out


def selects(selector: dict, labels: dict) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        value, op = labels.get(expr["key"]), expr["operator"]
        if (
            (op == "In" and value not in expr["values"])
            or (op == "NotIn" and value in expr["values"])
            or (op == "Exists" and value is None)
            or (op == "DoesNotExist" and value is not None)
        ):
            return False
    return True


def peer_matches(peer: dict, src: Pod, policy_ns: str) -> bool:
    if "ipBlock" in peer:
        return False  # none of ours
    if "namespaceSelector" in peer:
        ns_labels = {"kubernetes.io/metadata.name": src.namespace}
        if not selects(peer["namespaceSelector"], ns_labels):
            return False
    elif src.namespace != policy_ns:
        return False
    return selects(peer.get("podSelector", {}), src.labels)


def allowed(docs, src: Pod, dst: Pod, port_name: str) -> bool:
    """NetworkPolicy ingress semantics: a pod selected by any Ingress policy is isolated, and then
    takes traffic only that some rule of a selecting policy admits (peer and port both match)."""
    number = dst.ports[port_name]
    selecting = [
        p
        for p in kind(docs, "NetworkPolicy").values()
        if selects(p["spec"]["podSelector"], dst.labels) and "Ingress" in p["spec"].get("policyTypes", [])
    ]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get("ingress", []):
            peers = rule.get("from")
            if peers is not None and not any(peer_matches(p, src, policy["metadata"]["namespace"]) for p in peers):
                continue
            ports = rule.get("ports")
            if ports is None or any(p.get("port") in (port_name, number) for p in ports):
                return True
    return False


def test_network_policies(docs):
    pods = pods_of(docs)
    ctl, minio, push, prom = pods["atom-pipeline"], pods["minio"], pods["pushgateway"], pods["prometheus"]
    remote_prometheus = Pod("kube-prometheus", {"app.kubernetes.io/name": "prometheus"}, {}, namespace="monitoring")
    stranger = Pod("some-app", {"app.kubernetes.io/name": "web"}, {}, namespace="atom")
    stranger_elsewhere = Pod("other-ns-app", {"app.kubernetes.io/name": "web"}, {}, namespace="default")
    assert "default-deny-ingress" in kind(docs, "NetworkPolicy")
    for name in SERVICES:
        svc = pods[name]
        assert allowed(docs, ctl, svc, "grpc"), f"the controller must reach {name}"
        for other in SERVICES:
            assert allowed(docs, pods[other], svc, "grpc"), f"{other} must reach {name}"
        for outsider in (stranger, stranger_elsewhere, minio, push, prom, remote_prometheus):
            assert not allowed(docs, outsider, svc, "grpc"), f"{outsider} must not reach {name}'s gRPC port"
        assert allowed(docs, prom, svc, "metrics") and allowed(docs, remote_prometheus, svc, "metrics")
        assert not allowed(docs, stranger, svc, "metrics")
    # MinIO: services, the controller and the two setup Jobs; nobody else, Prometheus included.
    for client in (*SERVICES, "atom-pipeline", "minio-create-bucket", "minio-users"):
        assert allowed(docs, pods[client], minio, "s3"), f"{client} must reach MinIO"
    for outsider in (stranger, prom, push, remote_prometheus):
        assert not allowed(docs, outsider, minio, "s3"), f"{outsider} must not reach MinIO"
    assert not allowed(docs, ctl, minio, "console")
    # The controller's metrics; the Pushgateway takes pushes from the controller alone.
    assert allowed(docs, prom, ctl, "metrics") and not allowed(docs, stranger, ctl, "metrics")
    assert allowed(docs, ctl, push, "http") and allowed(docs, prom, push, "http")
    assert not allowed(docs, pods["renderer"], push, "http") and not allowed(docs, stranger, push, "http")


def test_disruption_budgets_cover_every_service(docs):
    pods = pods_of(docs)
    pdbs = kind(docs, "PodDisruptionBudget")
    for name in SERVICES:
        covering = [p for p in pdbs.values() if selects(p["spec"]["selector"], pods[name].labels)]
        assert len(covering) == 1, f"{name}: {len(covering)} budgets"
        (pdb,) = covering
        # Never 0 unavailable: a one-replica service could then never be drained off a node.
        assert pdb["spec"].get("maxUnavailable") == 1 and "minAvailable" not in pdb["spec"]


def test_autoscalers(docs):
    hpas = kind(docs, "HorizontalPodAutoscaler")
    deployments = kind(docs, "Deployment")
    assert {h["spec"]["scaleTargetRef"]["name"] for h in hpas.values()} == SCALED
    for hpa in hpas.values():
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in deployments
        assert "replicas" not in deployments[target["name"]]["spec"], "the HPA owns the replica count"
        assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
        metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
        assert metrics["Resource"]["resource"]["name"] == "cpu"
        assert metrics["Resource"]["resource"]["target"]["type"] == "Utilization"
        assert metrics["Pods"]["pods"]["metric"]["name"] == "atom_grpc_server_in_flight"
        # Utilisation is relative to requests: every container of the target must request CPU.
        for c in deployments[target["name"]]["spec"]["template"]["spec"]["containers"]:
            assert "cpu" in c["resources"]["requests"]
    assert deployments["trainer"]["spec"]["replicas"] == 1  # not scaled: one GPU job at a time


def test_monitors_select_every_metrics_port(docs):
    services = kind(docs, "Service")
    pods = pods_of(docs)
    (svc_monitor,) = [m for m in kind(docs, "ServiceMonitor").values() if m["metadata"]["name"] == "atom-services"]
    port = svc_monitor["spec"]["endpoints"][0]["port"]
    scraped = {}
    for name, svc in services.items():
        if selects(svc_monitor["spec"]["selector"], svc["metadata"].get("labels", {})):
            if any(p["name"] == port for p in svc["spec"]["ports"]):
                scraped[name] = svc
    assert set(scraped) == set(SERVICES), "each service once, through its ClusterIP Service (not the headless one)"
    assert svc_monitor["spec"]["jobLabel"] == "app.kubernetes.io/name"
    assert all(s["metadata"]["labels"]["app.kubernetes.io/name"] == n for n, s in scraped.items())
    (pod_monitor,) = kind(docs, "PodMonitor").values()
    chosen = [p for p in pods.values() if selects(pod_monitor["spec"]["selector"], p.labels)]
    assert [p.name for p in chosen] == ["atom-pipeline"]
    assert pod_monitor["spec"]["podMetricsEndpoints"][0]["port"] in chosen[0].ports
    push = kind(docs, "ServiceMonitor")["atom-pushgateway"]
    assert push["spec"]["endpoints"][0]["honorLabels"] is True


def _env(container) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def test_each_service_uses_its_own_minio_user(docs):
    deployments, jobs = kind(docs, "Deployment"), kind(docs, "Job")
    consumers = {name: deployments[name]["spec"]["template"]["spec"]["containers"][0] for name in SERVICES}
    consumers["controller"] = next(c for c in jobs["atom-pipeline"]["spec"]["template"]["spec"]["containers"])
    for name, container in consumers.items():
        env = _env(container)
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert env[key]["valueFrom"]["secretKeyRef"] == {"name": f"atom-store-{name}", "key": key}, name
    # Root credentials: MinIO and the two setup Jobs only.
    root_users = set()
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "Job"):
            for c in d["spec"]["template"]["spec"].get("containers", []) + d["spec"]["template"]["spec"].get("initContainers", []):
                for e in c.get("env", []):
                    if e.get("valueFrom", {}).get("secretKeyRef", {}).get("name") == "atom-store-credentials":
                        root_users.add(d["metadata"]["name"])
    assert root_users == {"minio", "minio-create-bucket", "minio-users"}


def test_minio_users_job_creates_every_user_with_its_policy(docs):
    job = kind(docs, "Job")["minio-users"]
    spec = job["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    script = container["args"][0]
    assert "for svc in " + " ".join(STORE_USERS) + "; do" in script
    for step in (
        'admin user add store "$key" "$secret"',
        'admin policy create store "atom-$svc" "/policies/atom-$svc.json"',
        'admin policy attach store "atom-$svc" --user "$key"',
        "mb --ignore-existing store/atom",
    ):
        assert step in script, step
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounted = {}
    for source in volumes["users"]["projected"]["sources"]:
        for item in source["secret"]["items"]:
            mounted[item["path"]] = (source["secret"]["name"], item["key"])
    for user in STORE_USERS:
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert mounted[f"{user}/{key}"] == (f"atom-store-{user}", key)
    policies_cm = kind(docs, "ConfigMap")[volumes["policies"]["configMap"]["name"]]
    assert set(policies_cm["data"]) == {f"atom-{u}.json" for u in STORE_USERS}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["policies"] == "/policies" and mounts["users"] == "/users"
    # It may reach MinIO (test_network_policies) and holds no service account token.
    assert spec["automountServiceAccountToken"] is False and spec["restartPolicy"] == "OnFailure"


def test_bucket_policies_are_least_privilege():
    deleters = {"trainer", "controller"}  # trainer prunes checkpoints; the controller rewrites bundles
    for user in STORE_USERS:
        policy = json.loads((OPS / "minio-policies" / f"atom-{user}.json").read_text())
        assert policy["Version"] == "2012-10-17"
        actions: dict[str, set[str]] = {}
        for st in policy["Statement"]:
            assert st["Effect"] == "Allow"
            for resource in st["Resource"]:
                assert resource in ("arn:aws:s3:::atom", "arn:aws:s3:::atom/*"), f"{user}: {resource}"
                actions.setdefault(resource, set()).update(st["Action"])
        every = set().union(*actions.values())
        assert not any("*" in a for a in every), f"{user}: wildcard action"
        assert not any(a.startswith("admin:") for a in every)
        assert not every & {"s3:CreateBucket", "s3:DeleteBucket", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"}
        assert {"s3:ListBucket", "s3:GetBucketLocation"} <= actions["arn:aws:s3:::atom"]
        assert {"s3:GetObject", "s3:PutObject"} <= actions["arn:aws:s3:::atom/*"]
        assert ("s3:DeleteObject" in every) == (user in deleters), user
