"""The training losses on hand-made log-probabilities."""

from __future__ import annotations

import math

import torch

from rolegen.losses import dpo_loss


def test_dpo_loss_is_log2_at_the_reference_and_falls_with_the_margin():
    zero = torch.zeros(3)
    loss, margin = dpo_loss(zero, zero, zero, zero, beta=0.1)
    assert math.isclose(float(loss), math.log(2), rel_tol=1e-6)
    better, _ = dpo_loss(torch.tensor([-1.0]), torch.tensor([-9.0]), zero[:1], zero[:1], beta=0.1)
    assert float(better) < math.log(2)
