"""HDETrack V2 temporal Fourier KD (the default mode): hand-computed spectra and losses, frame order."""

from __future__ import annotations

import math

import pytest
import torch

from spiketrack.config import DistillConfig, FourierKDConfig
from spiketrack.distill.fourier import fourier_kd_v2, real_spectrum, softmax_maps
from spiketrack.distill.terms import DistillLoss, ModelPair


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


def test_the_default_mode_sees_frame_order_where_the_amplitude_mode_cannot() -> None:
    # 3 frames of 3 cells, the peak on cell t in frame t (softmax ~ identity I); the student's clip is the same maps
    # rolled one frame in time (a cyclic permutation P). 2-D DFT: F_I[k, l] = 3 if k + l = 0 (mod 3) else 0 and
    # F_P[k, l] = 3 e^{2 pi i l / 3} there, so the real parts differ by 3 - 3 cos(2 pi / 3) = 4.5 at (1, 2) and
    # (2, 1): MSE over the 9 coefficients = 2 * 4.5^2 / 9 = 4.5.
    p = 1 - 1e-4  # the clamp of the logit: softmax mass off the peak ~ 2e-8
    maps = torch.full((1, 3, 1, 3), 1 - p)
    for t in range(3):
        maps[0, t, 0, t] = p
    rolled = maps.roll(1, dims=1)
    default = DistillConfig().fourier
    assert default.mode == "hdetrack_v2"

    def kd(settings: FourierKDConfig) -> float:
        off = {n: type(getattr(DistillConfig(), n))(enabled=False) for n in ("similarity", "feature", "response")}
        loss = DistillLoss(DistillConfig(fourier=settings, **off), ModelPair([], [], num_search=3))
        out = loss({"score_map": rolled.reshape(3, 1, 1, 3)}, {"score_map": maps.reshape(3, 1, 1, 3)})
        return out["kd_fourier"].item()

    enabled = FourierKDConfig(enabled=True)  # every other setting at its default
    assert kd(enabled) == pytest.approx(4.5, rel=1e-5)
    # the amplitude spectrum along time is the same for any rotation of the frames: no signal at all
    amplitude = kd(FourierKDConfig(enabled=True, mode="amplitude"))
    assert amplitude < 1e-6 and kd(enabled) > 1e5 * max(amplitude, 1e-12)
