"""HumanML3D text-to-motion metrics on embeddings (Guo et al., github.com/EricGuo5513/text-to-motion;
MotionGPT's mGPT/metrics/utils.py), as pure numpy functions.

Every function takes embeddings (rows are samples) and, where the protocol draws at random, a
`numpy.random.Generator`: the caller owns the seed, so the same inputs and seed give the same
numbers.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg


class MetricInputError(ValueError):
    """Embeddings have the wrong shape or too few samples for the requested metric."""


def _matrix(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise MetricInputError(f"{what} must be a 2-D array (samples, dims), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise MetricInputError(f"{what} contains NaN or infinite values")
    return x


def euclidean_distance_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise Euclidean distances: (N, D) x (M, D) -> (N, M)."""
    a = _matrix(a, "a")
    b = _matrix(b, "b")
    if a.shape[1] != b.shape[1]:
        raise MetricInputError(f"embedding sizes differ: {a.shape[1]} vs {b.shape[1]}")
    # |a|^2 - 2ab + |b|^2 is fast but loses precision for near-identical rows; clip the tiny
    # negative round-off before the square root.
    sq = (a * a).sum(1)[:, None] - 2.0 * a @ b.T + (b * b).sum(1)[None, :]
    return np.sqrt(np.maximum(sq, 0.0))


@dataclass(frozen=True)
class MatchingResult:
    """R-precision (top 1..k) and MM-Dist over the same grouped samples."""

    r_precision: tuple[float, ...]  # r_precision[k-1] = R@k
    mm_dist: float
    num_samples: int  # samples actually used: group_size * floor(N / group_size)


def matching_metrics(
    text_emb: np.ndarray,
    motion_emb: np.ndarray,
    rng: np.random.Generator,
    group_size: int = 32,
    top_k: int = 3,
) -> MatchingResult:
    """R@1..R@top_k and MM-Dist of paired (text_i, motion_i) embeddings.

    Shuffle once, cut floor(N / group_size) groups; in each group rank the group's motions by
    distance to each text; a hit at k if the paired motion is among the k nearest. Ties are
    broken by position in the group (stable sort), so a degenerate evaluator that maps every
    motion to one point cannot score above chance.
    """
    t = _matrix(text_emb, "text embeddings")
    m = _matrix(motion_emb, "motion embeddings")
    if t.shape != m.shape:
        raise MetricInputError(f"text and motion embeddings must pair up: shapes {t.shape} vs {m.shape}")
    if group_size < 1 or top_k < 1 or top_k > group_size:
        raise MetricInputError(f"need 1 <= top_k <= group_size, got top_k={top_k}, group_size={group_size}")
    n = t.shape[0]
    groups = n // group_size
    if groups == 0:
        raise MetricInputError(
            f"R-precision needs at least group_size={group_size} samples, got {n}; evaluate more samples or pass a smaller group_size"
        )
    order = rng.permutation(n)[: groups * group_size]
    hits = np.zeros(top_k, dtype=np.int64)
    dist_sum = 0.0
    for g in range(groups):
        idx = order[g * group_size : (g + 1) * group_size]
        d = euclidean_distance_matrix(t[idx], m[idx])
        ranking = np.argsort(d, axis=1, kind="stable")
        rank_of_match = np.argmax(ranking == np.arange(group_size)[:, None], axis=1)
        for k in range(top_k):
            hits[k] += int((rank_of_match <= k).sum())
        dist_sum += float(np.trace(d))
    used = groups * group_size
    return MatchingResult(tuple(float(h) / used for h in hits), dist_sum / used, used)


def activation_statistics(emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased (N-1) covariance of embeddings."""
    x = _matrix(emb, "embeddings")
    if x.shape[0] < 2:
        raise MetricInputError(f"covariance needs at least 2 samples, got {x.shape[0]}")
    return x.mean(axis=0), np.cov(x, rowvar=False, ddof=1).reshape(x.shape[1], x.shape[1])


def _sqrtm(a: np.ndarray) -> np.ndarray:
    # Singular products are expected (fewer samples than dims); non-finite results are handled
    # by the caller, so scipy's singularity warning is noise here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        return scipy.linalg.sqrtm(a)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2)).

    If sqrtm(S1 S2) is not finite (singular product), retry with eps * I added to both
    covariances. The result's imaginary part is round-off and is dropped, unless it is large,
    which means the covariances are not valid and the number would be meaningless.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise MetricInputError(f"mismatched statistics: means {mu1.shape} / {mu2.shape}, covariances {s1.shape} / {s2.shape}")
    diff = mu1 - mu2
    covmean = _sqrtm(s1 @ s2)
    if not np.all(np.isfinite(covmean)):
        offset = np.eye(s1.shape[0]) * eps
        covmean = _sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0.0, atol=1e-3):
            worst = float(np.max(np.abs(covmean.imag)))
            raise MetricInputError(f"FID: sqrtm has a large imaginary component ({worst:.3g}); covariances invalid")
        covmean = covmean.real
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def fid(real_emb: np.ndarray, gen_emb: np.ndarray) -> float:
    """Frechet distance between the Gaussians fitted to two embedding sets."""
    mu_r, s_r = activation_statistics(real_emb)
    mu_g, s_g = activation_statistics(gen_emb)
    if mu_r.shape != mu_g.shape:
        raise MetricInputError(f"embedding sizes differ: {mu_r.size} vs {mu_g.size}")
    return frechet_distance(mu_r, s_r, mu_g, s_g)


def diversity(emb: np.ndarray, rng: np.random.Generator, num_pairs: int = 300) -> float:
    """Mean distance between two independent index sets of `num_pairs` samples, each drawn
    without replacement."""
    x = _matrix(emb, "embeddings")
    if num_pairs < 1:
        raise MetricInputError(f"num_pairs must be positive, got {num_pairs}")
    if x.shape[0] < num_pairs:
        raise MetricInputError(
            f"Diversity draws {num_pairs} samples without replacement but only {x.shape[0]} were given; "
            "evaluate more samples or pass a smaller num_pairs"
        )
    first = rng.choice(x.shape[0], num_pairs, replace=False)
    second = rng.choice(x.shape[0], num_pairs, replace=False)
    return float(np.linalg.norm(x[first] - x[second], axis=1).mean())


def multimodality(emb: np.ndarray, rng: np.random.Generator, num_pairs: int = 10) -> float:
    """MultiModality of (texts, generations, dims) embeddings: per text, two index sets of
    `num_pairs` generations drawn without replacement (the same sets for every text); mean
    distance over all texts and pairs."""
    x = np.asarray(emb, dtype=np.float64)
    if x.ndim != 3:
        raise MetricInputError(f"MultiModality needs (texts, generations, dims) embeddings, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise MetricInputError("embeddings contain NaN or infinite values")
    if num_pairs < 1 or x.shape[1] < num_pairs:
        raise MetricInputError(
            f"MultiModality draws {num_pairs} of the {x.shape[1]} generations per text without replacement; "
            "generate more motions per text or pass a smaller num_pairs"
        )
    if x.shape[0] < 1:
        raise MetricInputError("MultiModality needs at least one text")
    first = rng.choice(x.shape[1], num_pairs, replace=False)
    second = rng.choice(x.shape[1], num_pairs, replace=False)
    return float(np.linalg.norm(x[:, first] - x[:, second], axis=2).mean())
