"""HumanML3D metrics of the test split under MotionGPT's evaluation protocol (atom.evalplan).

Per replication, for every test item: the caption drawn for it, the real crop drawn for it, and
the model's motion generated for that caption in that replication. What MotionGPT does with them
(`mGPT/models/mgpt.py` val_t2m_forward and `mGPT/metrics/t2m.py`), this does:
- a generated motion is cut to the real crop's length; an output of at most one motion code is
  replaced by the "zero motion" (the model's mean pose for the crop's length: zeros in the
  model's normalised space, de-normalised);
- real crops and generated motions are embedded in batches of 32 consecutive items, each padded
  to the batch's longest crop with the model's mean pose, normalised with the evaluator's own
  mean/std, through the motion GRU unpacked (so the padding is part of the embedding);
- R-precision and MM-Dist pair each caption with its item's motion; FID compares the generated
  motions with the same items' real crops of this replication; Diversity draws 300 pairs;
- MultiModality: per replication, the planned items' generations (30 by default) of one caption,
  each cut to that item's crop and padded to it, 10 pairs.
An evaluator without a padded-batch path (the embedded one) embeds the cut motions on its own.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Mapping, Sequence

import numpy as np

from atom import evalplan
from atom.evalplan import EvalItem
from services.evaluator import metrics as M
from services.evaluator.records import GENERAL, ModelSample, TextMotionEvaluator, check_stop, hold_to_min_length
from services.evaluator.subsets import caption_text

MM_KIND = "mm"
ZERO_MOTION_MAX_CODES = 1  # MotionGPT: outputs of at most this many codes become the zero motion


class ProtocolInputError(ValueError):
    """The samples do not cover the plan (a replication or item without its motion)."""


def motion_for(sample: ModelSample | None, crop_len: int, pad: np.ndarray) -> np.ndarray:
    """A generated motion as MotionGPT scores it: cut to the crop's length, or the zero motion."""
    if sample is None or sample.features is None or len(sample.features) == 0 or (0 <= sample.num_tokens <= ZERO_MOTION_MAX_CODES):
        return np.repeat(pad[None, :].astype(np.float32), crop_len, axis=0)
    return sample.features[:crop_len]


def embed_batch(evaluator: TextMotionEvaluator, motions: Sequence[np.ndarray], width: int, pad: np.ndarray) -> np.ndarray:
    padded = getattr(evaluator, "embed_padded_motions", None)
    if padded is not None:
        return np.asarray(padded(motions, width, pad), np.float64)
    return np.asarray(evaluator.embed_motions([hold_to_min_length(m)[0] for m in motions]), np.float64)


def embed_items(evaluator, motions: Sequence[np.ndarray], widths: Sequence[int], pad: np.ndarray) -> np.ndarray:
    """Embeddings in MotionGPT's batches: consecutive items, padded to the batch's widest crop."""
    parts = [embed_batch(evaluator, [motions[i] for i in b], max(widths[i] for i in b), pad) for b in evalplan.batches(len(motions))]
    return np.concatenate(parts)


def _index(samples: Sequence[ModelSample], kind: str) -> dict[tuple[int, str], list[ModelSample]]:
    out: dict[tuple[int, str], list[ModelSample]] = defaultdict(list)
    for s in samples:
        if s.kind == kind:
            out[(s.replication, s.item)].append(s)
    return out


def _nan_metrics() -> dict[str, float]:
    return {k: float("nan") for k in ("mm_dist", "r1", "r2", "r3", "fid", "diversity", "mmodality")}


def _matching(out: dict, text: np.ndarray, motion: np.ndarray, rng, group: int, top_k: int) -> None:
    if len(motion) >= group:
        res = M.matching_metrics(text, motion, rng, group, top_k)
        out["mm_dist"] = res.mm_dist
        for k, v in enumerate(res.r_precision):
            out[f"r{k + 1}"] = v


