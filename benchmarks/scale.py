"""A cost curve: the prompts -> generate -> render -> judge -> pairs stages at N motions, for
several N and replica counts, run through the real pipeline on real services on loopback.

Per point (judge backend, replicas per service, N) it makes a fresh store, copies in the world
and the tiny base model built once beforehand (outside the timed region), starts the services
(`atomctl serve NAME` processes, atom.runtime.launch) and runs each stage as `atomctl <stage>`
against them, the command users run. N motions = prompts.per_task x tasks x
generate.samples_per_prompt (the pipeline's own knobs; per_task = ceil(N / (3 x samples))).

Printed per stage and point: the stage's own time (the `seconds` its outputs record holds, the
stage body without process start-up), the controller process's wall time, items/s, the
controller's peak RSS (VmHWM of the `atomctl <stage>` process, polled while it runs), each service's peak RSS while
that stage ran (VmHWM from /proc/<pid>/status, reset before each stage through
/proc/<pid>/clear_refs; the largest over a service's replicas), and the store bytes the stage
added per motion.

Then, per stage, the growth exponent b of time ~ N^b (least squares on log time vs log N) and the
peak-RSS ratio from the smallest to the largest N of every process. The check (off with
--no-check) fails, with exit code 1 and a message naming each offender, when
  - an exponent is above --max-exponent (1.1) (a stage under --min-seconds, 1 s, at the largest N
    is not judged: its time is timer ticks and jitter), or
  - a process's peak RSS at the largest N is more than --rss-tolerance (1.25) times its peak RSS
    at the smallest N (same judge and replicas; nothing is subtracted: the ratio of the raw peaks).
    The processes checked per stage: the controller, and the service the stage calls (judge for
    prompts and judge, generator, renderer, trainer for pairs), the largest over its replicas.

Last, a markdown table extrapolated to the paper's scale (47,100 judged motions, --target):
per stage t(target) = t(N_max) x (target / N_max)^b with the fitted b, and in proportion to N
(t(N_max) x target / N_max) beside it; store bytes = measured
bytes per motion x target; and the cost of a GPT-4o judge, by the judge's own estimate
(services/judge/estimate.py: OpenAI's image-token rule on the renders' real sizes, the judge's
text rule and GPT-4o list prices), per question x target. With the kinematic judge only
render.people_samples motions are rendered, so the per-question figure is the mean over those.

The VLM judge (--judges vlm) is asked through a local OpenAI-compatible server with a fixed reply
latency (tests/judge/fake_openai.py, started as a child process of this script; it counts prompt
tokens by OpenAI's rule on the images it receives), and renders every motion, as a VLM run does.

    .venv/bin/python benchmarks/scale.py                                   # 1000,5000,20000 x 1,2 replicas
    .venv/bin/python benchmarks/scale.py --sizes 200,500,1000 --replicas 1  # minutes on 2 cores
    .venv/bin/python benchmarks/scale.py --sizes 20,40 --replicas 1 --no-check   # smoke
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

STAGES = ("prompts", "generate", "render", "judge", "pairs")
SERVICES_TIMED = ("generator", "renderer", "judge", "trainer")  # the evaluator serves no stage here
# The service each stage calls: its memory is checked during that stage (an idle service's peak is
# whatever it kept from earlier work, not this stage's).
STAGE_SERVICE = {"prompts": "judge", "generate": "generator", "render": "renderer", "judge": "judge", "pairs": "trainer"}
TASKS = ("integrity", "temporal", "frequency")
PAPER_MOTIONS = 47_100
MB = 1024 * 1024


# -- pure maths (tested exactly in tests/benchmarks/test_scale_smoke.py) ------------------------------


def fit_power(ns, ys) -> tuple[float, float]:
    """Least squares of log y = a + b log n over the points; returns (b, a). Needs >= 2 distinct n
    and positive values."""
    pts = [(math.log(n), math.log(y)) for n, y in zip(ns, ys)]
    if len(pts) < 2 or len({x for x, _ in pts}) < 2:
        raise ValueError("fit_power needs at least two distinct sizes")
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    sxy = sum((x - mx) * (y - my) for x, y in pts)
    b = sxy / sxx
    return b, my - b * mx


def fit_linear(ns, ys) -> tuple[float, float]:
    """Least squares of y = a + s n; returns (s, a)."""
    if len(ns) < 2 or len(set(ns)) < 2:
        raise ValueError("fit_linear needs at least two distinct sizes")
    mx = sum(ns) / len(ns)
    my = sum(ys) / len(ys)
    s = sum((x - mx) * (y - my) for x, y in zip(ns, ys)) / sum((x - mx) ** 2 for x in ns)
    return s, my - s * mx


def extrapolate(ns, ys, target: float) -> float:
    """y at `target` from the largest measured point along the fitted power law:
    y(N_max) x (target / N_max)^b."""
    b, _ = fit_power(ns, ys)
    n_max, y_max = max(zip(ns, ys))
    return y_max * (target / n_max) ** b


def extrapolate_linear(ns, ys, target: float) -> float:
    """y at `target` in proportion to the largest measured point: y(N_max) x target / N_max."""
    n_max, y_max = max(zip(ns, ys))
    return y_max * target / n_max


def growth_ratio(ns, values) -> float:
    """value at the largest n / value at the smallest n."""
    pts = sorted(zip(ns, values))
    return pts[-1][1] / pts[0][1]


def motions_for(n: int, samples: int, tasks: int = len(TASKS)) -> tuple[int, int]:
    """(prompts per task, motions) for at least n motions: per_task = ceil(n / (tasks x samples))."""
    per_task = max(1, math.ceil(n / (tasks * samples)))
    return per_task, per_task * tasks * samples


def check_curve(series: dict, max_exponent: float, rss_tolerance: float, time_kind: str = "seconds", min_seconds: float = 0.0) -> list[str]:
    """series: {label: {"n": [..], time_kind: {stage: [..]}, "rss": {process: [..]}}} ->
    one message per offence (empty: passed). time_kind: "seconds" (stage time) or "cpu". A stage
    whose time at the largest N is under `min_seconds` is not judged (timer ticks and per-call
    jitter are all there is to fit)."""
    problems = []
    what = "services' CPU time" if time_kind == "cpu" else "time"
    for label, s in series.items():
        ns = s["n"]
        if len(set(ns)) < 2:
            continue
        for stage, ts in s[time_kind].items():
            if max(ts) < min_seconds:
                continue
            b, _ = fit_power(ns, [max(t, 1e-6) for t in ts])
            if b > max_exponent:
                problems.append(f"{label}: stage {stage} {what} grows as N^{b:.2f} (> {max_exponent})")
        for proc, rss in s["rss"].items():
            r = growth_ratio(ns, rss)
            if r > rss_tolerance:
                problems.append(f"{label}: {proc} peak RSS x{r:.2f} from N={min(ns)} to N={max(ns)} (> {rss_tolerance})")
    return problems


# -- processes ---------------------------------------------------------------------------------------


def vm_hwm_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def reset_hwm(pid: int) -> bool:
    """Reset the process's peak RSS to its current RSS (Linux: 5 > /proc/<pid>/clear_refs)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_measured(cmd: list[str], log_path: Path, env: dict) -> tuple[int, float, int, float]:
    """Run `cmd`; (exit code, wall seconds, peak RSS in kB, CPU seconds).

    The peak is the process's own VmHWM, read every 20 ms while it runs, not wait4's ru_maxrss:
    Linux carries a parent's resident size at fork into the child's ru_maxrss across exec, so
    ru_maxrss reported this script's own growth (the earlier points' results) as the controller's.
    Popen returns after the exec (its error pipe closes on exec), so every reading is the
    controller's own memory."""
    peak = [0]
    with open(log_path, "ab") as log:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                try:
                    peak[0] = max(peak[0], vm_hwm_kb(proc.pid))
                except (OSError, ValueError):  # exited (a zombie has no VmHWM)
                    return
                done.wait(0.02)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # interrupted: leave no controller behind
            proc.kill()
            proc.wait()
            raise
        finally:
            done.set()
            watcher.join()
        wall = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, wall, peak[0], usage.ru_utime + usage.ru_stime


