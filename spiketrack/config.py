"""Experiment configuration: YAML files mapped onto typed dataclasses.

Every section is a dataclass with defaults; a YAML file only states what differs. Unknown keys,
values of the wrong type and missing files raise :class:`~spiketrack.errors.ConfigError` naming
the key (``train.epochs``) and the file. Command-line overrides use the same dotted keys:
``--set train.epochs=3 --set model.variant=tiny`` (values are parsed as YAML scalars/lists).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from spiketrack.errors import ConfigError

# --------------------------------------------------------------------------------------------
# Allowed values, declared beside each field's type
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """Allowed values of one config field, declared in its annotation (``epochs: Annotated[int, Check(ge=1)]``)
    and enforced by :func:`from_dict` when a config is read, before any command does work or writes a file.

    Numbers: bounds ``ge``/``gt``/``le``/``lt`` and ``also`` (values allowed outside them, e.g. 0 = off); a number
    that may take any value says why in ``why``. Strings: ``non_empty``. Lists: ``min_items``. Every number
    field of a section declares a Check (tests/test_config_values.py walks them all), so a new or nested
    section is checked as soon as its fields are annotated.
    """

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    also: tuple[float, ...] = ()
    non_empty: bool = False
    min_items: int | None = None
    why: str = ""

    def describe(self) -> str:
        """The allowed values in words, e.g. ``>= 1`` or ``in [0, 1]``."""
        if self.ge is not None and self.le is not None:
            text = f"in [{self.ge:g}, {self.le:g}]"
        elif self.ge is not None and self.lt is not None:
            text = f"in [{self.ge:g}, {self.lt:g})"
        else:
            parts = [f"{op} {v:g}" for op, v in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
                     if v is not None]
            text = " and ".join(parts)
        if self.also:
            text += " or " + " or ".join(f"{v:g}" for v in self.also)
        return text

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` (already of the field's type), or None when it is allowed."""
        if isinstance(value, str):
            return "expected a non-empty string" if self.non_empty and not value.strip() else None
        if isinstance(value, list):
            if self.min_items is not None and len(value) < self.min_items:
                return f"expected at least {self.min_items} item(s)"
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value in self.also:
            return None
        ok = ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
              and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt))
        return None if ok else f"expected a value {self.describe()}"


PositiveInt = Annotated[int, Check(ge=1)]
NonNegativeInt = Annotated[int, Check(ge=0)]
PositiveFloat = Annotated[float, Check(gt=0)]
NonNegativeFloat = Annotated[float, Check(ge=0)]
Share = Annotated[float, Check(ge=0, le=1)]  # a probability or fraction
Text = Annotated[str, Check(non_empty=True)]
# a layer index as Python counts it (-1 = the last layer); its range depends on the model and is checked there
LayerIndex = Annotated[int, Check(why="a layer index: negative values count from the last layer, the model checks the range")]


def field_checks(tp: Any) -> tuple[Any, list[Check]]:
    """``(type, checks)`` of an annotation: ``Annotated[int, Check(ge=1)]`` -> ``(int, [Check(ge=1)])``."""
    if get_origin(tp) is Annotated:
        base, *meta = get_args(tp)
        return base, [m for m in meta if isinstance(m, Check)]
    return tp, []


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


@dataclass
class DatasetSource:
    """One dataset folder (native sequence files + split lists) and its sampling weight."""

    root: Text = "work/quickstart/synth"
    weight: NonNegativeFloat = 1.0


