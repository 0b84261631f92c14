"""Preference losses against numbers worked out by hand.

Shared example (beta = 0.5, two pairs):
  policy chosen   [-1.0, -2.0]   reference chosen   [-1.5, -2.0]  -> r_w = [ 0.5,  0.0]
  policy rejected [-3.0, -1.0]   reference rejected [-2.0, -1.5]  -> r_l = [-1.0,  0.5]
  h = r_w - r_l = [1.5, -0.5]
"""

import math

import pytest
import torch

from services.trainer.losses import LossInputError, chosen_nll, dpo_loss, ipo_loss, kto_loss, preference_loss

BETA = 0.5


def inputs(requires_grad=False):
    pc = torch.tensor([-1.0, -2.0], dtype=torch.float64, requires_grad=requires_grad)
    pr = torch.tensor([-3.0, -1.0], dtype=torch.float64, requires_grad=requires_grad)
    rc = torch.tensor([-1.5, -2.0], dtype=torch.float64)
    rr = torch.tensor([-2.0, -1.5], dtype=torch.float64)
    return pc, pr, rc, rr


def test_ipo_matches_hand_computed_value_and_metrics():
    # target 1/(2 beta) = 1; ((1.5 - 1)^2 + (-0.5 - 1)^2) / 2 = (0.25 + 2.25) / 2 = 1.25
    out = ipo_loss(*inputs(), beta=BETA)
    assert out.loss.item() == pytest.approx(1.25, abs=1e-12)
    m = out.metrics
    assert m["margin"] == pytest.approx(0.5)  # mean h
    assert m["reward_margin"] == pytest.approx(0.25)  # beta * mean h
    assert m["accuracy"] == 0.5  # one of two h > 0
    assert m["chosen_reward"] == pytest.approx(0.125)  # 0.5 * mean(0.5, 0)
    assert m["rejected_reward"] == pytest.approx(-0.125)  # 0.5 * mean(-1, 0.5)


def test_ipo_gradient_is_the_derivative_of_the_square():
    # dL/dpi_w = 2 (h - 1) / B = [0.5, -1.5]; dL/dpi_l is its negative; the reference gets none.
    pc, pr, rc, rr = inputs(requires_grad=True)
    ipo_loss(pc, pr, rc, rr, beta=BETA).loss.backward()
    assert pc.grad.tolist() == pytest.approx([0.5, -1.5])
    assert pr.grad.tolist() == pytest.approx([-0.5, 1.5])


def test_ipo_is_zero_at_the_target_margin_and_accuracy_counts_strictly_positive_h():
    beta = 0.1  # target margin 5
    z = torch.zeros(3, dtype=torch.float64)
    out = ipo_loss(torch.tensor([5.0, 5.0, 5.0], dtype=torch.float64), z, z, z, beta=beta)
    assert out.loss.item() == 0.0
    out = ipo_loss(z, z, z, z, beta=beta)  # policy == reference: h = 0, loss = 25
    assert out.loss.item() == 25.0 and out.metrics["accuracy"] == 0.0 and out.metrics["margin"] == 0.0


def test_dpo_matches_hand_computed_value():
    # beta h = [0.75, -0.25]; -log sigmoid(x) = log(1 + e^-x)
    # log(1 + e^-0.75) = 0.3868710, log(1 + e^0.25) = 0.8259394 -> mean 0.6064052
    out = dpo_loss(*inputs(), beta=BETA)
    expected = (math.log(1 + math.exp(-0.75)) + math.log(1 + math.exp(0.25))) / 2
    assert expected == pytest.approx(0.6064052, abs=1e-7)
    assert out.loss.item() == pytest.approx(expected, abs=1e-12)
    assert out.metrics["margin"] == pytest.approx(0.5) and out.metrics["accuracy"] == 0.5


def test_dpo_label_smoothing_matches_hand_computed_value():
    # eps = 0.1: 0.9 * log(1 + e^-z) + 0.1 * log(1 + e^z) = log(1 + e^-z) + 0.1 z
    # z = 0.75: 0.3868710 + 0.075 = 0.4618710; z = -0.25: 0.8259394 - 0.025 = 0.8009394; mean 0.6314052
    out = dpo_loss(*inputs(), beta=BETA, label_smoothing=0.1)
    assert out.loss.item() == pytest.approx(0.6314052, abs=1e-7)


