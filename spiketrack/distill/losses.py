"""Distillation loss functions: similarity, feature, response and temporal Fourier KD (one function each).

The teacher is frozen, in eval mode and run under ``torch.no_grad`` by the trainer; these functions only
compare outputs. Which of them run, with which options and weights, is decided by the term classes of
:mod:`spiketrack.distill.terms` (one per ``distill.<term>`` config section).

- **Similarity KD** (relations between search tokens, after similarity-preserving KD, Tung & Mori,
  ICCV 2019): for each chosen layer, the ``[N, N]`` cosine-similarity matrix of the search tokens (or the
  search->search attention with ``source: attentions``) of teacher and student, both resampled to the common
  token grid (:mod:`spiketrack.distill.align`), compared by mean squared error or, as HDETrack, by the mean
  Euclidean distance between matching rows (``distance: row_l2``).
- **Feature KD** (FitNets-style hints, Romero et al., ICLR 2015): student search tokens projected to the
  teacher's width by a learned linear map, pooled to the common grid, regressed (MSE) onto the teacher's
  layer-normalised tokens; without a projection (HDETrack) both sides are layer-normalised.
- **Response KD** (Hinton et al., 2015): the score maps as spatial distributions,
  ``softmax(logit / tau)`` over the ``Hf x Wf`` cells, ``KL(teacher || student) * tau^2``; or HDETrack's
  focal loss of the student's map / tau against the teacher's map / tau (:func:`response_focal_kd`).
- **Temporal Fourier KD**: the n search frames' score maps, each normalised to sum to 1, form a signal
  over time per cell; its FFT amplitude spectrum over the n frames (``rfft`` along time) of the student is
  regressed (L1) onto the teacher's (:func:`fourier_kd`, ``mode: amplitude``; an amplitude spectrum does not
  change when the frames are rotated in time, so this mode cannot see frame order); ``mode: hdetrack_v2``
  (the default) distils the real parts of a 2-D DFT of the softmax-normalised maps instead (HDETrack V2,
  :mod:`spiketrack.distill.fourier`), which does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from spiketrack.distill.align import (
    FeatureAlign,
    cosine_similarity_matrix,
    grid_size,
    pool_similarity,
    pool_tokens,
)
from spiketrack.distill.ot import ot_feature_kd
from spiketrack.models.heads import focal_loss

# HDETrack compares attention rows with torch.nn.PairwiseDistance(p=2), whose default eps is added to the difference
ROW_L2_EPS = 1e-6


def _logit(p: torch.Tensor) -> torch.Tensor:
    p = p.float().clamp(1e-4, 1 - 1e-4)
    return torch.log(p) - torch.log1p(-p)


def _row_normalise(a: torch.Tensor) -> torch.Tensor:
    a = a.clamp_min(0)
    return a / a.sum(dim=-1, keepdim=True).clamp_min(1e-8)


def _attention_rows(s: torch.Tensor, t: torch.Tensor, per_head: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-token maps ``[B, heads, N, N]`` of both models -> row-normalised maps on the common grid.

    ``per_head`` (equal head counts): ``[B, heads, g^2, g^2]``, each head's rows normalised; otherwise the maps are
    averaged over heads first, ``[B, g^2, g^2]``. Keys are sum-pooled (rows stay distributions), queries averaged.
    """
    grid = min(int(round(s.shape[-1] ** 0.5)), int(round(t.shape[-1] ** 0.5)))
    out = []
    for a in (s, t):
        a = _row_normalise(a.float()) if per_head else _row_normalise(a.float().mean(dim=1))
        flat = a.flatten(0, 1) if per_head else a
        pooled = pool_similarity(flat, grid, "sum")
        out.append(pooled.view(*a.shape[:2], *pooled.shape[-2:]) if per_head else pooled)
    return out[0], out[1]


def similarity_kd(
    student: list[torch.Tensor], teacher: list[torch.Tensor], source: str = "features", distance: str = "mse"
) -> torch.Tensor:
    """Mean over layers of the distance between resampled similarity matrices.

    ``source='features'``: search tokens per layer (any layout of :func:`tokens_to_grid`);
    ``'attentions'``: token-token maps ``[B, heads, N, N]`` (teacher softmax attention, student spike
    Q K^T), row-normalised to distributions over keys, keys sum-pooled; averaged over heads (with
    ``distance='row_l2'`` and equal head counts compared head by head, as HDETrack does).
    ``distance='mse'``: mean squared error; ``'row_l2'``: mean Euclidean distance between matching rows
    (HDETrack's ``PairwiseDistance(p=2)``).
    """
    losses = []
    for s, t in zip(student, teacher, strict=True):
        if source == "attentions":
            per_head = distance == "row_l2" and s.shape[1] == t.shape[1]
            s_sim, t_sim = _attention_rows(s, t, per_head)
        else:
            grid = min(grid_size(s), grid_size(t))
            s_sim = cosine_similarity_matrix(pool_tokens(s, grid))
            t_sim = cosine_similarity_matrix(pool_tokens(t, grid))
        if distance == "row_l2":
            losses.append(F.pairwise_distance(s_sim, t_sim, p=2.0, eps=ROW_L2_EPS).mean())
        else:
            losses.append(F.mse_loss(s_sim, t_sim))
    return torch.stack(losses).mean()