@dataclass
class DataConfig:
    """Where the sequences are and how training pairs and model inputs are made (docs/data.md; docs/training.md,
    "Training samples")."""

    datasets: Annotated[list[DatasetSource], Check(min_items=1)] = field(default_factory=lambda: [DatasetSource()])
    train_split: Text = "train"
    test_split: Text = "test"
    template_size: PositiveInt = 128  # pixels of the square template crop (OSTrack convention)
    search_size: PositiveInt = 256  # pixels of the square search crop
    template_factor: PositiveFloat = 2.0  # crop side = factor * sqrt(w*h) of the box (OSTrack)
    search_factor: PositiveFloat = 4.0
    voxel_bins: PositiveInt = 5  # B bins of the voxel-grid view (teacher `events+voxel`)
    num_search: PositiveInt = 1  # search frames per training sample (3 for the temporal Fourier loss)
    # templates per training sample (student): 1 = one template; k >= 2 adds the sequence's first visible frame and
    # k - 2 frames between it and the template as extra memory slots, merged by the model's gate (merge_memories)
    # as the tracker's template update merges them, so the gate over slots is trained
    num_templates: PositiveInt = 1
    max_gap: PositiveInt = 50  # largest template -> search frame distance when sampling pairs
    center_jitter: NonNegativeFloat = 3.0  # search-crop centre jitter, in units of sqrt(w*h) / search_factor
    scale_jitter: NonNegativeFloat = 0.25  # search-crop log-scale jitter
    flip: bool = True  # random horizontal flip of the whole sample
    brightness_jitter: NonNegativeFloat = 0.2  # RGB brightness / event-count intensity jitter
    # Distractor-aware pairs (DaSiamRPN, Zhu et al., ECCV 2018; train/sampling.py): share of negative pairs (template
    # of another object or sequence, target absent from the search crop's labels) and, in multi-object sequences,
    # share of samples whose search frames show another object inside the search crop. 0 = off (the default).
    negative_prob: Share = 0.0
    distractor_prob: Share = 0.0
    # Template frames are clean (spiketrack/data/visibility.py): at least this share of the object visible (where the
    # sequence records visibility) and no other annotated object's box covering more than template_max_overlap of its
    # box, the rule every test sequence's first frame follows; a sequence without such a frame uses any visible frame
    template_min_visible: Share = 0.9
    template_max_overlap: Share = 0.0
    samples_per_epoch: PositiveInt = 2000
    num_workers: NonNegativeInt = 0


@dataclass
class NeuronConfig:
    """Spiking neuron settings (one factory decides neuron type, step mode and backend)."""

    kind: Literal["lif", "integer_lif"] = "lif"
    tau: Annotated[float, Check(gt=1)] = 2.0  # membrane decay 1/tau: spikingjelly requires tau > 1
    v_threshold: PositiveFloat = 1.0
    detach_reset: bool = True
    surrogate: Text = "sigmoid"  # name of a spikingjelly surrogate function
    surrogate_alpha: PositiveFloat = 4.0
    levels: PositiveInt = 1  # D: integer spikes take values {0, 1/D, ..., 1} (D=1: binary)
    backend: Literal["auto", "torch", "cuda", "triton"] = "auto"


@dataclass
class ModelConfig:
    """Which model is built: the ANN teacher or the spiking student, its variant and its inputs."""

    kind: Literal["teacher", "student"] = "student"
    variant: Text = "tiny"  # named configuration in the model family's file
    modalities: Text = "events"  # teacher: events | rgb+events | events+voxel; student: events
    timesteps: PositiveInt = 4  # T of the student = T temporal bins of a frame window (T x D is the temporal budget)
    # T_t of the student's template branch (None: = timesteps). SpikeTrack's asymmetric timestep expansion
    # (Zhang et al., arXiv:2602.23963): a long template T run once, a short search T every frame.
    template_timesteps: PositiveInt | None = None
    # what the template branch's T_t steps are: 'bins' of one template window (their memory averaged to one step
    # when T_t != T), or SpikeTrack's 'templates': T_t stacked template crops of one bin each, search T = 1,
    # per-step position embeddings and a gate over the T_t retrieved steps (models/spiking/student.py)
    template_steps: Literal["bins", "templates"] = "bins"
    neuron: NeuronConfig = field(default_factory=NeuronConfig)
    # local weights, never downloaded: teacher a timm/MAE ViT state dict; student a spiketrack checkpoint or a
    # plain state dict of the student (spiketrack.models.spiking.pretrained)
    pretrained: Text | None = None
    overrides: dict[str, Any] = field(default_factory=dict)  # variant fields to change (dims, depth, ...)


@dataclass
class FocalLossConfig:
    """CenterNet focal loss of the score map against the Gaussian heatmap (``train.loss.focal``)."""

    enabled: bool = True
    weight: NonNegativeFloat = 1.0  # OSTrack (Ye et al., ECCV 2022)


@dataclass
class GIoULossConfig:
    """Generalised-IoU loss of the predicted box (``train.loss.giou``)."""

    enabled: bool = True
    weight: NonNegativeFloat = 2.0  # OSTrack


@dataclass
class L1LossConfig:
    """L1 loss of the four normalised box numbers (``train.loss.l1``)."""

    enabled: bool = True
    weight: NonNegativeFloat = 5.0  # OSTrack


