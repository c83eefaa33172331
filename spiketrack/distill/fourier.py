"""Temporal Fourier KD as in HDETrack V2 (Wang et al., arXiv:2502.05574).

HDETrack V2 softmax-normalises the response (score) maps of consecutive search frames, takes a 2-D discrete
Fourier transform and distils the real parts of the spectra, so the student learns how the teacher's response
evolves over the clip. Here:

1. each frame's score map (sigmoid probabilities) goes back to logits and is softmax-normalised over its
   ``Hf x Wf`` cells (temperature ``distill.fourier.temperature``), a distribution per frame;
2. the ``n`` frames form a ``[n, Hf*Wf]`` signal (time x row-major cell); its 2-D DFT (``torch.fft.fft2`` over
   time and cells) mixes temporal and spatial frequencies — a DFT of each frame's map alone would carry no
   temporal relation;
3. the real parts of the student's and the teacher's spectra are compared by mean squared error.

The loss: the paper names it GWF; its definition could not be retrieved (neither the paper's text nor a HDETrack V2
release was in reach). HDETrack's released code (v1, Event-AHU/EventVOT_Benchmark) distils responses with the
OSTrack Gaussian-weighted focal loss against the teacher's map, which needs targets in [0, 1] with peaks of 1 and
is minimised by a zero prediction wherever the target is below 1 — not by the teacher's values — so it does not
apply to real parts in [-n, n]. Mean squared error is used instead: zero exactly when the real spectra agree,
smooth, and the same regression as the feature KD. This is the default mode (``distill.fourier.mode:
hdetrack_v2``): a rotation of the frames in time multiplies the temporal frequency k by ``exp(-2 pi i k r / n)``,
which changes the real parts, so the loss sees frame order. The earlier variant (amplitude of an ``rfft`` along
time with L1, :func:`spiketrack.distill.losses.fourier_kd`, ``mode: amplitude``) does not: amplitudes are unchanged
by that rotation (time-rolled maps give a loss of ~1e-8).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _logit(p: torch.Tensor) -> torch.Tensor:
    p = p.float().clamp(1e-4, 1 - 1e-4)
    return torch.log(p) - torch.log1p(-p)


def softmax_maps(scores: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Score maps ``[B, n, Hf, Wf]`` (probabilities) -> per-frame spatial softmax of their logits ``[B, n, Hf*Wf]``."""
    return F.softmax(_logit(scores).flatten(2) / temperature, dim=2)


def real_spectrum(scores: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Real part of the 2-D DFT over (time, cell) of softmax-normalised maps: ``[B, n, Hf, Wf]`` -> ``[B, n, Hf*Wf]``."""
    return torch.fft.fft2(softmax_maps(scores, temperature), dim=(1, 2)).real


def fourier_kd_v2(student_scores: torch.Tensor, teacher_scores: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """MSE between the real spectra (:func:`real_spectrum`) of student and teacher score maps ``[B, n, Hf, Wf]``."""
    return F.mse_loss(real_spectrum(student_scores, temperature), real_spectrum(teacher_scores, temperature))


__all__ = ["fourier_kd_v2", "real_spectrum", "softmax_maps"]
