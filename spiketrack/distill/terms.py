"""Distillation terms as a table: one class per term, :data:`KD_TERMS` (name -> class), :class:`DistillLoss`.

A term owns everything about itself:

- its settings: the config section ``distill.<name>`` (``{enabled, weight, <its options>}``, a dataclass of
  :mod:`spiketrack.config`), kept as ``self.settings``;
- its checks: raised as :class:`~spiketrack.errors.ConfigError` naming the key when the term is built, before
  any training step (clip length, layer indices, widths, option values);
- the model outputs it reads beyond the score map (:attr:`KDTerm.outputs`): the trainer asks both models for the
  union over the enabled terms and nothing more (``return_features``, :func:`spiketrack.models.wants`);
- its trained modules (projections, the temporal GRU), saved with the run's checkpoint (field ``align``);
- its weight: :meth:`KDTerm.forward` returns ``weight * loss``, logged as ``kd_<name>``.

A new term: one class here (``name``, ``__init__`` with its checks, ``outputs``, ``loss``) and one row in
:data:`KD_TERMS`, plus its settings section in ``DistillConfig`` (config.py). The loss functions themselves are in
:mod:`spiketrack.distill.losses` (and the HAD / HDETrack V2 modules it names). Terms are built in table order, so
the projections of a config are initialised as before a term is added after them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from spiketrack.config import DistillConfig
from spiketrack.distill.align import FeatureAlign
from spiketrack.distill.fourier import fourier_kd_v2
from spiketrack.distill.losses import (
    feature_kd,
    fourier_kd,
    response_focal_kd,
    response_kd,
    similarity_kd,
)
from spiketrack.distill.pairing import check_layer, teacher_layers
from spiketrack.distill.temporal import TemporalAlign, temporal_kd
from spiketrack.errors import ConfigError


@dataclass(frozen=True)
class ModelPair:
    """What a term may know of the two models when it is built: per-layer ``feature_info`` of both (timm's
    ``{'num_chs': C, ...}`` per block), how student layers meet teacher layers, and the clip length n."""

    student_info: list[dict]
    teacher_info: list[dict]
    num_search: int = 1
    layer_pairing: str = "index"
    # channels of each model's correlation map (the head's input); None: its last block's (a deep level alone)
    correlation: tuple[int | None, int | None] = (None, None)

    def teacher_layers(self, layers: list[int], key: str) -> list[int]:
        """Teacher layer of each student layer (``distill.layer_pairing``); both checked against the depths."""
        ns, nt = len(self.student_info), len(self.teacher_info)
        for i in layers:
            check_layer(i, ns, "student", key)
        paired = teacher_layers(list(layers), ns, nt, self.layer_pairing, key)
        for i in paired:
            check_layer(i, nt, "teacher", key)
        return paired

    def widths(self, layers: list[int], who: str, key: str) -> list[int]:
        """Channel counts of the chosen layers of the ``'student'`` or the ``'teacher'``."""
        info = self.student_info if who == "student" else self.teacher_info
        return [int(info[check_layer(i, len(info), who, key)]["num_chs"]) for i in layers]


def _layers(outputs: Mapping[str, Any], key: str, layers: list[int], who: str, setting: str) -> list[torch.Tensor]:
    """The chosen layers of a per-layer output list (``setting`` names the config key in errors)."""
    per_layer = outputs[key]
    return [per_layer[check_layer(i, len(per_layer), who, setting)] for i in layers]


def on_grid_of(teacher_map: torch.Tensor, student_map: torch.Tensor) -> torch.Tensor:
    """The teacher's score map [N, 1, h, w] on the student's grid (bilinear; e.g. a stride-16 teacher beside a stride-8
    student), unchanged when the grids agree."""
    if teacher_map.shape[-2:] == student_map.shape[-2:]:
        return teacher_map
    return F.interpolate(teacher_map, size=tuple(student_map.shape[-2:]), mode="bilinear", align_corners=False)


def _clips(score_map: torch.Tensor, n: int) -> torch.Tensor:
    """Score maps of ``B*n`` rows ordered (sample, search frame) -> ``[B, n, Hf, Wf]``."""
    return score_map.reshape(-1, n, *score_map.shape[-2:])


class KDTerm(nn.Module):
    """One distillation term (see the module docstring). Subclasses set ``name`` and implement :meth:`loss`."""

    name: ClassVar[str]

    def __init__(self, settings: Any, pair: ModelPair) -> None:
        super().__init__()
        self.settings = settings
        if settings.weight < 0:
            raise ConfigError(f"distill.{self.name}.weight: expected a weight >= 0, got {settings.weight}")

    @property
    def key(self) -> str:
        """The config section of this term (``distill.<name>``), for error messages."""
        return f"distill.{self.name}"

    @property
    def outputs(self) -> frozenset[str]:
        """Model outputs this term reads besides 'score_map' (names of :func:`spiketrack.models.wants`)."""
        return frozenset()

    def loss(self, student: Mapping[str, Any], teacher: Mapping[str, Any]) -> torch.Tensor:
        """The unweighted term from both models' outputs (``B*n`` rows ordered (sample, search frame))."""
        raise NotImplementedError

    def forward(self, student: Mapping[str, Any], teacher: Mapping[str, Any]) -> torch.Tensor:
        return self.settings.weight * self.loss(student, teacher)


