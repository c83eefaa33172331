"""Hierarchical distillation losses: similarity, feature, response and temporal Fourier KD.

The teacher is frozen, in eval mode and run under ``torch.no_grad`` by the trainer; these functions only
compare outputs. Each term is switched on and weighted in ``cfg.distill`` and logged on its own
(``kd_similarity``, ``kd_feature``, ``kd_response``, ``kd_fourier``).

- **Similarity KD** (relations between search tokens, after similarity-preserving KD, Tung & Mori,
  ICCV 2019): for each chosen layer, the ``[N, N]`` cosine-similarity matrix of the search tokens (or the
  head-averaged search->search attention with ``similarity_source: attentions``) of teacher and student,
  both resampled to the common token grid (:mod:`spiketrack.distill.align`), compared by mean squared error.
- **Feature KD** (FitNets-style hints, Romero et al., ICLR 2015): student search tokens projected to the
  teacher's width by a learned linear map, pooled to the common grid, regressed (MSE) onto the teacher's
  layer-normalised tokens.
- **Response KD** (Hinton et al., 2015): the score maps as spatial distributions,
  ``softmax(logit / tau)`` over the ``Hf x Wf`` cells, ``KL(teacher || student) * tau^2``.
- **Temporal Fourier KD**: the n search frames' score maps, each normalised to sum to 1, form a signal
  over time per cell; its FFT amplitude spectrum over the n frames (``rfft`` along time) of the student is
  regressed (L1) onto the teacher's, so the student learns how the teacher's response evolves over time
  (``fourier_mode: amplitude``); ``fourier_mode: hdetrack_v2`` distils the real parts of a 2-D DFT of the
  softmax-normalised maps instead (HDETrack V2, :mod:`spiketrack.distill.fourier`).

Options (all off by default; docs/training.md, "Distillation options"): ``layer_pairing: relative_depth`` pairs
student and teacher layers by
depth fraction (:mod:`spiketrack.distill.pairing`); ``spatial_align: ot`` aligns the feature KD's tokens by an
entropic OT plan (HAD, :mod:`spiketrack.distill.ot`); ``temporal`` adds HAD's GRU temporal alignment over the
n search frames (``kd_temporal``, :mod:`spiketrack.distill.temporal`); ``correlation`` regresses the student's
template-search correlation map (the head's input with ``model.overrides.xcorr``) onto the teacher's, as the feature
KD does for tokens (``kd_correlation``): the student is taught where its template matches, not only where to box.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from spiketrack.config import DistillConfig
from spiketrack.distill.align import (
    FeatureAlign,
    cosine_similarity_matrix,
    grid_size,
    pool_similarity,
    pool_tokens,
)
from spiketrack.distill.fourier import fourier_kd_v2
from spiketrack.distill.ot import ot_feature_kd
from spiketrack.distill.pairing import teacher_layers
from spiketrack.distill.temporal import TemporalAlign, temporal_kd
from spiketrack.errors import ConfigError

# similarity_source -> (student output key, teacher output key) (model contract, spiketrack.models)
_SIMILARITY_KEYS = {"features": ("features", "features"), "attentions": ("similarity", "attentions")}


def _logit(p: torch.Tensor) -> torch.Tensor:
    p = p.float().clamp(1e-4, 1 - 1e-4)
    return torch.log(p) - torch.log1p(-p)


def _row_normalise(a: torch.Tensor) -> torch.Tensor:
    a = a.clamp_min(0)
    return a / a.sum(dim=-1, keepdim=True).clamp_min(1e-8)


def _pick(layers: list[torch.Tensor], indices: list[int], who: str) -> list[torch.Tensor]:
    n = len(layers)
    for i in indices:
        if not -n <= i < n:
            raise ConfigError(f"distill.feature_layers: layer {i} out of range for the {who} ({n} layers)")
    return [layers[i] for i in indices]


def similarity_kd(student: list[torch.Tensor], teacher: list[torch.Tensor], source: str = "features") -> torch.Tensor:
    """Mean over layers of the MSE between resampled similarity matrices.

    ``source='features'``: search tokens per layer (any layout of :func:`tokens_to_grid`);
    ``'attentions'``: token-token maps ``[B, heads, N, N]`` (teacher softmax attention, student spike
    Q K^T), averaged over heads and row-normalised to distributions over keys, keys sum-pooled.
    """
    losses = []
    for s, t in zip(student, teacher, strict=True):
        if source == "attentions":
            s_sim, t_sim = _row_normalise(s.float().mean(dim=1)), _row_normalise(t.float().mean(dim=1))
            grid = min(int(round(s_sim.shape[-1] ** 0.5)), int(round(t_sim.shape[-1] ** 0.5)))
            s_sim, t_sim = pool_similarity(s_sim, grid, "sum"), pool_similarity(t_sim, grid, "sum")
        else:
            grid = min(grid_size(s), grid_size(t))
            s_sim = cosine_similarity_matrix(pool_tokens(s, grid))
            t_sim = cosine_similarity_matrix(pool_tokens(t, grid))
        losses.append(F.mse_loss(s_sim, t_sim))
    return torch.stack(losses).mean()


def feature_kd(
    student: list[torch.Tensor],
    teacher: list[torch.Tensor],
    align: FeatureAlign,
    spatial_align: str = "pool",
    ot_cost: str = "both",
    ot_epsilon: float = 0.01,
    ot_iters: int = 100,
) -> torch.Tensor:
    """Mean over layers of MSE(project(student tokens), layer_norm(teacher tokens)).

    ``spatial_align='pool'``: both on the common grid (adaptive pooling); ``'ot'``: student tokens on their own
    grid, each regressed onto its teacher target under an entropic OT plan (:func:`ot_feature_kd`).
    """
    if spatial_align == "ot":
        projected = align([pool_tokens(s, grid_size(s)) for s in student])
        return torch.stack(
            [ot_feature_kd(p, t, ot_cost, ot_epsilon, ot_iters) for p, t in zip(projected, teacher, strict=True)]
        ).mean()
    losses = []
    grids = [min(grid_size(s), grid_size(t)) for s, t in zip(student, teacher, strict=True)]
    projected = align([pool_tokens(s, g) for s, g in zip(student, grids, strict=True)])
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


def temporal_spectrum(scores: torch.Tensor) -> torch.Tensor:
    """Amplitude spectrum over time of normalised score maps ``[B, n, Hf, Wf]`` -> ``[B, n//2+1, Hf, Wf]``."""
    s = scores.float()
    s = s / s.flatten(2).sum(dim=2).clamp(min=1e-8)[..., None, None]
    return torch.fft.rfft(s, dim=1).abs()


def fourier_kd(student_scores: torch.Tensor, teacher_scores: torch.Tensor) -> torch.Tensor:
    """L1 between the temporal amplitude spectra of ``[B, n, Hf, Wf]`` score maps (scaled by Hf*Wf)."""
    hw = student_scores.shape[-1] * student_scores.shape[-2]
    return F.l1_loss(temporal_spectrum(student_scores), temporal_spectrum(teacher_scores)) * hw


class DistillLoss(nn.Module):
    """The enabled KD terms of ``cfg.distill``, weighted; owns the feature projections (trained)."""

    def __init__(
        self,
        cfg: DistillConfig,
        student_dims: list[int],
        teacher_dims: list[int],
        num_search: int,
        *,
        teacher_layers: list[int] | None = None,
        temporal_dims: tuple[int, int] | None = None,
        temporal_teacher_layer: int | None = None,
        correlation_dims: tuple[int, int] | None = None,
    ) -> None:
        """``student_dims`` / ``teacher_dims``: widths of the feature-KD layers (when ``feature`` is on);
        ``teacher_layers``: teacher layer of each of ``cfg.feature_layers`` (default: the same indices);
        ``temporal_dims``: (student, teacher) width of the temporal-alignment layer (when ``temporal`` is on) and
        ``temporal_teacher_layer`` the teacher layer of ``cfg.temporal_layer`` (default: the same index);
        ``correlation_dims``: (student, teacher) channels of the correlation maps (when ``correlation`` is on).
        :meth:`from_feature_info` derives them from the models' ``feature_info``."""
        super().__init__()
        self.cfg = cfg
        self.num_search = num_search
        self.student_layers = list(cfg.feature_layers)
        self.teacher_layers = list(teacher_layers) if teacher_layers is not None else list(cfg.feature_layers)
        if cfg.fourier.enabled and num_search < 2:
            raise ConfigError("distill.fourier: the temporal Fourier loss needs data.num_search >= 2 (3 recommended)")
        if cfg.temporal.enabled and num_search < 2:
            raise ConfigError("distill.temporal: the temporal alignment needs data.num_search >= 2 (a clip of frames)")
        if cfg.fourier_mode not in ("amplitude", "hdetrack_v2"):
            raise ConfigError(f"distill.fourier_mode: expected 'amplitude' or 'hdetrack_v2', got {cfg.fourier_mode!r}")
        if cfg.spatial_align not in ("pool", "ot"):
            raise ConfigError(f"distill.spatial_align: expected 'pool' or 'ot', got {cfg.spatial_align!r}")
        if cfg.spatial_align == "ot" and (cfg.ot_epsilon <= 0 or cfg.ot_iters < 1):
            raise ConfigError("distill.ot_epsilon must be > 0 and distill.ot_iters >= 1")
        if cfg.similarity_source not in ("features", "attentions"):
            raise ConfigError(
                f"distill.similarity_source: expected 'features' or 'attentions', got {cfg.similarity_source!r}"
            )
        self.align = FeatureAlign(student_dims, teacher_dims) if cfg.feature.enabled else None
        self.temporal: TemporalAlign | None = None
        t_temporal = cfg.temporal_layer if temporal_teacher_layer is None else temporal_teacher_layer
        self.temporal_pair = (cfg.temporal_layer, t_temporal)
        if cfg.temporal.enabled:
            if temporal_dims is None:
                raise ConfigError("distill.temporal: the student's and the teacher's layer widths are needed")
            self.temporal = TemporalAlign(*temporal_dims)
        self.correlation_align: FeatureAlign | None = None
        if cfg.correlation.enabled:
            if correlation_dims is None:
                raise ConfigError("distill.correlation: the student's and the teacher's correlation widths are needed")
            self.correlation_align = FeatureAlign([correlation_dims[0]], [correlation_dims[1]])

    @classmethod
    def from_feature_info(
        cls, cfg: DistillConfig, student_info: list[dict], teacher_info: list[dict], num_search: int
    ) -> DistillLoss:
        """The loss for two models, layers paired by ``cfg.layer_pairing``, widths from their ``feature_info``."""
        ns, nt = len(student_info), len(teacher_info)
        t_layers = teacher_layers(list(cfg.feature_layers), ns, nt, cfg.layer_pairing)
        s_dims: list[int] = []
        t_dims: list[int] = []
        if cfg.feature.enabled:
            s_dims = cls.layer_dims(student_info, list(cfg.feature_layers), "student")
            t_dims = cls.layer_dims(teacher_info, t_layers, "teacher")
        temporal_dims = None
        t_temporal = cfg.temporal_layer
        if cfg.temporal.enabled:
            t_temporal = teacher_layers([cfg.temporal_layer], ns, nt, cfg.layer_pairing)[0]
            temporal_dims = (
                cls.layer_dims(student_info, [cfg.temporal_layer], "student")[0],
                cls.layer_dims(teacher_info, [t_temporal], "teacher")[0],
            )
        # the correlation is depthwise: its channels are those of the last block of each model
        correlation_dims = None
        if cfg.correlation.enabled:
            correlation_dims = (
                cls.layer_dims(student_info, [-1], "student")[0], cls.layer_dims(teacher_info, [-1], "teacher")[0]
            )
        return cls(
            cfg,
            s_dims,
            t_dims,
            num_search,
            teacher_layers=t_layers,
            temporal_dims=temporal_dims,
            temporal_teacher_layer=t_temporal,
            correlation_dims=correlation_dims,
        )

    @property
    def needs_features(self) -> bool:
        c = self.cfg
        return c.similarity.enabled or c.feature.enabled or c.temporal.enabled or c.correlation.enabled

    @staticmethod
    def layer_dims(feature_info: list[dict], layers: list[int], who: str) -> list[int]:
        """Channel counts of the chosen layers, from a model's ``feature_info`` (per block ``{'num_chs': C, ...}``)."""
        return [int(info["num_chs"]) for info in _pick(feature_info, layers, who)]

    def forward(self, student: dict, teacher: dict) -> dict[str, torch.Tensor]:
        """Weighted KD terms. Outputs hold B*n rows ordered (sample, search frame)."""
        cfg, out = self.cfg, {}
        layers, t_layers = self.student_layers, self.teacher_layers
        if cfg.similarity.enabled:
            source = cfg.similarity_source
            s_key, t_key = _SIMILARITY_KEYS[source]
            s_key = s_key if s_key in student else t_key  # a student may also name its maps 'attentions'
            if s_key not in student or t_key not in teacher:
                raise ConfigError(
                    f"distill.similarity_source: {source!r} needs student output '{s_key}' and teacher output '{t_key}'"
                )
            out["kd_similarity"] = cfg.similarity.weight * similarity_kd(
                _pick(student[s_key], layers, "student"), _pick(teacher[t_key], t_layers, "teacher"), source
            )
        if cfg.feature.enabled:
            assert self.align is not None
            out["kd_feature"] = cfg.feature.weight * feature_kd(
                _pick(student["features"], layers, "student"),
                _pick(teacher["features"], t_layers, "teacher"),
                self.align,
                cfg.spatial_align,
                cfg.ot_cost,
                cfg.ot_epsilon,
                cfg.ot_iters,
            )
        if cfg.response.enabled:
            out["kd_response"] = cfg.response.weight * response_kd(
                student["score_map"], teacher["score_map"], cfg.temperature
            )
        if cfg.fourier.enabled:
            n = self.num_search
            s = student["score_map"].reshape(-1, n, *student["score_map"].shape[-2:])
            t = teacher["score_map"].reshape(-1, n, *teacher["score_map"].shape[-2:])
            if cfg.fourier_mode == "hdetrack_v2":
                out["kd_fourier"] = cfg.fourier.weight * fourier_kd_v2(s, t, cfg.temperature)
            else:
                out["kd_fourier"] = cfg.fourier.weight * fourier_kd(s, t)
        if cfg.temporal.enabled:
            assert self.temporal is not None
            s_layer, t_layer = self.temporal_pair
            out["kd_temporal"] = cfg.temporal.weight * temporal_kd(
                _pick(student["features"], [s_layer], "student")[0],
                _pick(teacher["features"], [t_layer], "teacher")[0],
                self.temporal,
                self.num_search,
            )
        if cfg.correlation.enabled:
            assert self.correlation_align is not None
            if "correlation" not in student or "correlation" not in teacher:
                raise ConfigError(
                    "distill.correlation: needs a correlation map from both models (model.overrides.xcorr: true "
                    "for the student and the teacher)"
                )
            out["kd_correlation"] = cfg.correlation.weight * feature_kd(
                [student["correlation"]], [teacher["correlation"]], self.correlation_align
            )
        return out


__all__ = [
    "DistillLoss",
    "feature_kd",
    "fourier_kd",
    "response_kd",
    "similarity_kd",
    "temporal_spectrum",
]
