import numpy as np
import pytest

from services.evaluator import metrics as M
from services.evaluator.stats import StatsInputError, mean_ci, paired_difference_ci


def test_distance_matrix_matches_definition():
    a = np.array([[0.0, 0.0], [3.0, 4.0]])
    b = np.array([[0.0, 0.0], [6.0, 8.0], [3.0, 0.0]])
    d = M.euclidean_distance_matrix(a, b)
    assert d.shape == (2, 3)
    np.testing.assert_allclose(d, [[0, 10, 3], [5, 5, 4]], atol=1e-12)
    with pytest.raises(M.MetricInputError, match="sizes differ"):
        M.euclidean_distance_matrix(a, np.zeros((1, 3)))


def test_fid_identical_sets_is_zero():
    x = np.random.default_rng(0).normal(size=(200, 8))
    assert abs(M.fid(x, x)) < 1e-6


def test_fid_of_mean_shift_is_squared_norm():
    x = np.random.default_rng(1).normal(size=(300, 5))
    shift = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    assert M.fid(x, x + shift) == pytest.approx(float(shift @ shift), abs=1e-6)


def test_fid_of_scaled_gaussians_matches_closed_form():
    # Two zero-mean sets whose covariances are exactly I*a^2 and I*b^2: FID = d (a - b)^2.
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(64, 4)))
    base = q * np.sqrt(63.0)  # columns orthonormal: unbiased covariance of +-q rows is I
    x = np.concatenate([base, -base])
    cov = np.cov(x, rowvar=False)
    a, b = 1.0, 3.0
    expected = np.trace(cov) * (a - b) ** 2
    assert M.fid(a * x, b * x) == pytest.approx(expected, rel=1e-6)


def test_fid_singular_covariances_are_finite():
    # Points on a line in 3-D: rank-1 covariances, sqrtm of a singular product.
    t = np.linspace(-1, 1, 50)[:, None]
    x = t * np.array([[1.0, 0.0, 0.0]])
    y = t * np.array([[0.0, 1.0, 0.0]])
    val = M.fid(x, y)
    assert np.isfinite(val)
    # Tr(S1) + Tr(S2) with no cross term (orthogonal supports).
    assert val == pytest.approx(2 * np.var(t, ddof=1), rel=1e-3)


def test_perfect_matcher_gets_full_r_precision():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(100, 16))
    res = M.matching_metrics(x, x, np.random.default_rng(0))
    assert res.r_precision == (1.0, 1.0, 1.0)
    assert res.num_samples == 96
    assert res.mm_dist == pytest.approx(0.0, abs=1e-6)


def test_r_precision_counts_by_rank():
    # 32 texts on a line, motion j at j + 0.75: text i's own motion is 0.75 away, motion i-1
    # only 0.25 away, so every text but the first ranks its match second.
    t = np.arange(32, dtype=float)[:, None]
    m = t + 0.75
    res = M.matching_metrics(t, m, np.random.default_rng(0), group_size=32)
    d = np.abs(t - m.T)
    ranks = [(d[i] < d[i, i]).sum() for i in range(32)]
    expected = [np.mean([r <= k for r in ranks]) for k in range(3)]
    assert res.r_precision == pytest.approx(tuple(expected))
    assert res.mm_dist == pytest.approx(0.75)
    assert expected[0] == pytest.approx(1 / 32)
    assert expected[1] == pytest.approx(1.0)


def test_constant_embeddings_score_only_by_tie_order():
    z = np.zeros((64, 4))
    res = M.matching_metrics(z, z, np.random.default_rng(0))
    assert res.r_precision[0] == pytest.approx(2 / 64)


def test_matching_metrics_are_seeded():
    rng = np.random.default_rng(4)
    t, m = rng.normal(size=(70, 8)), rng.normal(size=(70, 8))
    a = M.matching_metrics(t, m, np.random.default_rng(9))
    b = M.matching_metrics(t, m, np.random.default_rng(9))
    assert a == b