@dataclass
class TemplateSwapConfig:
    """Template-swap negatives (``train.loss.template_swap``): a focal loss on each sample's first search crop
    tracked a second time with the template of another sample in the batch (another sequence), the target declared
    absent (all-zero heatmap). The same crop is positive with its own template and negative with a foreign one, so
    only a model that reads its template can lower this term (a stricter form of DaSiamRPN's distractor-aware
    negatives, Zhu et al. 2018). Off by default; costs one more forward pass of a template and one search crop per
    sample."""

    enabled: bool = False
    weight: NonNegativeFloat = 1.0


@dataclass
class LossConfig:
    """Tracking-loss terms (``spiketrack.train.losses.TRACKING_TERMS``), each ``{enabled, weight, <options>}``;
    OSTrack's weights: focal 1, GIoU 2, L1 5."""

    focal: FocalLossConfig = field(default_factory=FocalLossConfig)
    giou: GIoULossConfig = field(default_factory=GIoULossConfig)
    l1: L1LossConfig = field(default_factory=L1LossConfig)
    template_swap: TemplateSwapConfig = field(default_factory=TemplateSwapConfig)
    # Where the box losses (giou, l1) read the size/offset maps: 'argmax' = at the predicted score peak (OSTrack);
    # 'target' = at the ground-truth centre cell (CenterNet, Zhou et al. 2019), which a briefly trained
    # model needs: boxes read at a wrong peak teach the size map to cover the target from there (too large).
    box_at: Literal["argmax", "target"] = "argmax"


@dataclass
class TrainConfig:
    """Optimisation, schedule, precision and checkpointing."""

    out_dir: Text = "runs/experiment"
    epochs: PositiveInt = 10
    steps_per_epoch: PositiveInt | None = None  # None: samples_per_epoch // batch_size
    batch_size: PositiveInt = 16
    accumulate: PositiveInt = 1
    lr: PositiveFloat = 4e-4
    backbone_lr_scale: NonNegativeFloat = 0.1  # backbone lr = lr * scale; new modules get lr
    weight_decay: NonNegativeFloat = 1e-4
    schedule: Literal["cosine", "step"] = "cosine"
    warmup_epochs: NonNegativeFloat = 0.0
    step_epochs: list[PositiveInt] = field(default_factory=list)
    step_gamma: PositiveFloat = 0.1
    grad_clip: NonNegativeFloat = 0.1  # 0: no clipping
    amp: bool = True  # bf16 autocast on GPU; ignored on CPU
    seed: Annotated[int, Check(ge=0, lt=2**32)] = 0  # numpy seeds are 32-bit
    deterministic: bool = False
    keep_last: PositiveInt = 2
    # Training sequences held in memory when their files total at most this many MiB (0: read HDF5 per sample)
    preload_mb: NonNegativeFloat = 0.0
    log_every: PositiveInt = 10
    save_every: NonNegativeInt = 0  # optimiser steps between checkpoints (0: only at the end of each epoch)
    amp_dtype: Literal["bfloat16", "float16"] = "bfloat16"  # autocast dtype on CUDA (float16 uses a GradScaler)
    # DDP: batch norm over the global batch of all processes (SyncBatchNorm; train/distributed.py); off: each
    # process normalises with its own shard's statistics and the checkpoint keeps rank 0's running statistics
    sync_bn: bool = False
    loss: LossConfig = field(default_factory=LossConfig)


@dataclass
class SimilarityKDConfig:
    """Similarity KD (``distill.similarity``, ``kd_similarity``): relations between search tokens, per layer."""

    enabled: bool = True
    weight: NonNegativeFloat = 1.0
    layers: list[LayerIndex] = field(default_factory=lambda: [-1])  # student layers (teacher layers by layer_pairing)
    # 'features': cosine similarity of search tokens; 'attentions': the teacher's softmax attention against the
    # student's spike Q K^T, head-averaged (per head when both have as many heads) and row-normalised
    source: Literal["features", "attentions"] = "features"
    # 'mse': mean squared error of the matrices; 'row_l2': mean Euclidean distance between matching rows
    # (HDETrack's PairwiseDistance, the hdetrack preset)
    distance: Literal["mse", "row_l2"] = "mse"