def general_rounds(
    models: Mapping[str, Sequence[ModelSample]],
    items: list[EvalItem],
    real: Sequence[np.ndarray],
    evaluator: TextMotionEvaluator,
    pad: np.ndarray,
    *,
    replications: int,
    seed: int,
    mm_texts: int,
    group_size: int = 32,
    top_k: int = 3,
    diversity_times: int = 300,
    mm_pairs: int = 10,
    notes: list[str] | None = None,
    stop=None,
) -> dict[str, list[dict[str, float]]]:
    """Per model (and "real"), one metrics dict per replication. `real[i]` is item i's real
    features (un-normalised), `pad` the model's mean pose."""
    notes = notes if notes is not None else []
    if not items:
        raise ProtocolInputError("the test split has no items under MotionGPT's rules (40 <= frames < 200)")
    texts = sorted({caption_text(c, tagged=True) for it in items for c in it.captions})
    text_emb = dict(zip(texts, np.asarray(evaluator.embed_texts(texts), np.float64)))
    general = {name: _index(s, GENERAL) for name, s in models.items()}
    mm = {name: _index(s, MM_KIND) for name, s in models.items()}
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in ["real", *models]}
    div = min(diversity_times, len(items))
    if div < diversity_times:
        notes.append(f"general (motiongpt protocol): Diversity over {div} pairs ({len(items)} test items)")
    for rep in range(replications):
        check_stop(stop)
        draws = evalplan.general_draws(items, rep, seed)
        widths = [d.crop_len for d in draws]
        crops = [real[d.item][d.crop_start : d.crop_start + d.crop_len] for d in draws]
        text = np.stack([text_emb[caption_text(items[d.item].captions[d.caption], tagged=True)] for d in draws])
        gt = embed_items(evaluator, crops, widths, pad)
        out = _nan_metrics()
        rng = np.random.default_rng([seed, rep, 7, 1])
        _matching(out, text, gt, rng, group_size, top_k)
        out["diversity"] = M.diversity(gt, rng, div) if div >= 1 else float("nan")
        rounds["real"].append(out)
        for name in models:
            missing = [items[d.item].item_id for d in draws if (rep, items[d.item].item_id) not in general[name]]
            if missing:
                raise ProtocolInputError(
                    f"model {name!r}: no generated motion for replication {rep}, item "
                    f"{missing[0]} ({len(missing)} missing); generate the plan's motions first"
                )
            gen = [motion_for(general[name][(rep, items[d.item].item_id)][0], d.crop_len, pad) for d in draws]
            emb = embed_items(evaluator, gen, widths, pad)
            out = _nan_metrics()
            rng = np.random.default_rng([seed, rep, 7, 0])  # the same draws for every model
            _matching(out, text, emb, rng, group_size, top_k)
            out["fid"] = M.fid(gt, emb)
            out["diversity"] = M.diversity(emb, rng, div) if div >= 1 else float("nan")
            out["mmodality"] = _mm_round(mm[name], items, rep, seed, mm_texts, evaluator, pad, rng, mm_pairs, name, notes)
            rounds[name].append(out)
    return rounds


def _mm_round(index, items, rep, seed, mm_texts, evaluator, pad, rng, mm_pairs, name, notes) -> float:
    if mm_texts < 1 or not index:
        return float("nan")
    per_item = []
    for d in evalplan.mm_draws(items, rep, seed, mm_texts):
        gens = index.get((rep, items[d.item].item_id))
        if not gens:
            raise ProtocolInputError(f"model {name!r}: no MultiModality motions for replication {rep}, item {items[d.item].item_id}")
        cut = [motion_for(g, d.crop_len, pad) for g in gens]
        per_item.append(embed_batch(evaluator, cut, d.crop_len, pad))
    gens = min(len(e) for e in per_item)
    pairs = min(mm_pairs, gens)
    if pairs < mm_pairs:
        notes.append(f"{name} / general: MultiModality over {gens} generations per text, {pairs} pairs")
    return M.multimodality(np.stack([e[:gens] for e in per_item]), rng, pairs) if pairs >= 1 else math.nan


def real_features(dataset, items: list[EvalItem]) -> list[np.ndarray]:
    """Each item's real features (the clip's frames [start, end)), reading each clip once."""
    cache: dict[str, np.ndarray] = {}
    out = []
    for it in items:
        if it.clip_id not in cache:
            cache[it.clip_id] = dataset.load_features(it.clip_id)
        out.append(cache[it.clip_id][it.start : it.end])
    return out


__all__ = ["MM_KIND", "ProtocolInputError", "general_rounds", "motion_for", "real_features"]
