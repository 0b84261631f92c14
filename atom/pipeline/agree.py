"""`atomctl judge agree`: two judges on the same motions, through the judge service.

A judge that fails the call (a refused key, permission or quota: UNAUTHENTICATED,
PERMISSION_DENIED, RESOURCE_EXHAUSTED) raises grpc.RpcError, which atomctl turns into one line
and a non-zero exit. A judge that answers but scores none of the items (every item over budget
or unreadable, or an older judge service reporting a refused key per item) raises
JudgeGaveNoScores: an agreement over nothing would print "n=0" and hide why.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from atom.cli.context import Ctx
from atom.pipeline.context import from_dict
from atom.pipeline.manifest import Manifest
from atom.store import ArtifactNotFound, open_store
from atom.v1 import common_pb2, judge_pb2


class JudgeGaveNoScores(RuntimeError):
    """Every item a judge was asked about came back without a score; the message says why."""


def require_scores(judge: str, scores: dict, errors: list[str]) -> None:
    """Raise JudgeGaveNoScores when a judge reported errors and scored none of its items."""
    if scores and errors and all(v is None for v in scores.values()):
        first = " ".join(errors[0].split())[:500]  # one line, whatever the service sent
        raise JudgeGaveNoScores(f"judge {judge!r} gave no score for any of the {len(scores)} items; first error: {first}")


def _scores(clients, store, rows, prompts, spec: str, model: str, form: str, interval: int, budget: float) -> dict:
    if spec.startswith("human:"):
        from atom.agreement import load_scores

        return load_scores(Path(spec.split(":", 1)[1]))
    if spec not in ("kinematic", "vlm"):
        raise ValueError(f"unknown judge {spec!r}; use kinematic, vlm or human:FILE")
    images = {}
    if spec == "vlm":
        from atom.v1 import renderer_pb2

        keys = sorted({r["motion"] for r in rows})
        req = renderer_pb2.RenderRequest(
            motions=[common_pb2.ArtifactRef(key=k) for k in keys], options=renderer_pb2.RenderOptions(form=form, interval=interval)
        )
        images = {r.motion.key: list(r.images) for r in clients["renderer"].stream("Render", req, timeout=3600)}
    items = [
        judge_pb2.ScoreItem(
            item_id=f"{r['prompt_id']}:{r['motion']}",
            prompt=prompts[r["prompt_id"]],
            motion=common_pb2.ArtifactRef(key=r["motion"]),
            images=images.get(r["motion"], []),
        )
        for r in rows
    ]
    cfg = judge_pb2.JudgeConfig(backend=spec, model=model, form=form, interval=interval, budget_usd=budget)
    out, errors = {}, []
    for j in clients["judge"].stream("Score", judge_pb2.ScoreRequest(items=items, judge=cfg), timeout=3600):
        out[j.item_id] = j.score if j.ok else None
        if not j.ok:
            errors.append(j.error)
    require_scores(spec, out, errors)
    return out


def run_agreement(
    cli: Ctx,
    run: str,
    judge_a: str,
    judge_b: str,
    *,
    limit: int = 0,
    model: str = "gpt-4o",
    form: str = "full_image",
    interval: int = 8,
    budget_usd: float = 5.0,
) -> str:
    from atom.pipeline.runner import service_clients
    from atom.agreement import agreement_by_id

    store = open_store(cli.store_url)
    store.ping()
    manifest = Manifest(store, run)
    try:
        manifest.data = store.get_json(manifest.key)
        judged = manifest.data["stages"]["judge"]["outputs"]["judgements"]
        prompts_key = manifest.data["stages"]["prompts"]["outputs"]["train"]
    except (ArtifactNotFound, KeyError):
        raise ArtifactNotFound(f"runs/{run}: judged motions (run `atomctl run-pipeline --run {run}` up to the judge stage)")
    rows = [r for r in store.get_jsonl(judged) if r.get("motion")]
    if limit:
        rows = rows[:limit]
    prompts = {d["prompt_id"]: from_dict(d, common_pb2.Prompt) for d in store.get_jsonl(prompts_key)}
    with ExitStack() as stack:
        clients = service_clients(stack, cli)
        a = _scores(clients, store, rows, prompts, judge_a, model, form, interval, budget_usd)
        b = _scores(clients, store, rows, prompts, judge_b, model, form, interval, budget_usd)
    return agreement_by_id(a, b, names=(judge_a, judge_b)).render()