class SimilarityTerm(KDTerm):
    """Similarity KD (``kd_similarity``): token-token relation matrices of paired layers (:func:`similarity_kd`)."""

    name = "similarity"
    # source -> (student output, teacher output) (model contract, spiketrack.models)
    SOURCES: ClassVar[dict[str, tuple[str, str]]] = {
        "features": ("features", "features"), "attentions": ("similarity", "attentions")
    }

    def __init__(self, settings: Any, pair: ModelPair) -> None:
        super().__init__(settings, pair)
        if settings.source not in self.SOURCES:
            raise ConfigError(f"{self.key}.source: expected one of {sorted(self.SOURCES)}, got {settings.source!r}")
        if settings.distance not in ("mse", "row_l2"):
            raise ConfigError(f"{self.key}.distance: expected 'mse' or 'row_l2', got {settings.distance!r}")
        self.student_layers = list(settings.layers)
        self.teacher_layers = pair.teacher_layers(self.student_layers, f"{self.key}.layers")

    @property
    def outputs(self) -> frozenset[str]:
        return frozenset(self.SOURCES[self.settings.source])

    def loss(self, student: Mapping[str, Any], teacher: Mapping[str, Any]) -> torch.Tensor:
        source = self.settings.source
        s_key, t_key = self.SOURCES[source]
        s_key = s_key if s_key in student else t_key  # a student may also name its maps 'attentions'
        if s_key not in student or t_key not in teacher:
            raise ConfigError(
                f"{self.key}.source: {source!r} needs student output '{s_key}' and teacher output '{t_key}'"
            )
        key = f"{self.key}.layers"
        return similarity_kd(
            _layers(student, s_key, self.student_layers, "student", key),
            _layers(teacher, t_key, self.teacher_layers, "teacher", key),
            source, self.settings.distance,
        )


class FeatureTerm(KDTerm):
    """Feature KD (``kd_feature``): student tokens (projected, or layer-normalised) onto the teacher's
    (:func:`feature_kd`), aligned by pooling or by an entropic OT plan (HAD)."""

    name = "feature"

    def __init__(self, settings: Any, pair: ModelPair) -> None:
        super().__init__(settings, pair)
        if settings.align not in ("pool", "ot"):
            raise ConfigError(f"{self.key}.align: expected 'pool' or 'ot', got {settings.align!r}")
        if settings.align == "ot" and (settings.ot_epsilon <= 0 or settings.ot_iters < 1):
            raise ConfigError(f"{self.key}.ot_epsilon must be > 0 and {self.key}.ot_iters >= 1")
        key = f"{self.key}.layers"
        self.student_layers = list(settings.layers)
        self.teacher_layers = pair.teacher_layers(self.student_layers, key)
        s_dims = pair.widths(self.student_layers, "student", key)
        t_dims = pair.widths(self.teacher_layers, "teacher", key)
        self.align: FeatureAlign | None = None
        if settings.projection:
            self.align = FeatureAlign(s_dims, t_dims)
        elif s_dims != t_dims:
            raise ConfigError(
                f"{self.key}.projection: false compares the tokens as they are and needs equal widths; student "
                f"layers {self.student_layers} have {s_dims} channels, teacher layers {self.teacher_layers} "
                f"{t_dims} (HDETrack's student and teacher are both ViT-B; set projection: true)"
            )

    @property
    def outputs(self) -> frozenset[str]:
        return frozenset({"features"})

    def loss(self, student: Mapping[str, Any], teacher: Mapping[str, Any]) -> torch.Tensor:
        s, key = self.settings, f"{self.key}.layers"
        return feature_kd(
            _layers(student, "features", self.student_layers, "student", key),
            _layers(teacher, "features", self.teacher_layers, "teacher", key),
            self.align, s.align, s.ot_cost, s.ot_epsilon, s.ot_iters,
        )