@dataclass
class FeatureKDConfig:
    """Feature KD (``distill.feature``, ``kd_feature``): student search tokens regressed onto the teacher's."""

    enabled: bool = True
    weight: NonNegativeFloat = 1.0
    layers: list[LayerIndex] = field(default_factory=lambda: [-1])  # student layers (teacher layers by layer_pairing)
    # true: a learned linear map to the teacher's width, target layer-normalised (FitNets); false: no learned map,
    # both models' tokens layer-normalised and compared as they are (HDETrack; needs equal widths)
    projection: bool = True
    # token alignment: adaptive pooling to the common grid, or an entropic OT plan (HAD, arXiv:2510.19560)
    align: Literal["pool", "ot"] = "pool"
    ot_cost: Literal["position", "feature", "both"] = "both"  # OT costs: token-centre distance, 1 - cosine, or sum
    ot_epsilon: PositiveFloat = 0.01  # entropic regularisation (crop coordinates; a token of a 16x16 grid is 1/16 wide)
    ot_iters: PositiveInt = 100  # Sinkhorn iterations


@dataclass
class ResponseKDConfig:
    """Response KD (``distill.response``, ``kd_response``): the student's score map against the teacher's."""

    enabled: bool = True
    weight: NonNegativeFloat = 1.0
    # 'kl': KL between the maps' spatial softmax distributions of logit / temperature, times temperature^2
    # (Hinton et al. 2015); 'focal': CenterNet focal loss of student / temperature against teacher / temperature
    # (probabilities divided, HDETrack's released response loss)
    loss: Literal["kl", "focal"] = "kl"
    temperature: PositiveFloat = 1.0


@dataclass
class FourierKDConfig:
    """Temporal Fourier KD (``distill.fourier``, ``kd_fourier``) over the n search frames' score maps."""

    enabled: bool = False
    weight: NonNegativeFloat = 1.0
    # 'hdetrack_v2': softmax maps, 2-D DFT over (time, cell), real parts by MSE (HDETrack V2; sees frame order);
    # 'amplitude': per-frame normalised maps, rfft amplitude along time, L1 (blind to a shift of frame order)
    mode: Literal["hdetrack_v2", "amplitude"] = "hdetrack_v2"
    temperature: PositiveFloat = 1.0  # softmax temperature of the hdetrack_v2 maps


@dataclass
class TemporalKDConfig:
    """HAD temporal alignment (``distill.temporal``, ``kd_temporal``): a GRU over the student's features of the n
    search frames (needs data.num_search >= 2)."""

    enabled: bool = False
    weight: NonNegativeFloat = 1.0
    layer: LayerIndex = -1  # student layer whose clip features are aligned (teacher layer by layer_pairing)


@dataclass
class CorrelationKDConfig:
    """Correlation KD (``distill.correlation``, ``kd_correlation``): the student's template-search correlation map
    (model.overrides.xcorr, or the conv student's) projected to the teacher's width and regressed onto the teacher's
    (the teacher needs xcorr). Validation split, 2 seeds: no effect on SR or on the foreign-template drop."""

    enabled: bool = False
    weight: NonNegativeFloat = 1.0


@dataclass
class DistillConfig:
    """Hierarchical distillation from a frozen teacher: one section per term of
    ``spiketrack.distill.terms.KD_TERMS``, each ``{enabled, weight, <its options>}``."""

    # a named set of term settings applied before this section's own keys (DISTILL_PRESETS); None: the defaults
    preset: Literal["hdetrack"] | None = None
    # teacher layer of each student layer: same index, or same fraction of the depth (spiketrack.distill.pairing)
    layer_pairing: Literal["index", "relative_depth"] = "index"
    similarity: SimilarityKDConfig = field(default_factory=SimilarityKDConfig)
    feature: FeatureKDConfig = field(default_factory=FeatureKDConfig)
    response: ResponseKDConfig = field(default_factory=ResponseKDConfig)
    fourier: FourierKDConfig = field(default_factory=FourierKDConfig)
    temporal: TemporalKDConfig = field(default_factory=TemporalKDConfig)
    correlation: CorrelationKDConfig = field(default_factory=CorrelationKDConfig)


