"""Every metric the dashboard, the alerts and the autoscalers read is one the code exports.

The exported names come from real services: each of the five is started in-process on loopback,
answers a call, and its /metrics page is scraped and parsed. The pipeline's own registry (what the
controller serves and pushes) and the GPU gauge (exported only where CUDA is, so here read from the
collector over a stand-in torch) are added. The names used come from the PromQL of
deploy/grafana/atom-dashboard.json, of the PrometheusRule and of the HPAs in
deploy/k8s/components/ops. promtool, when installed, also checks the rules and runs their unit
tests (tests/deploy/promtool).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import types
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from atom.runtime.ports import SERVICES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OPS = DEPLOY / "k8s" / "components" / "ops"
# Series Prometheus makes itself for every target, not the code.
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created"),
    "gauge": ("",),
    "info": ("_info",),
    "untyped": ("",),
}
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf", "nan"}


def series_names(exposition: str) -> set[str]:
    """Every series name a /metrics page can hold, whether or not a labelled metric has samples yet."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names |= {family.name + s for s in _SUFFIXES.get(family.type, ("",))}
        names |= {s.name for s in family.samples}
    return names


def promql_metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords, label
    names (inside {...} or by/on/... lists), ranges, strings or Grafana variables."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges [5m], [$__rate_interval]
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\{?\w+\}?", "", text)  # Grafana variables
    names = set()
    for m in re.finditer(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", text):
        name, call = m.group(1), m.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def test_promql_name_extraction():
    expr = (
        "histogram_quantile(0.95, sum by (le, grpc_service) (rate(grpc_server_handling_seconds_bucket"
        '{grpc_service=~"$service", le!="x"}[$__rate_interval]))) / on (job) group_left up '
        "or abs(atom_train_loss) == +Inf and sum without (judge) (atom_judge_cost_usd_total offset 5m)"
    )
    assert promql_metric_names(expr) == {"grpc_server_handling_seconds_bucket", "up", "atom_train_loss", "atom_judge_cost_usd_total"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> set[str]:
    """Scrape each real service after a call, plus the pipeline's registry and the GPU gauge."""
    from atom.runtime import telemetry
    from atom.runtime.client import connect
    from atom.runtime.registry import build_spec
    from atom.runtime.server import ServeConfig, start_service

    names: set[str] = set()
    for name in SERVICES:
        root = tmp_path_factory.mktemp(f"store-{name}")
        svc = start_service(
            build_spec(name, str(root)), ServeConfig(host="127.0.0.1", port=0, metrics_port=0, grace_s=1, health_interval_s=0)
        )
        try:
            client = connect(name, svc.address)
            assert client.info(svc.address).name == name  # a real call, so the RPC series exist
            client.close()
            body = urllib.request.urlopen(f"http://127.0.0.1:{svc.metrics_port}/metrics", timeout=10).read()
            names |= series_names(body.decode())
        finally:
            svc.stop(1)
    from atom.pipeline import metrics as pipeline_metrics

    names |= series_names(generate_latest(pipeline_metrics.PIPELINE_REGISTRY).decode())
    # The GPU gauge, exactly as a CUDA pod exports it, from the same collector over a stand-in.
    cuda = types.SimpleNamespace(device_count=lambda: 1, memory_allocated=lambda idx: 3 << 20, is_available=lambda: True)
    registry = CollectorRegistry()
    registry.register(telemetry._GpuMemoryCollector(types.SimpleNamespace(cuda=cuda)))
    names |= series_names(generate_latest(registry).decode())
    return names


def test_services_export_the_grpc_convention(exported):
    for name in (
        "grpc_server_started_total",
        "grpc_server_handled_total",
        "grpc_server_msg_received_total",
        "grpc_server_msg_sent_total",
        "grpc_server_handling_seconds_bucket",
        "atom_grpc_server_in_flight",
        "atom_train_jobs_finished_total",
        "atom_judge_budget_cap_usd",
        "atom_gpu_memory_bytes",
    ):
        assert name in exported, name
    assert not any(n.startswith("atom_grpc_requests") or n.startswith("atom_grpc_errors") for n in exported)


def _dashboard_exprs() -> list[str]:
    dash = json.loads((DEPLOY / "grafana" / "atom-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    for var in dash["templating"]["list"]:
        query = var.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        if var.get("type") == "query" and query:
            exprs.append(re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", query))
    return exprs


def _rule_docs() -> dict:
    docs = [d for d in yaml.safe_load_all((OPS / "monitoring.yaml").read_text()) if d]
    (rule,) = [d for d in docs if d["kind"] == "PrometheusRule"]
    return rule


def test_dashboard_uses_only_exported_metrics(exported):
    exprs = _dashboard_exprs()
    used = set().union(*(promql_metric_names(e) for e in exprs))
    assert len(used) >= 15, used
    missing = sorted(used - exported - SYNTHETIC)
    assert not missing, f"the dashboard reads metrics nothing exports: {missing}"


def test_alerts_use_only_exported_metrics(exported):
    rules = [r for g in _rule_docs()["spec"]["groups"] for r in g["rules"]]
    assert {r["alert"] for r in rules} >= {"AtomServiceDown", "AtomJudgeBudgetNearCap", "AtomPipelineStageFailed", "AtomTrainingLossNaN"}
    for rule in rules:
        used = promql_metric_names(rule["expr"])
        assert used, rule["alert"]
        missing = sorted(used - exported - SYNTHETIC)
        assert not missing, f"{rule['alert']} reads metrics nothing exports: {missing}"


def test_autoscalers_read_an_exported_gauge(exported):
    docs = [d for d in yaml.safe_load_all((OPS / "hpa.yaml").read_text()) if d]
    pods_metrics = {m["pods"]["metric"]["name"] for d in docs for m in d["spec"]["metrics"] if m["type"] == "Pods"}
    assert pods_metrics == {"atom_grpc_server_in_flight"}
    assert pods_metrics <= exported


@pytest.fixture()
def promtool():
    exe = shutil.which("promtool")
    if exe is None:
        pytest.skip(
            "promtool is not installed (Debian: apt-get install --no-install-recommends prometheus); "
            "the rules' metric names are still checked above"
        )
    return exe


def test_promtool_checks_and_unit_tests_the_rules(promtool, tmp_path):
    (tmp_path / "atom-rules.yml").write_text(yaml.safe_dump(_rule_docs()["spec"], sort_keys=False))
    shutil.copy(Path(__file__).parent / "promtool" / "atom-rules.test.yml", tmp_path / "atom-rules.test.yml")
    check = subprocess.run([promtool, "check", "rules", "atom-rules.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    unit = subprocess.run([promtool, "test", "rules", "atom-rules.test.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert unit.returncode == 0, unit.stdout + unit.stderr
    # Every alert has a unit test.
    tests = yaml.safe_load((tmp_path / "atom-rules.test.yml").read_text())["tests"]
    tested = {a["alertname"] for t in tests for a in t.get("alert_rule_test", [])}
    assert tested == {r["alert"] for g in _rule_docs()["spec"]["groups"] for r in g["rules"]}