class ResponseTerm(KDTerm):
    """Response KD (``kd_response``): KL between the score maps' spatial distributions (:func:`response_kd`), or
    HDETrack's focal loss on the maps divided by the temperature (:func:`response_focal_kd`)."""

    name = "response"
    LOSSES: ClassVar[dict[str, Any]] = {"kl": response_kd, "focal": response_focal_kd}

    def __init__(self, settings: Any, pair: ModelPair) -> None:
        super().__init__(settings, pair)
        if settings.loss not in self.LOSSES:
            raise ConfigError(f"{self.key}.loss: expected one of {sorted(self.LOSSES)}, got {settings.loss!r}")
        if settings.temperature <= 0:
            raise ConfigError(f"{self.key}.temperature: expected > 0, got {settings.temperature}")

    def loss(self, student: Mapping[str, Any], teacher: Mapping[str, Any]) -> torch.Tensor:
        fn = self.LOSSES[self.settings.loss]
        return fn(student["score_map"], on_grid_of(teacher["score_map"], student["score_map"]), self.settings.temperature)


class FourierTerm(KDTerm):
    """Temporal Fourier KD (``kd_fourier``) over the n search frames' score maps: HDETrack V2's real spectra
    (:func:`fourier_kd_v2`, sees frame order) or the amplitude spectra along time (:func:`fourier_kd`)."""

    name = "fourier"
    MODES = ("hdetrack_v2", "amplitude")

    def __init__(self, settings: Any, pair: ModelPair) -> None:
        super().__init__(settings, pair)
        if pair.num_search < 2:
            raise ConfigError(f"{self.key}: the temporal Fourier loss needs data.num_search >= 2 (3 recommended)")
        if settings.mode not in self.MODES:
            raise ConfigError(f"{self.key}.mode: expected one of {list(self.MODES)}, got {settings.mode!r}")
        if settings.temperature <= 0:
            raise ConfigError(f"{self.key}.temperature: expected > 0, got {settings.temperature}")
        self.num_search = pair.num_search

    def loss(self, student: Mapping[str, Any], teacher: Mapping[str, Any]) -> torch.Tensor:
        t_map = on_grid_of(teacher["score_map"], student["score_map"])
        s, t = _clips(student["score_map"], self.num_search), _clips(t_map, self.num_search)
        if self.settings.mode == "hdetrack_v2":
            return fourier_kd_v2(s, t, self.settings.temperature)
        return fourier_kd(s, t)


class TemporalTerm(KDTerm):
    """HAD temporal alignment (``kd_temporal``): a GRU over the student's clip features, regressed onto the
    teacher's (:func:`temporal_kd`)."""

    name = "temporal"

    def __init__(self, settings: Any, pair: ModelPair) -> None:
        super().__init__(settings, pair)
        if pair.num_search < 2:
            raise ConfigError(f"{self.key}: the temporal alignment needs data.num_search >= 2 (a clip of frames)")
        key = f"{self.key}.layer"
        self.student_layer = settings.layer
        self.teacher_layer = pair.teacher_layers([settings.layer], key)[0]
        self.num_search = pair.num_search
        self.align = TemporalAlign(
            pair.widths([self.student_layer], "student", key)[0], pair.widths([self.teacher_layer], "teacher", key)[0]
        )

    @property
    def outputs(self) -> frozenset[str]:
        return frozenset({"features"})

    def loss(self, student: Mapping[str, Any], teacher: Mapping[str, Any]) -> torch.Tensor:
        return temporal_kd(
            student["features"][self.student_layer], teacher["features"][self.teacher_layer], self.align,
            self.num_search,
        )