# distill.preset -> the term settings it stands for (a YAML's own distill keys are applied on top).
DISTILL_PRESETS: dict[str, dict[str, Any]] = {
    # HDETrack's released distillation (Wang et al., CVPR 2024; Event-AHU/EventVOT_Benchmark,
    # HDETrack/lib/train/actors/hdetrack.py, HDETrackActor.compute_losses, commit e4ae30d): MSE between the last
    # layer's tokens of teacher and student with no projection (weight 1); the mean row-wise Euclidean distance
    # (torch PairwiseDistance, p=2) between the last layer's attention maps, times 0.7; the focal loss of the
    # student's score map / 2 against the teacher's score map / 2 (temp = 2), times 0.7. No temporal terms.
    "hdetrack": {
        "similarity": {"enabled": True, "weight": 0.7, "layers": [-1], "source": "attentions", "distance": "row_l2"},
        "feature": {"enabled": True, "weight": 1.0, "layers": [-1], "projection": False, "align": "pool"},
        "response": {"enabled": True, "weight": 0.7, "loss": "focal", "temperature": 2.0},
        "fourier": {"enabled": False},
        "temporal": {"enabled": False},
        "correlation": {"enabled": False},
    },
}


@dataclass
class TestTimeTuningConfig:
    """Test-time tuning with LoRA (HDETrack V2, Wang et al., arXiv:2502.05574, §3.4; constants from there):
    after the first ``frames`` tracked frames, their boxes are pseudo-labels and LoRA adapters on the attention
    (qkv, proj) and MLP (fc1, fc2) linears are tuned for ``epochs`` SGD steps; per sequence (removed at its end)."""

    enabled: bool = False
    frames: int = 5  # n: tracked frames whose boxes are the pseudo-labels
    rank: int = 16  # LoRA r
    alpha: float = 32.0  # LoRA alpha (scaling alpha / r)
    lr: float = 0.01  # SGD learning rate
    epochs: int = 5  # passes (one SGD step each) over the n pseudo-labelled frames
    momentum: float = 0.0
    drop_events: float = 0.2  # event-sparsity augmentation: each template event is dropped with this probability
    consistency: float = 1.0  # weight of the consistency term between two augmented templates' score maps
    targets: list[str] = field(default_factory=lambda: ["qkv", "q", "k", "v", "proj", "fc1", "fc2"])
    seed: int = 0  # RNG of the augmentations (per sequence: seed + first frame's event count)


@dataclass
class NccConfig:
    """The NCC template matcher (``spiketrack track --tracker ncc``; spiketrack/tracking/ncc.py): non-learned."""

    modality: Literal["events", "rgb"] = "events"  # event counts of the frame window, or the intensity frame
    channels: Literal["sum", "polarity"] = "sum"  # events: polarities summed (1 channel) or apart (2)
    # template side = factor * sqrt(w h) of the first box; 1.5 (some context) chosen on the validation split: SR 32.4
    # against 27.5 with 1.0, 27.8 with 1.25, 31.5 with 2.0 (docs/benchmarks.md, "NCC template matcher settings")
    template_factor: PositiveFloat = 1.5
    template_px: PositiveInt = 32  # template resampled to this many cells per side
    search_factor: Annotated[float, Check(ge=1)] = 3.0  # search side / template side
    blur: NonNegativeInt = 1  # box-blur radius in cells (0: none)
    window_influence: Share = 0.25  # weight of the cosine window against the NCC score (SiamFC)


@dataclass
class TrackingConfig:
    """Online tracking: window penalty, template update, adaptive search region (docs/tracking.md, "How the tracker
    works")."""

    hann_window: bool = True
    template_update: bool = False
    update_interval: PositiveInt = 25  # k: frames between template-update attempts
    update_threshold: Share = 0.7  # score above which the current crop becomes a template slot
    max_templates: PositiveInt = 3  # memory slots including the first template (always kept)
    asr: bool = True  # adaptive search region (HDETrack V2): tau 0.5, m 7, theta 1.5
    asr_tau: Share = 0.5  # IoU threshold
    asr_m: PositiveInt = 7
    asr_theta: Annotated[float, Check(ge=1)] = 1.5  # search-factor multiplier
    margin: NonNegativeFloat = 0.0  # clip boxes to the image enlarged by this many pixels
    # Box size smoothing: new (w, h) = (1 - r) * old + r * predicted (SiamFC/SiamRPN-style scale damping,
    # Bertinetto et al. 2016, Li et al. 2018). 1.0 takes the predicted size as is (OSTrack).
    size_update_rate: Annotated[float, Check(gt=0, le=1)] = 1.0
    # Box width and height stay within [1/s, s] times the first box's (0: no limit). SiamFC clamps the target
    # scale to [0.2, 5] of the initial size (Bertinetto et al. 2016): a box that grew over an empty or
    # out-of-view search crop cannot run away to the whole image.
    max_scale_change: Annotated[float, Check(ge=1, also=(0,))] = 0.0
    empty_score_decay: Share = 0.5  # score multiplier when a frame window holds no events
    # Lost target: a prediction scoring below lost_threshold (0: off) is not adopted and the last confident box
    # is kept (an occluded or motionless target is found where it was). Optionally the next search crop grows by
    # lost_search_growth per lost frame, up to lost_search_max times the normal crop (local-to-global search of
    # long-term trackers, e.g. SiamRPN++ long-term, Li et al. 2019); 1.0 = hold only.
    lost_threshold: Share = 0.0
    lost_search_growth: Annotated[float, Check(ge=1)] = 1.0
    lost_search_max: Annotated[float, Check(ge=1)] = 2.0
    ttt: TestTimeTuningConfig = field(default_factory=TestTimeTuningConfig)  # test-time tuning (off by default)
    ncc: NccConfig = field(default_factory=NccConfig)  # the non-learned NCC template matcher (--tracker ncc)