def test_kto_matches_hand_computed_value_with_weights():
    # mismatched: policy [-2, -4], reference [-3, -3.5] -> mean(1.0, -0.5) = 0.25 = z0
    # desirable   1 - sigmoid(0.5 (r_w - 0.25)) at r_w = [0.5, 0]:   [0.4687906, 0.5312094]
    # undesirable 1 - sigmoid(0.5 (0.25 - r_l)) at r_l = [-1, 0.5]:  [0.3486451, 0.5312094], weight 2
    # mean of [0.4687906, 0.5312094, 0.6972903, 1.0624188] = 0.6899273
    pm = torch.tensor([-2.0, -4.0], dtype=torch.float64, requires_grad=True)
    rm = torch.tensor([-3.0, -3.5], dtype=torch.float64)
    pc, pr, rc, rr = inputs(requires_grad=True)
    out = kto_loss(pc, pr, rc, rr, pm, rm, beta=BETA, desirable_weight=1.0, undesirable_weight=2.0)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expected = ((1 - sig(0.125)) + (1 - sig(-0.125)) + 2 * (1 - sig(0.625)) + 2 * (1 - sig(-0.125))) / 4
    assert expected == pytest.approx(0.6899273, abs=1e-7)
    assert out.loss.item() == pytest.approx(expected, abs=1e-12)
    assert out.metrics["kl"] == pytest.approx(0.25)
    out.loss.backward()
    assert pm.grad is None  # the reference point is detached
    assert pc.grad is not None and pr.grad is not None


def test_kto_reference_point_is_clamped_at_zero():
    # mismatched mean log-ratio -1 -> z0 = 0: desirable 1 - sigmoid(0.5 r_w), undesirable 1 - sigmoid(-0.5 r_l)
    pm = torch.tensor([-4.0, -4.0], dtype=torch.float64)
    rm = torch.tensor([-3.0, -3.0], dtype=torch.float64)
    out = kto_loss(*inputs(), pm, rm, beta=BETA)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expected = ((1 - sig(0.25)) + (1 - sig(0.0)) + (1 - sig(0.5)) + (1 - sig(-0.25))) / 4
    assert out.metrics["kl"] == 0.0
    assert out.loss.item() == pytest.approx(expected, abs=1e-12)


def test_dispatch_and_bad_inputs():
    args = inputs()
    assert preference_loss("ipo", *args, beta=BETA).loss.item() == pytest.approx(1.25)
    assert preference_loss("dpo", *args, beta=BETA).loss.item() == pytest.approx(0.6064052, abs=1e-7)
    with pytest.raises(LossInputError, match="mismatched"):
        preference_loss("kto", *args, beta=BETA)
    with pytest.raises(LossInputError, match="unknown loss"):
        preference_loss("ppo", *args, beta=BETA)
    with pytest.raises(LossInputError, match="beta"):
        ipo_loss(*args, beta=0.0)
    with pytest.raises(LossInputError, match="same shape"):
        ipo_loss(args[0], args[1][:1], args[2], args[3])
    with pytest.raises(LossInputError, match="1-D"):
        ipo_loss(*(a.reshape(1, 2) for a in args))


def test_chosen_nll_is_the_per_token_nll_averaged_over_the_batch():
    # -(-6 / 3) = 2 and -(-2 / 4) = 0.5 -> mean 1.25; gradient -1/(B n) per example
    lp = torch.tensor([-6.0, -2.0], dtype=torch.float64, requires_grad=True)
    out = chosen_nll(lp, torch.tensor([3, 4]))
    assert out.item() == pytest.approx(1.25)
    out.backward()
    assert lp.grad.tolist() == pytest.approx([-1 / 6, -1 / 8])
    with pytest.raises(LossInputError, match="one shape"):
        chosen_nll(lp, torch.tensor([3]))