class CorrelationTerm(KDTerm):
    """Correlation KD (``kd_correlation``): the student's template-search correlation map projected to the teacher's
    width and regressed onto the teacher's, as the feature KD does for tokens."""

    name = "correlation"

    def __init__(self, settings: Any, pair: ModelPair) -> None:
        super().__init__(settings, pair)
        # the deep correlation is depthwise: its channels are those of the last block of each model, plus the shallow and
        # input levels where the model has them (ModelPair.correlation)
        key = self.key
        widths = [pair.widths([-1], who, key)[0] if given is None else int(given)
                  for who, given in zip(("student", "teacher"), pair.correlation, strict=True)]
        self.align = FeatureAlign([widths[0]], [widths[1]])

    @property
    def outputs(self) -> frozenset[str]:
        return frozenset({"correlation"})

    def loss(self, student: Mapping[str, Any], teacher: Mapping[str, Any]) -> torch.Tensor:
        if "correlation" not in student or "correlation" not in teacher:
            raise ConfigError(
                f"{self.key}: needs a correlation map from both models (model.overrides.xcorr: true "
                "for the student and the teacher)"
            )
        return feature_kd([student["correlation"]], [teacher["correlation"]], self.align)


# distill.<name> -> its term; the one place a term is added (with its settings section in DistillConfig)
KD_TERMS: dict[str, type[KDTerm]] = {
    "similarity": SimilarityTerm,
    "feature": FeatureTerm,
    "response": ResponseTerm,
    "fourier": FourierTerm,
    "temporal": TemporalTerm,
    "correlation": CorrelationTerm,
}

# state-dict prefixes of checkpoints written before the terms were a table -> today's
_OLD_PREFIXES = {"align.": "terms.feature.align.", "temporal.": "terms.temporal.align.",
                 "correlation_align.": "terms.correlation.align."}


class DistillLoss(nn.Module):
    """The enabled terms of ``cfg.distill`` (:data:`KD_TERMS`), each weighted; owns their trained modules."""

    def __init__(self, cfg: DistillConfig, pair: ModelPair) -> None:
        super().__init__()
        self.cfg = cfg
        self.terms = nn.ModuleDict()
        for name, term in KD_TERMS.items():
            settings = getattr(cfg, name)
            if not settings.enabled:
                continue
            try:
                self.terms[name] = term(settings, pair)
            except ConfigError as exc:
                if cfg.preset is None:
                    raise
                raise ConfigError(f"{exc} (the term's settings come from distill.preset: {cfg.preset})") from None

    @classmethod
    def from_feature_info(
        cls, cfg: DistillConfig, student_info: list[dict], teacher_info: list[dict], num_search: int,
        correlation: tuple[int | None, int | None] = (None, None),
    ) -> DistillLoss:
        """The loss for two models: layers paired by ``cfg.layer_pairing``, widths from their ``feature_info``
        (``correlation``: the channels of each model's correlation map, when it is more than its last block's)."""
        return cls(cfg, ModelPair(student_info, teacher_info, num_search, cfg.layer_pairing, correlation))

    @property
    def outputs(self) -> frozenset[str]:
        """Model outputs the enabled terms read besides the score map (the ``return_features`` request)."""
        return frozenset().union(*(term.outputs for term in self.terms.values()))

    def forward(self, student: Mapping[str, Any], teacher: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Weighted terms ``{'kd_<name>': value}``. Outputs hold B*n rows ordered (sample, search frame)."""
        return {f"kd_{name}": term(student, teacher) for name, term in self.terms.items()}

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """As :meth:`nn.Module.load_state_dict`; also reads the key names of checkpoints written before the
        terms were a table (``align.*``, ``temporal.*``, ``correlation_align.*``), so those runs resume."""
        upgraded = {}
        for key, value in state_dict.items():
            old = next((p for p in _OLD_PREFIXES if key.startswith(p)), None)
            upgraded[_OLD_PREFIXES[old] + key[len(old):] if old else key] = value
        return super().load_state_dict(upgraded, strict=strict, assign=assign)


__all__ = [
    "KD_TERMS",
    "CorrelationTerm",
    "DistillLoss",
    "FeatureTerm",
    "FourierTerm",
    "KDTerm",
    "ModelPair",
    "ResponseTerm",
    "SimilarityTerm",
    "TemporalTerm",
]