@dataclass
class EnergyConfig:
    """Operation counting and energy profile (docs/architecture.md, "Energy method")."""

    profile: Text = "45nm-fp32"  # name in spiketrack.energy.profiles.PROFILES (its DEFAULT_PROFILE)
    count_residual: bool = False
    count_neuron: bool = False
    # also the memory-aware energy (weight / membrane-potential memory accesses and addressing, Lemaire et al.,
    # ICONIP 2022; spiketrack.energy.memory) beside the compute-only figure, in every energy file of a run
    memory: bool = False


@dataclass
class ExperimentConfig:
    """A whole experiment: one YAML file."""

    name: Text = "experiment"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    energy: EnergyConfig = field(default_factory=EnergyConfig)


# --------------------------------------------------------------------------------------------
# YAML reading
# --------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 number and boolean rules: ``10:10`` stays a string (YAML 1.1 reads it as 610), and
    only true/false are booleans (YAML 1.1 also reads yes/no/on/off, so ``amp: yes`` would pass as true)."""


_YAML_1_1_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool")
_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag not in _YAML_1_1_TAGS]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."),
)


def _construct_mapping_no_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    """A mapping whose keys are unique: a key given twice is an error (PyYAML would keep the last silently)."""
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            line = seen.get(key)
        except TypeError:  # unhashable key: the default constructor reports it
            break
        if line is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first given on line {line})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line + 1
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping_no_duplicates)


def _yaml_load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


# --------------------------------------------------------------------------------------------
# Typed conversion
# --------------------------------------------------------------------------------------------


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


class _Sources(str):
    """The config file's name, plus the ``--set`` overrides: errors about a key name where it came from."""

    def __new__(cls, file: str, overrides: dict[str, str]) -> _Sources:
        obj = super().__new__(cls, file)
        obj.overrides = overrides
        return obj

    def for_key(self, key: str) -> str:
        key = key.split("[", 1)[0]
        for dotted, text in reversed(list(self.overrides.items())):
            if key == dotted or key.startswith(dotted + ".") or dotted.startswith(key + "."):
                return f"--set {text}"
        return str(self)


def _source_of(source: str, key: str) -> str:
    return source.for_key(key) if isinstance(source, _Sources) else source


