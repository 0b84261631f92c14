"""`atomctl judge estimate` and `atomctl judge calibrate`: the controller's side. The judge service
does the work (Estimate, CalibrationCases, Calibrate); the controller gathers the items the way
the judge stage does, renders through the renderer service and carries local files into the store.

Calibration renders here, not in the judge service: the controller is the only orchestrator (no
service calls another, so each can be deployed, scaled and network-fenced on its own), and the
renders are the renderer's cached artifacts that any later call reuses.
"""

from __future__ import annotations

import dataclasses
import json
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from atom.cli.context import Ctx
from atom.motion.record import MotionRecord, validate_joints
from atom.pipeline import stages
from atom.pipeline.config import PipelineConfig
from atom.pipeline.context import RunContext
from atom.pipeline.manifest import Manifest
from atom.pipeline.runner import upstream_outputs, service_clients
from atom.store import ArtifactNotFound, ArtifactStore, open_store
from atom.v1 import common_pb2, judge_pb2


def _context(cfg: PipelineConfig, cli: Ctx, names: list[str], stack: ExitStack, show_progress: bool = False):
    store = open_store(cli.store_url)
    store.ping()
    manifest = Manifest(store, cfg.run)  # read, never written: these commands leave the run as it is
    try:
        manifest.data = store.get_json(manifest.key)
    except ArtifactNotFound:
        manifest.data = {"stages": {}}
    return RunContext(
        cfg=cfg, store=store, clients=service_clients(stack, cli, names=names), manifest=manifest, show_progress=show_progress
    )


def estimate_run(cfg: PipelineConfig, cli: Ctx) -> tuple[judge_pb2.JudgeEstimate | None, bool]:
    """The judge stage's estimate for this config (None: no motions to judge), and whether the
    stage has finished already."""
    with ExitStack() as stack:
        ctx = _context(cfg, cli, ["judge"], stack)
        up = upstream_outputs(ctx.store, cfg, ctx.manifest, "judge")  # the motions and renders it would judge
        _, items = stages.judge_stage_items(ctx, up)
        return stages.estimate_judging(ctx, list(items.values())), stages.finished(ctx, "judge", up)


def _with_view(cfg: PipelineConfig, form: str, interval: int) -> PipelineConfig:
    """The config with another injection form and interval (renders and the judge's view of them)."""
    return cfg.model_copy(update={"render": cfg.render.model_copy(update={"form": form, "interval": interval})})


def calibrate_judge(
    cfg: PipelineConfig, cli: Ctx, n: int, settings: list[tuple[str, int]], human: Path | None = None, show_progress: bool = True
) -> judge_pb2.CalibrateResponse:
    """Known-score motions from the judge service, rendered for each (form, interval) setting (VLM
    only), an estimate and the judge.confirm_above_usd question as before the judge stage, then the
    judge service's Calibrate."""
    vlm = cfg.judge.backend == "vlm"
    with ExitStack() as stack:
        ctx = _context(cfg, cli, ["judge", "renderer"] if vlm else ["judge"], stack, show_progress)
        judge = ctx.clients["judge"]
        labels = upload_human_labels(ctx.store, human) if human else ""
        cases = list(
            judge.call(
                "CalibrationCases",
                judge_pb2.CalibrationCasesRequest(tasks=cfg.prompts.tasks, n=n, seed=cfg.seed, human_labels=labels),
                timeout=600,
            ).cases
        )
        est = None
        for form, interval in settings:
            view = dataclasses.replace(ctx, cfg=_with_view(cfg, form, interval))
            renders = stages.render_motions(view, [c.motion.key for c in cases], label=f"{form}/{interval}")
            for c in cases:
                c.renders.add(form=form, interval=interval, images=[common_pb2.ArtifactRef(key=k) for k in renders[c.motion.key]["images"]])
            est = stages.estimate_judging(
                view,
                [judge_pb2.ScoreItem(item_id=c.item_id, prompt=c.prompt, motion=c.motion, images=c.renders[-1].images) for c in cases],
                est,
            )
        if vlm:
            stages.confirm_judge_spend(ctx, est, what="the calibration")
        return judge.call(
            "Calibrate",
            judge_pb2.CalibrateRequest(
                cases=cases,
                settings=[judge_pb2.CalibrationSetting(form=f, interval=k) for f, k in settings],
                judge=stages.judge_config(ctx),
            ),
            timeout=3600,
        )


def upload_human_labels(store: ArtifactStore, path: Path) -> str:
    """Put a human-label JSONL file and the local motion files it names into the store (the judge
    service reads no local paths); returns the stored file's key. Lines are kept one for one, so
    the judge service's complaints name the file's own line numbers; a line that is not JSON is
    kept as it is, for the service to report with the others."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text (byte {exc.start})") from None
    lines = []
    for n, raw in enumerate(text.splitlines(), 1):
        try:
            obj = json.loads(raw)
        except ValueError:
            lines.append(raw)
            continue
        if isinstance(obj, dict) and isinstance(obj.get("motion"), str) and obj["motion"].strip():
            local = path.parent / obj["motion"].strip()  # an absolute path stays itself
            if local.is_file():
                obj["motion"] = _upload_motion(store, local, f"{path}: line {n}")
        lines.append(json.dumps(obj))
    return store.put_content_addressed("judge/calibration/labels", "\n".join(lines).encode() + b"\n", ".jsonl").key


def _upload_motion(store: ArtifactStore, path: Path, where: str) -> str:
    """A .npy of joints (T, 22, 3) or a MotionRecord .npz, stored as a MotionRecord; its key."""
    try:
        if path.suffix == ".npy":
            record = MotionRecord(joints=validate_joints(np.load(path, allow_pickle=False), str(path)))
        else:
            record = MotionRecord.from_bytes(path.read_bytes(), str(path))
    except (ValueError, OSError) as exc:
        raise ValueError(f"{where}: motion {path}: {exc}") from None
    return store.put_content_addressed("motions", record.to_bytes(), ".npz", "application/x-npz").key