def test_matching_metrics_needs_a_group():
    with pytest.raises(M.MetricInputError, match="at least group_size=32"):
        M.matching_metrics(np.zeros((10, 2)), np.zeros((10, 2)), np.random.default_rng(0))


def test_diversity_on_constructed_points():
    # Half the points at 0, half at distance 2 along an axis.
    x = np.zeros((400, 3))
    x[200:, 0] = 2.0
    val = M.diversity(x, np.random.default_rng(0), num_pairs=300)
    # Every pair distance is 0 or 2.
    rng = np.random.default_rng(0)
    i = rng.choice(400, 300, replace=False)
    j = rng.choice(400, 300, replace=False)
    assert val == pytest.approx(2.0 * np.mean((i >= 200) != (j >= 200)))


def test_diversity_too_few_samples_is_a_clear_error():
    with pytest.raises(M.MetricInputError, match="only 10 were given"):
        M.diversity(np.zeros((10, 2)), np.random.default_rng(0))
    assert M.diversity(np.ones((10, 2)), np.random.default_rng(0), num_pairs=5) == 0.0


def test_multimodality():
    # Each text's generations alternate between two points 1 apart.
    emb = np.zeros((100, 30, 2))
    emb[:, 1::2, 0] = 1.0
    rng = np.random.default_rng(5)
    val = M.multimodality(emb, rng, num_pairs=10)
    rng = np.random.default_rng(5)
    i = rng.choice(30, 10, replace=False)
    j = rng.choice(30, 10, replace=False)
    assert val == pytest.approx(np.mean((i % 2) != (j % 2)))
    with pytest.raises(M.MetricInputError, match="generate more motions"):
        M.multimodality(np.zeros((3, 5, 2)), rng, num_pairs=10)


def test_mean_ci_on_known_numbers():
    ci = mean_ci([1.0, 2.0, 3.0, 4.0])
    # population std of 1..4 = sqrt(1.25)
    assert ci.mean == pytest.approx(2.5)
    assert ci.half_width == pytest.approx(1.96 * np.sqrt(1.25) / 2.0)
    assert ci.n == 4
    assert ci.format() == "2.500 ± 1.096"
    assert mean_ci([5.0] * 20).half_width == 0.0
    with pytest.raises(StatsInputError):
        mean_ci([])


def test_paired_difference_ci():
    a = [3.0, 4.0, 5.0, 6.0]
    b = [1.0, 1.0, 1.0, 1.0]
    ci = paired_difference_ci(a, b)
    assert ci.mean == pytest.approx(3.5)
    assert ci.above_zero
    assert not paired_difference_ci(b, a).above_zero
    with pytest.raises(StatsInputError, match="same length"):
        paired_difference_ci([1.0], [1.0, 2.0])


def test_fid_refuses_a_large_imaginary_part():
    # A "covariance" that is negative definite makes sqrtm(S1 S2) purely imaginary.
    with pytest.raises(M.MetricInputError, match="imaginary"):
        M.frechet_distance(np.zeros(2), -np.eye(2), np.zeros(2), np.eye(2))


def test_fid_retries_with_offset_when_sqrtm_is_not_finite(monkeypatch):
    calls = []
    real = M._sqrtm

    def flaky(a):
        calls.append(a.copy())
        return np.full_like(a, np.nan) if len(calls) == 1 else real(a)

    monkeypatch.setattr(M, "_sqrtm", flaky)
    s1, s2 = np.diag([1.0, 0.0]), np.diag([0.0, 1.0])
    val = M.frechet_distance(np.zeros(2), s1, np.zeros(2), s2)
    assert len(calls) == 2
    np.testing.assert_allclose(calls[1], (s1 + 1e-6 * np.eye(2)) @ (s2 + 1e-6 * np.eye(2)))
    assert val == pytest.approx(2.0 - 4 * np.sqrt(1e-6 * (1 + 1e-6)), abs=1e-9)