def _convert(value: Any, tp: Any, key: str, source: str) -> Any:
    """Check and convert ``value`` to the annotated type ``tp``; ``key`` names it in errors."""
    where = f"{_source_of(source, key)}: key '{key}'"
    tp, checks = field_checks(tp)
    if checks:
        value = _convert(value, tp, key, source)
        for check in checks:
            problem = check.problem(value)
            if problem is not None:
                raise ConfigError(f"{where}: {problem}, got {value!r}")
        return value
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key, source)
            except ConfigError as exc:
                errors.append(str(exc))
        if len(errors) == 1 and type(None) in args:  # Optional[X]: X's own message, null also allowed
            raise ConfigError(errors[0].replace(", got ", " (or null), got ", 1))
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{where}: expected one of {list(allowed)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            hint = ""
            if isinstance(value, (int, float)) and not isinstance(value, bool) and "weight" in {
                f.name for f in dataclasses.fields(tp)
            }:  # a loss term's weight, given as a number before the terms became sections
                hint = f"; a term is a section now: set '{key}.weight' (and '{key}.enabled')"
            raise ConfigError(f"{where}: expected a mapping (section {tp.__name__}), got {value!r}{hint}")
        return from_dict(tp, value, prefix=key, source=source)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item_tp,) = get_args(tp)[:1] or (Any,)
        return [_convert(v, item_tp, f"{key}[{i}]", source) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported annotation {tp!r}")  # pragma: no cover - schema bug


# Keys that existed once and now live elsewhere: key -> what to write instead.
REMOVED_KEYS: dict[str, str] = {
    "data.timesteps": "set 'model.timesteps' instead (the student's T timesteps are the T event bins of a frame "
    "window; there is one T)",
}

# Flat distillation options that moved into their term's section: old key -> the new key(s).
MOVED_KEYS: dict[str, tuple[str, ...]] = {
    "distill.feature_layers": ("distill.feature.layers", "distill.similarity.layers"),
    "distill.similarity_source": ("distill.similarity.source",),
    "distill.spatial_align": ("distill.feature.align",),
    "distill.ot_cost": ("distill.feature.ot_cost",),
    "distill.ot_epsilon": ("distill.feature.ot_epsilon",),
    "distill.ot_iters": ("distill.feature.ot_iters",),
    "distill.temperature": ("distill.response.temperature", "distill.fourier.temperature"),
    "distill.temporal_layer": ("distill.temporal.layer",),
    "distill.fourier_mode": ("distill.fourier.mode",),
}


def upgrade_stored_config(data: dict[str, Any]) -> dict[str, Any]:
    """A config written by an earlier spiketrack (a checkpoint's or a run folder's) in today's layout.

    Stored configs are complete dumps, so every moved key is present: ``data.timesteps`` is dropped (merged into
    ``model.timesteps``), the flat distillation options (:data:`MOVED_KEYS`) go into their term's section, and
    tracking-loss weights given as numbers become ``{enabled, weight}`` sections (template_swap's weight 0 meant
    off). A config already in today's layout is returned unchanged. User files are not upgraded: their old keys
    are errors that name the new key (:data:`REMOVED_KEYS`)."""
    out = dict(data)
    if isinstance(out.get("data"), dict) and "timesteps" in out["data"]:
        out["data"] = {k: v for k, v in out["data"].items() if k != "timesteps"}
    distill = out.get("distill")
    if isinstance(distill, dict):
        distill = {k: (dict(v) if isinstance(v, dict) else v) for k, v in distill.items()}
        for old, new in MOVED_KEYS.items():
            name = old.split(".", 1)[1]
            if name in distill:
                value = distill.pop(name)
                for key in new:
                    distill.setdefault(key.split(".")[1], {})[key.split(".")[2]] = value
        out["distill"] = distill
    train = out.get("train")
    loss = train.get("loss") if isinstance(train, dict) else None
    if isinstance(loss, dict):
        loss = dict(loss)
        for name in ("focal", "giou", "l1"):
            if isinstance(loss.get(name), (int, float)) and not isinstance(loss.get(name), bool):
                loss[name] = {"enabled": True, "weight": float(loss[name])}
        swap = loss.get("template_swap")
        if isinstance(swap, (int, float)) and not isinstance(swap, bool):
            loss["template_swap"] = {"enabled": swap > 0, "weight": float(swap) if swap > 0 else 1.0}
        out["train"] = {**train, "loss": loss}
    return out


def _apply_preset(cls: type, data: dict[str, Any], prefix: str, source: str) -> dict[str, Any]:
    """``data`` over the preset it names (``distill.preset``): the preset's term settings first, then the keys the
    file gives itself, section by section."""
    presets = _PRESETS.get(cls)
    name = data.get("preset")
    if presets is None or name is None:
        return data
    key = f"{prefix}.preset" if prefix else "preset"
    if name not in presets:
        raise ConfigError(f"{_source_of(source, key)}: key '{key}': expected one of {sorted(presets)}, got {name!r}")
    merged: dict[str, Any] = {k: dict(v) if isinstance(v, dict) else v for k, v in presets[name].items()}
    for k, v in data.items():
        merged[k] = {**merged[k], **v} if isinstance(v, dict) and isinstance(merged.get(k), dict) else v
    return merged


_PRESETS: dict[type, dict[str, dict[str, Any]]] = {DistillConfig: DISTILL_PRESETS}


def from_dict(cls: type, data: dict[str, Any], prefix: str = "", source: str = "<dict>") -> Any:
    """Build dataclass ``cls`` from a mapping, checking every key and type."""
    hints = get_type_hints(cls, include_extras=True)
    names = {f.name for f in dataclasses.fields(cls)}
    data = _apply_preset(cls, data, prefix, source)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if full in REMOVED_KEYS:
            raise ConfigError(f"{source}: key '{full}' was removed: {REMOVED_KEYS[full]}")
        if full in MOVED_KEYS:
            new = " and ".join(f"'{k}'" for k in MOVED_KEYS[full])
            raise ConfigError(f"{_source_of(source, full)}: key '{full}' moved into its term's section: set {new}")
        if key not in names:
            known = ", ".join(sorted(names))
            raise ConfigError(f"{_source_of(source, full)}: unknown key '{full}' (known keys here: {known})")
        kwargs[key] = _convert(value, hints[key], full, source)
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain-data view of a config (for YAML dumps, checkpoints and logs)."""
    return dataclasses.asdict(cfg)


def _set_dotted(data: dict[str, Any], dotted: str, value: Any, source: str) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: key '{dotted}': '{part}' is not a section")
        node = child
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``key.sub=value`` and parse the value as YAML (``3`` -> int, ``[1,2]`` -> list)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}': expected KEY=VALUE, e.g. train.epochs=3")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override '{text}': empty key")
    try:
        value = _yaml_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override '{text}': value is not valid YAML ({exc})") from exc
    return key, value


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = _yaml_load(p.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not a UTF-8 text file (byte {exc.start}: {exc.reason}); save the YAML as UTF-8") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None)
        if mark is not None and problem:
            raise ConfigError(f"{p} [line {mark.line + 1}]: not valid YAML: {problem}") from None
        raise ConfigError(f"{p}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None, base: dict[str, Any] | None = None
) -> ExperimentConfig:
    """Load an experiment config from YAML (or ``base``, plain config data such as a checkpoint's, or the defaults
    when ``path`` is None) and apply overrides."""
    data = load_yaml(path) if path is not None else copy.deepcopy(base or {})
    given: dict[str, str] = {}
    for text in overrides or []:
        key, value = parse_override(text)
        _set_dotted(data, key, value, f"--set {text}")
        given[key] = text
    source = _Sources(str(path) if path is not None else "<defaults>", given)
    cfg = from_dict(ExperimentConfig, data, source=source)
    global _LAST_SOURCES
    _LAST_SOURCES = source
    return cfg


# Where the config of this process came from (the last load_config): lets a later check that names only a key
# (``key 'model.variant': unknown student variant``, raised where the model is built) name the file or --set too.
_LAST_SOURCES: _Sources | None = None
_KEY_FIRST = re.compile(r"^keys? '([A-Za-z0-9_.\[\]]+)'")


def name_config_source(message: str) -> str:
    """Prefix ``message`` (a ConfigError text that starts with ``key 'a.b'``) with the YAML file or ``--set``
    that gave the key, when a config was loaded in this process; other messages are returned unchanged."""
    m = _KEY_FIRST.match(message)
    if m is None or _LAST_SOURCES is None:
        return message
    return f"{_LAST_SOURCES.for_key(m.group(1))}: {message}"


def dump_config(cfg: ExperimentConfig, path: str | Path) -> None:
    """Write a config as YAML (the run folder keeps the exact config it ran with)."""
    from spiketrack.atomic import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))


__all__ = [
    "DISTILL_PRESETS",
    "MOVED_KEYS",
    "REMOVED_KEYS",
    "CorrelationKDConfig",
    "DataConfig",
    "DatasetSource",
    "DistillConfig",
    "EnergyConfig",
    "ExperimentConfig",
    "FeatureKDConfig",
    "FocalLossConfig",
    "FourierKDConfig",
    "GIoULossConfig",
    "L1LossConfig",
    "LossConfig",
    "ModelConfig",
    "NccConfig",
    "NeuronConfig",
    "ResponseKDConfig",
    "SimilarityKDConfig",
    "TemplateSwapConfig",
    "TemporalKDConfig",
    "TestTimeTuningConfig",
    "TrackingConfig",
    "TrainConfig",
    "dump_config",
    "from_dict",
    "load_config",
    "load_yaml",
    "name_config_source",
    "parse_override",
    "to_dict",
    "upgrade_stored_config",
]