# -- the fake OpenAI server, in a child process --------------------------------------------------------


def serve_fake_openai(latency_s: float) -> None:
    """Child mode: serve the test suite's OpenAI-compatible server with a fixed reply latency; a
    score the request's instruction allows, chosen by a hash of the request (so pairs form); prompt
    tokens counted by OpenAI's rule. Prints the base URL, serves until stdin closes."""
    import hashlib
    import re

    sys.path.insert(0, str(ROOT / "tests" / "judge"))
    from fake_openai import FakeOpenAI, score_reply  # noqa: E402

    class _Discard(list):
        """The server keeps every request for tests to inspect; a benchmark keeps none."""

        def append(self, _item) -> None:
            pass

    def reply(req: dict, _n: int):
        system = next((m.get("content") for m in req.get("messages", []) if m.get("role") == "system"), "") or ""
        if not isinstance(system, str):
            system = json.dumps(system)
        m = re.search(r"<one of ([0-9, ]+)>", system)
        allowed = [int(x) for x in m.group(1).split(",")] if m else [5]
        h = int(hashlib.sha256(json.dumps(req, sort_keys=True).encode()).hexdigest(), 16)
        return score_reply(allowed[h % len(allowed)], "scored by the benchmark server", delay_s=latency_s)

    srv = FakeOpenAI(reply, count_tokens=True)
    srv.requests, srv.headers, srv.counted = _Discard(), _Discard(), _Discard()
    with srv:
        print(srv.base_url, flush=True)
        sys.stdin.read()