def feature_kd(
    student: list[torch.Tensor],
    teacher: list[torch.Tensor],
    align: FeatureAlign | None,
    spatial_align: str = "pool",
    ot_cost: str = "both",
    ot_epsilon: float = 0.01,
    ot_iters: int = 100,
) -> torch.Tensor:
    """Mean over layers of MSE(project(student tokens), layer_norm(teacher tokens)).

    ``align=None``: no learned projection; the student's tokens are layer-normalised like the teacher's (the widths
    must agree). ``spatial_align='pool'``: both on the common grid (adaptive pooling); ``'ot'``: student tokens on
    their own grid, each regressed onto its teacher target under an entropic OT plan (:func:`ot_feature_kd`).
    """

    def project(tokens: list[torch.Tensor]) -> list[torch.Tensor]:
        if align is not None:
            return align(tokens)
        return [F.layer_norm(x.float(), x.shape[-1:]) for x in tokens]

    if spatial_align == "ot":
        projected = project([pool_tokens(s, grid_size(s)) for s in student])
        return torch.stack(
            [ot_feature_kd(p, t, ot_cost, ot_epsilon, ot_iters) for p, t in zip(projected, teacher, strict=True)]
        ).mean()
    losses = []
    grids = [min(grid_size(s), grid_size(t)) for s, t in zip(student, teacher, strict=True)]
    projected = project([pool_tokens(s, g) for s, g in zip(student, grids, strict=True)])
    for p, t, g in zip(projected, teacher, grids, strict=True):
        target = pool_tokens(t, g)
        target = F.layer_norm(target, target.shape[-1:])
        losses.append(F.mse_loss(p.float(), target))
    return torch.stack(losses).mean()


def response_kd(student_score: torch.Tensor, teacher_score: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """KL between the spatial distributions of score maps ``[B, 1, Hf, Wf]`` (probabilities), times tau^2."""
    s = _logit(student_score).flatten(1) / temperature
    t = _logit(teacher_score).flatten(1) / temperature
    return F.kl_div(F.log_softmax(s, dim=1), F.log_softmax(t, dim=1), log_target=True, reduction="batchmean") * (
        temperature**2
    )


def response_focal_kd(student_score: torch.Tensor, teacher_score: torch.Tensor, temperature: float = 2.0) -> torch.Tensor:
    """HDETrack's response distillation: CenterNet focal loss of ``student / tau`` against ``teacher / tau``.

    Score maps ``[B, 1, Hf, Wf]`` are probabilities; dividing them by tau = 2 (HDETrack's ``temp``) leaves no
    target equal to 1, so only the focal loss's negative part acts: ``-sum (1 - t/tau)^4 (s/tau)^2 log(1 - s/tau)``,
    summed over cells and samples (not averaged), as in the released code.
    """
    return focal_loss(student_score.float() / temperature, teacher_score.float() / temperature)


def temporal_spectrum(scores: torch.Tensor) -> torch.Tensor:
    """Amplitude spectrum over time of normalised score maps ``[B, n, Hf, Wf]`` -> ``[B, n//2+1, Hf, Wf]``."""
    s = scores.float()
    s = s / s.flatten(2).sum(dim=2).clamp(min=1e-8)[..., None, None]
    return torch.fft.rfft(s, dim=1).abs()


def fourier_kd(student_scores: torch.Tensor, teacher_scores: torch.Tensor) -> torch.Tensor:
    """L1 between the temporal amplitude spectra of ``[B, n, Hf, Wf]`` score maps (scaled by Hf*Wf)."""
    hw = student_scores.shape[-1] * student_scores.shape[-2]
    return F.l1_loss(temporal_spectrum(student_scores), temporal_spectrum(teacher_scores)) * hw


__all__ = [
    "ROW_L2_EPS",
    "feature_kd",
    "fourier_kd",
    "response_focal_kd",
    "response_kd",
    "similarity_kd",
    "temporal_spectrum",
]
