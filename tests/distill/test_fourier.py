"""HDETrack V2 temporal Fourier KD: hand-computed spectra and losses."""

from __future__ import annotations

import math

import pytest
import torch

from spiketrack.distill.fourier import fourier_kd_v2, real_spectrum, softmax_maps


def test_constant_maps_have_only_a_dc_term() -> None:
    # constant maps -> uniform softmax 1/(Hf*Wf) per cell -> 2-D DFT over (n, cells): DC = n, the rest 0
    spec = real_spectrum(torch.full((2, 3, 4, 4), 0.3))
    assert spec.shape == (2, 3, 16)
    assert spec[:, 0, 0].tolist() == pytest.approx([3.0, 3.0], rel=1e-6)
    rest = spec.clone()
    rest[:, 0, 0] = 0
    assert rest.abs().max().item() < 1e-6


def test_identical_maps_give_zero_loss_and_gain_is_not_ignored() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 4, 4, generator=g) * 0.9 + 0.05
    assert fourier_kd_v2(a, a.clone()).item() == 0.0
    assert fourier_kd_v2(a, torch.rand(2, 3, 4, 4, generator=g) * 0.9 + 0.05).item() > 0.0


def test_known_shift_over_time() -> None:
    # two cells, the peak moves from cell 0 to cell 1 and back over n = 2 frames; softmax of logits (L, -L), L large
    p = 1 - 1e-4  # the clamp of the logit
    hi = torch.tensor([p, 1 - p])
    moving = torch.stack([hi, hi.flip(0)]).view(1, 2, 1, 2)
    still = torch.stack([hi, hi]).view(1, 2, 1, 2)
    q = softmax_maps(moving)[0, 0, 0].item()  # mass on the peak cell, (1 + e^{-2L})^-1
    assert q == pytest.approx(1 / (1 + math.exp(-2 * math.log(p / (1 - p)))), rel=1e-6)
    # 2-D DFT of a 2x2 signal: F[k, l] = sum_{t, c} x[t, c] (-1)^(t k + c l), d = 2 (2q - 1)
    # moving: x = [[q, 1-q], [1-q, q]] -> [[2, 0], [0, d]]; still: x = [[q, 1-q], [q, 1-q]] -> [[2, d], [0, 0]]
    d = 2 * (2 * q - 1)
    assert torch.allclose(real_spectrum(moving)[0], torch.tensor([[2.0, 0.0], [0.0, d]]), atol=1e-6)
    assert torch.allclose(real_spectrum(still)[0], torch.tensor([[2.0, d], [0.0, 0.0]]), atol=1e-6)
    # MSE over the 4 coefficients: two differ by d
    assert fourier_kd_v2(moving, still).item() == pytest.approx(2 * d * d / 4, rel=1e-5)