class FakeOpenAIProcess:
    def __init__(self, latency_s: float, log_dir: Path):
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log = open(log_dir / "fake-openai.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve-fake-openai", "--vlm-latency", str(latency_s)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None  # both are pipes
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("http"):
            raise RuntimeError(f"the fake OpenAI server did not start (see {log_dir / 'fake-openai.log'})")
        self.base_url = line

    def close(self) -> None:
        if self.proc.poll() is None:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# -- stores ------------------------------------------------------------------------------------------


def store_bytes(store) -> int:
    from atom.store import LocalStore

    if isinstance(store, LocalStore):
        return sum(p.stat().st_size for p in store.root.rglob("*") if p.is_file())
    prefix = (store.prefix + "/") if store.prefix else ""
    return sum(o.size or 0 for o in store.client.list_objects(store.bucket, prefix=prefix, recursive=True) if not o.is_dir)


BOOTSTRAP_PREFIXES = ("datasets", "models")


def copy_bootstrap(src_root: Path, store) -> None:
    """The world and the base model, built once, into a fresh store."""
    from atom.store import LocalStore

    for prefix in BOOTSTRAP_PREFIXES:
        if isinstance(store, LocalStore):
            shutil.copytree(src_root / prefix, store.root / prefix)
        else:
            store.put_tree(prefix, src_root / prefix)


# -- one point ---------------------------------------------------------------------------------------


@dataclass
class StageResult:
    stage: str
    seconds: float  # the stage body, from its outputs record
    wall: float  # the `atomctl <stage>` process, start to exit
    items: int  # what the stage made (its outputs' `items`)
    controller_kb: int
    service_kb: dict  # service -> peak kB over its replicas during the stage
    store_added: int  # bytes the stage added to the store
    outputs: dict = field(default_factory=dict)
    cpu: float = 0.0  # CPU seconds of the controller process, start-up included
    service_cpu: float = 0.0  # CPU seconds of every service process while the controller ran


@dataclass
class Point:
    judge: str
    replicas: int
    n: int
    per_task: int
    stages: dict  # stage -> StageResult
    bytes_per_motion: float
    estimate: dict  # GPT-4o estimate per question


def stage_sets(args, judge: str, per_task: int, run: str) -> list[str]:
    sets = {
        "run": run,
        "seed": args.seed,
        "world.clips": args.world_clips,
        "model.pretrain_preset": "tiny",
        "prompts.tasks": ",".join(TASKS),
        "prompts.per_task": per_task,
        "prompts.eval_per_task": args.eval_per_task,
        "generate.samples_per_prompt": args.samples,
        "judge.backend": judge,
        "render.size": args.render_size,
        "pairs.score_filter": str(args.score_filter).lower(),
    }
    if judge == "vlm":
        sets.update({"judge.model": "gpt-4o", "judge.budget_usd": 0})  # 0: no cap (the server is local)
        from atom.settings import JudgeSettings

        if "confirm_above_usd" in JudgeSettings.model_fields:  # no spend confirmation: the server is local
            sets["judge.confirm_above_usd"] = "null"
    out = []
    for k, v in sets.items():
        out += ["--set", f"{k}={v}"]
    return out


ESTIMATE_SAMPLE = 500  # rendered motions the GPT-4o estimate reads (evenly spaced), at most


def gpt4o_estimate(store, run: str, form: str, interval: int) -> dict:
    """The judge's own estimate (services/judge/estimate.py) over the motions the render stage
    rendered (at most ESTIMATE_SAMPLE of them, evenly spaced), for GPT-4o at its list prices (the
    judge service's defaults): per question."""
    from atom.motion.events import EventLabel, LabelGroup
    from services.judge.estimate import estimate
    from services.judge.records import JudgeItem, PromptRecord
    from services.judge.server import vlm_config_from_env

    manifest = store.get_json(f"runs/{run}/manifest.json")["stages"]

    def outputs(stage):
        return store.get_json(f"stages/{stage}/{manifest[stage]['key']}/outputs.json")["outputs"]

    prompts = {}
    for d in store.get_jsonl(outputs("prompts")["train"]):
        labels = d.get("labels") or {}
        events = tuple(EventLabel(e["event"], max(1, int(e.get("count") or 1))) for e in labels.get("events", []))
        prompts[d["prompt_id"]] = PromptRecord(d["prompt_id"], d["text"], d["task"], LabelGroup(d["task"], events))
    renders = store.get_json(outputs("render")["renders"])["renders"]
    rows = [r for r in store.get_jsonl(outputs("generate")["motions"]) if r["motion"] and renders.get(r["motion"])]
    step = max(1, math.ceil(len(rows) / ESTIMATE_SAMPLE))
    items = []
    for r in rows[::step]:  # the estimate is a mean per question: an even sample of the rendered motions
        rend = renders[r["motion"]]
        images = [store.get_bytes(k) for k in rend["images"]]
        items.append(
            JudgeItem(
                f"{r['prompt_id']}:{r['motion']}", prompts[r["prompt_id"]], images=images, form=form.replace("_", "-"), interval=interval
            )
        )
    if not items:
        return {}
    est = estimate(items, vlm_config_from_env("gpt-4o"), cache=None)
    q = max(est.to_ask, 1)
    return {
        "questions": est.to_ask,
        "input_tokens": est.input_tokens / q,
        "image_tokens": est.image_tokens / q,
        "text_tokens": est.text_tokens / q,
        "output_tokens_bound": est.output_tokens_bound,
        "sync_usd_bound": est.sync_usd_bound / q,
        "batch_usd_bound": est.batch_usd_bound / q,
        "image_sizes": est.image_sizes,
    }


def run_point(args, judge: str, replicas: int, n: int, boot_root: Path, work: Path, s3_endpoint: str | None, vlm_url: str | None) -> Point:
    from atom.runtime.launch import LocalServices
    from atom.store import LocalStore, open_store

    name = f"{judge}-r{replicas}-n{n}"
    pdir = work / "points" / name
    pdir.mkdir(parents=True, exist_ok=True)
    if s3_endpoint:
        store_url = f"http://{s3_endpoint}/{name.replace('_', '-')}"
    else:
        store_url = str(pdir / "store")
    store = open_store(store_url)
    store.ping()
    copy_bootstrap(boot_root, store)
    per_task, motions = motions_for(n, args.samples)
    run_name = "scale"
    env = dict(os.environ)
    svc_env = {}
    if judge == "vlm":
        svc_env = {"ATOM_JUDGE_BASE_URL": vlm_url, "ATOM_JUDGE_API_KEY": "benchmark"}
    before = store_bytes(store)
    results: dict[str, StageResult] = {}
    log_dir = pdir / "logs"
    with (
        LocalServices(store_url, list(SERVICES_TIMED), replicas=replicas, log_dir=log_dir, log_level="warning", extra_env=svc_env) as group,
        LocalServices(store_url, ["evaluator"], replicas=1, log_dir=log_dir, log_level="warning") as ev,
    ):
        group.wait_ready(300)
        ev.wait_ready(300)
        endpoints = {**group.endpoints(), **ev.endpoints()}
        base = [sys.executable, "-m", "atom.cli", "--store", store_url, "--log-level", "warning"]
        for svc, addrs in endpoints.items():
            base += ["--endpoint", f"{svc}={addrs}"]
        for stage in STAGES:
            pids = {svc: [s.proc.pid for s in group.services[svc]] for svc in SERVICES_TIMED}
            for plist in pids.values():
                for pid in plist:
                    reset_hwm(pid)
            cmd = base + [stage, "--quiet"] + stage_sets(args, judge, per_task, run_name)
            all_pids = [s.proc.pid for g in (group, ev) for grp in g.services.values() for s in grp]
            cpu0 = sum(cpu_seconds(pid) for pid in all_pids)
            rc, wall, ctl_kb, ctl_cpu = run_measured(cmd, log_dir / f"atomctl-{stage}.log", env)
            svc_cpu = sum(cpu_seconds(pid) for pid in all_pids) - cpu0
            if rc != 0:
                tail = (log_dir / f"atomctl-{stage}.log").read_text(errors="replace").splitlines()[-20:]
                raise RuntimeError(f"`atomctl {stage}` failed (exit {rc}) at {name}:\n" + "\n".join(tail))
            svc_kb = {svc: max(vm_hwm_kb(pid) for pid in plist) for svc, plist in pids.items()}
            manifest = store.get_json(f"runs/{run_name}/manifest.json")["stages"][stage]
            record = store.get_json(f"stages/{stage}/{manifest['key']}/outputs.json")
            if manifest.get("reused"):
                raise RuntimeError(f"stage {stage} was reused at {name}: the store is not fresh")
            now = store_bytes(store)
            results[stage] = StageResult(
                stage,
                float(record["seconds"]),
                wall,
                int(record["outputs"].get("items", 0)),
                ctl_kb,
                svc_kb,
                now - before,
                record["outputs"],
                ctl_cpu,
                svc_cpu,
            )
            before = now
            print(
                f"  {name:<22} {stage:<9} {record['seconds']:8.2f} s (process {wall:6.1f} s; CPU controller {ctl_cpu:5.1f} s, "
                f"services {svc_cpu:6.1f} s)  "
                f"controller {ctl_kb / 1024:6.0f} MB  " + "  ".join(f"{s} {kb / 1024:5.0f} MB" for s, kb in svc_kb.items()),
                flush=True,
            )
    total_added = sum(r.store_added for r in results.values())
    est = gpt4o_estimate(store, run_name, "full_image", 8)
    gen_items = results["generate"].items
    if gen_items != motions:
        raise RuntimeError(f"generate made {gen_items} motions, expected {motions}")
    if not args.keep:
        if isinstance(store, LocalStore):
            shutil.rmtree(store.root, ignore_errors=True)
    return Point(judge, replicas, motions, per_task, results, total_added / motions, est)


# -- bootstrap ---------------------------------------------------------------------------------------


def bootstrap(args, root: Path) -> float:
    """World and tiny base model into a local store at `root`, once."""
    from atom.pipeline import bootstrap as boot
    from atom.pipeline.config import load_config
    from atom.store import LocalStore

    cfg = load_config(overrides={"seed": args.seed, "world.clips": args.world_clips, "model.pretrain_preset": "tiny"})
    store = LocalStore(root)
    t = time.monotonic()
    dataset = boot.ensure_dataset(store, cfg, show=False)
    boot.ensure_base_model(store, cfg, dataset, show=False)
    return time.monotonic() - t


# -- reporting ---------------------------------------------------------------------------------------


def series_of(points: list[Point]) -> dict:
    out: dict = {}
    for p in sorted(points, key=lambda p: (p.judge, p.replicas, p.n)):
        s = out.setdefault(f"{p.judge} judge, {p.replicas} replica(s)", {"n": [], "seconds": {}, "cpu": {}, "rss": {}, "points": []})
        s["n"].append(p.n)
        s["points"].append(p)
        for stage, r in p.stages.items():
            s["seconds"].setdefault(stage, []).append(r.seconds)
            s["cpu"].setdefault(stage, []).append(r.service_cpu)
            s["rss"].setdefault(f"controller ({stage})", []).append(r.controller_kb)
            svc = STAGE_SERVICE[stage]
            s["rss"].setdefault(f"{svc} ({stage})", []).append(r.service_kb[svc])
    return out


def print_tables(series: dict) -> None:
    for label, s in series.items():
        print(f"\n### {label}\n")
        print(
            "| stage | N | stage s | process s | controller CPU s | services CPU s | items | items/s | controller MB | "
            + " | ".join(f"{svc} MB" for svc in SERVICES_TIMED)
            + " | store B/motion |"
        )
        print("|---|---|---|---|---|---|---|---|---|" + "---|" * len(SERVICES_TIMED) + "---|")
        for stage in STAGES:
            for p in s["points"]:
                r = p.stages[stage]
                rate = r.items / r.seconds if r.seconds > 0 else float("nan")
                print(
                    f"| {stage} | {p.n} | {r.seconds:.2f} | {r.wall:.1f} | {r.cpu:.1f} | {r.service_cpu:.1f} | {r.items} | {rate:,.1f} | "
                    f"{r.controller_kb / 1024:.0f} | "
                    + " | ".join(f"{r.service_kb[svc] / 1024:.0f}" for svc in SERVICES_TIMED)
                    + f" | {r.store_added / p.n:,.0f} |"
                )
        print("\n| N | store bytes per motion (all stages) |\n|---|---|")
        for p in s["points"]:
            print(f"| {p.n} | {p.bytes_per_motion:,.0f} |")


def print_exponents(series: dict, min_seconds: float) -> None:
    print(
        "\nGrowth exponents b (stage time ~ N^b, least squares on log-log) and peak-RSS ratios, smallest to "
        f"largest N; (short): under {min_seconds:g} s at the largest N, not checked and extrapolated in proportion "
        "to N only:"
    )
    for label, s in series.items():
        if len(set(s["n"])) < 2:
            print(f"  {label}: one size only, no fit")
            continue
        for kind, what in (("seconds", "stage time"), ("cpu", "the services' CPU time")):
            exps = ", ".join(
                f"{st} {fit_power(s['n'], [max(t, 1e-6) for t in ts])[0]:.2f}" + (" (short)" if max(ts) < min_seconds else "")
                for st, ts in s[kind].items()
            )
            print(f"  {label}: exponents of {what}: {exps}")
        worst = sorted(((growth_ratio(s["n"], v), k) for k, v in s["rss"].items()), reverse=True)[:5]
        print("    largest peak-RSS ratios: " + ", ".join(f"{k} x{r:.2f}" for r, k in worst))
        slopes = sorted(((fit_linear(s["n"], v)[0] * 1000 / 1024, k) for k, v in s["rss"].items()), reverse=True)[:5]
        print("    steepest peak-RSS slopes (linear least squares): " + ", ".join(f"{k} {m:+.2f} MB per 1,000 motions" for m, k in slopes))


def print_paper_table(series: dict, target: int, min_seconds: float) -> None:
    print(f"\n## Extrapolated to {target:,} judged motions\n")
    print(
        "Time along the fit: t(N_max) x (target / N_max)^b with each stage's fitted b; linear: t(N_max) x target / "
        "N_max (a fit below 1 comes from fixed costs amortised over the measured range and understates a "
        "per-motion cost; a stage whose work does not grow, such as render with the kinematic judge, is "
        "overstated by the linear one); store bytes = measured bytes per "
        "motion at N_max x target; GPT-4o judge cost = the judge's estimate per question (services/judge/"
        "estimate.py: OpenAI's image-token rule on the real renders, text upper bound, output at the "
        "max_completion_tokens bound, GPT-4o list prices) x target.\n"
    )
    for label, s in series.items():
        if len(set(s["n"])) < 2:
            continue
        pts = s["points"]
        last = pts[-1]
        print(f"### {label} (fitted on N = {', '.join(str(n) for n in s['n'])})\n")
        print("| stage | b | seconds at N_max | along the fit, s | linear from N_max, s | hours (the larger) |")
        print("|---|---|---|---|---|---|")
        total_fit = total_lin = total_max = 0.0
        for stage, ts in s["seconds"].items():
            ts = [max(t, 1e-6) for t in ts]
            b, _ = fit_power(s["n"], ts)
            t_lin = extrapolate_linear(s["n"], ts, target)
            short = max(ts) < min_seconds
            t_fit = t_lin if short else extrapolate(s["n"], ts, target)
            total_fit, total_lin, total_max = total_fit + t_fit, total_lin + t_lin, total_max + max(t_fit, t_lin)
            print(
                f"| {stage} | {b:.2f}{' (short)' if short else ''} | {ts[-1]:.2f} | "
                f"{'-' if short else f'{t_fit:,.0f}'} | {t_lin:,.0f} | {max(t_fit, t_lin) / 3600:.2f} |"
            )
        print(
            f"| all five | | {sum(ts[-1] for ts in s['seconds'].values()):.2f} | {total_fit:,.0f} | {total_lin:,.0f} | "
            f"{total_max / 3600:.2f} |"
        )
        print("\n| process (stage) | peak RSS at N_max, MB | slope, MB per 1,000 motions | linear extrapolation, MB |")
        print("|---|---|---|---|")
        for proc, kb in sorted(s["rss"].items(), key=lambda kv: -fit_linear(s["n"], kv[1])[0])[:8]:
            slope, icpt = fit_linear(s["n"], kb)
            print(f"| {proc} | {kb[-1] / 1024:.0f} | {slope * 1000 / 1024:+.2f} | {max(kb[-1], icpt + slope * target) / 1024:.0f} |")
        e = last.estimate
        print(f"\n| quantity | per motion (N={last.n}) | for {target:,} motions |")
        print("|---|---|---|")
        print(f"| store bytes | {last.bytes_per_motion:,.0f} | {last.bytes_per_motion * target / 1e9:,.2f} GB |")
        if e:
            print(
                f"| GPT-4o input tokens (images exact by the rule + text upper bound) | {e['input_tokens']:,.0f} | "
                f"{e['input_tokens'] * target / 1e6:,.1f} M |"
            )
            print(f"| GPT-4o output tokens (bound) | {e['output_tokens_bound']} | {e['output_tokens_bound'] * target / 1e6:,.1f} M |")
            print(f"| GPT-4o judge, synchronous, USD (upper bound) | {e['sync_usd_bound']:.5f} | {e['sync_usd_bound'] * target:,.2f} |")
            print(f"| GPT-4o judge, Batch API, USD (upper bound) | {e['batch_usd_bound']:.5f} | {e['batch_usd_bound'] * target:,.2f} |")
            print(
                f"\nGPT-4o estimate over {e['questions']} rendered motions (image sizes {e['image_sizes']}), one vote "
                f"each, output at its {e['output_tokens_bound']}-token bound: an upper bound."
            )
        j = last.stages["judge"].outputs or {}
        if j.get("prompt_tokens"):
            print(
                f"measured through the judge service: {j['prompt_tokens'] / max(j['scored'], 1):,.0f} prompt tokens "
                f"per scored motion (counted by the local server by the same rule)"
            )
        print()


# -- main --------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,5000,20000", help="motions per point, comma-separated")
    ap.add_argument("--replicas", default="1,2", help="replicas per service, comma-separated")
    ap.add_argument("--judges", default="kinematic", help="kinematic, vlm or kinematic,vlm")
    ap.add_argument("--samples", type=int, default=8, help="generate.samples_per_prompt (the default's 8)")
    ap.add_argument("--world-clips", type=int, default=200, help="world.clips of the small world (>= 100)")
    ap.add_argument("--eval-per-task", type=int, default=10, help="prompts.eval_per_task (held-out, not generated)")
    ap.add_argument("--render-size", type=int, default=256, help="render.size (the default's 256)")
    ap.add_argument(
        "--score-filter",
        action="store_true",
        help="keep pairs.score_filter on (the default config's); off here by default, so that the tiny "
        "model's motions, which seldom pass a task, still make pairs and the pair building is measured",
    )
    ap.add_argument("--vlm-latency", type=float, default=0.05, help="the local VLM server's seconds per reply")
    ap.add_argument(
        "--store-kind",
        choices=("local", "s3"),
        default="local",
        help="local directory, or the in-repo S3 test server (atom.testing.s3server)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target", type=int, default=PAPER_MOTIONS, help="motions to extrapolate to (the paper: 47,100)")
    ap.add_argument("--max-exponent", type=float, default=1.1)
    ap.add_argument("--rss-tolerance", type=float, default=1.25)
    ap.add_argument(
        "--min-seconds",
        type=float,
        default=1.0,
        help="a stage under this many seconds at the largest N is not checked, and is extrapolated in "
        "proportion to N only: timer ticks and per-call jitter are all a fit would see",
    )
    ap.add_argument(
        "--check-time",
        choices=("wall", "cpu"),
        default="wall",
        help="the time whose exponent is checked: the stage's wall time, or the CPU seconds the services "
        "spent during the stage (steadier on a machine other work shares; the controller's CPU is "
        "left out of it because its start-up, a constant, dominates the short stages)",
    )
    ap.add_argument("--no-check", action="store_true", help="print the exponents and ratios, fail on nothing")
    ap.add_argument("--workdir", type=Path, help="where stores and logs go (default: a temporary directory)")
    ap.add_argument("--keep", action="store_true", help="keep each point's store")
    ap.add_argument("--json", type=Path, help="also write the measurements as JSON here (after every point)")
    ap.add_argument("--from-json", type=Path, help="print the tables and the check from a --json file; run nothing")
    ap.add_argument("--serve-fake-openai", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the services and the S3 server started here are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.serve_fake_openai:
        serve_fake_openai(args.vlm_latency)
        return 0

    if args.from_json:
        return report(args, points_from_json(args.from_json))
    sizes = sorted({int(x) for x in args.sizes.split(",") if x.strip()})
    replicas = sorted({int(x) for x in args.replicas.split(",") if x.strip()})
    judges = [j.strip() for j in args.judges.split(",") if j.strip()]
    if not sizes or not replicas or any(j not in ("kinematic", "vlm") for j in judges):
        ap.error("--sizes, --replicas and --judges (kinematic, vlm) need values")

    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="atom-scale-")
        work = Path(tmp.name)
    else:
        work = args.workdir.resolve()
        work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("ATOM_CACHE_DIR", str(work / "cache"))
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    boot_root = work / "bootstrap"
    print(f"bootstrap (world of {args.world_clips} clips, tiny base model; not timed) ...", flush=True)
    print(f"  done in {bootstrap(args, boot_root):.1f} s", flush=True)

    from contextlib import ExitStack

    points: list[Point] = []
    with ExitStack() as stack:
        s3 = None
        if args.store_kind == "s3":
            from atom.testing.s3server import s3_server

            s3 = stack.enter_context(s3_server(work / "s3"))
        vlm_url = None
        if "vlm" in judges:
            fake = FakeOpenAIProcess(args.vlm_latency, work / "logs")
            stack.callback(fake.close)
            vlm_url = fake.base_url
        print(
            f"points: judges {judges}, replicas {replicas}, sizes {sizes} (N rounded up to prompts x 3 tasks x "
            f"{args.samples} samples); store {args.store_kind}",
            flush=True,
        )
        for judge in judges:
            for r in replicas:
                for n in sizes:
                    points.append(run_point(args, judge, r, n, boot_root, work, s3, vlm_url))
                    if args.json:  # after every point: a long run cut short keeps what it measured
                        write_points_json(args.json, points)

    if tmp is not None:
        tmp.cleanup()
    return report(args, points)


def write_points_json(path: Path, points: list[Point]) -> None:
    rows = [
        {
            "judge": p.judge,
            "replicas": p.replicas,
            "n": p.n,
            "bytes_per_motion": p.bytes_per_motion,
            "estimate": p.estimate,
            "per_task": p.per_task,
            "stages": {k: vars(v) for k, v in p.stages.items()},
        }
        for p in points
    ]
    path.write_text(json.dumps(rows, indent=1))


def points_from_json(path: Path) -> list[Point]:
    return [
        Point(
            d["judge"],
            d["replicas"],
            d["n"],
            d.get("per_task", 0),
            {k: StageResult(**v) for k, v in d["stages"].items()},
            d["bytes_per_motion"],
            d["estimate"],
        )
        for d in json.loads(path.read_text())
    ]


def report(args, points: list[Point]) -> int:
    """Print the tables, the exponents and the extrapolation; then the check (exit code)."""
    series = series_of(points)
    print_tables(series)
    print_exponents(series, args.min_seconds)
    print_paper_table(series, args.target, args.min_seconds)
    problems = check_curve(
        series, args.max_exponent, args.rss_tolerance, "cpu" if args.check_time == "cpu" else "seconds", args.min_seconds
    )
    rule = (
        f"rule: every stage's {args.check_time}-time exponent <= {args.max_exponent} (stages under "
        f"{args.min_seconds:g} s at the largest N not judged); every process's peak RSS at the largest N <= "
        f"{args.rss_tolerance} x its peak at the smallest N (raw peaks, nothing subtracted)"
    )
    if args.no_check:
        print(f"\ncheck skipped (--no-check); {rule}; it would have found {len(problems)} problem(s)")
        for p in problems:
            print(f"  {p}")
        return 0
    if problems:
        print(f"\nSCALE CHECK FAILED ({rule}):", file=sys.stderr)
        for p in problems:
            print(f"  FAIL {p}", file=sys.stderr)
        return 1
    print(f"\nscale check passed ({rule})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
