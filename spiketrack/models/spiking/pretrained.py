"""``model.pretrained`` for the student: start from local weights (never downloaded).

Accepted files (``torch.load``, ``weights_only=True``: no code runs):

- a spiketrack checkpoint (``format='spiketrack-checkpoint'``, e.g. a trained or distilled student): its ``model``
  state dict; a checkpoint of another kind (a teacher) is refused;
- a plain state dict of the student (name -> tensor), or one under ``'model'`` / ``'state_dict'`` / ``'net'``; a
  DDP ``module.`` prefix is dropped;
- the weights the field uses, recognised by their names (:data:`FOREIGN_FORMATS`): Spike-driven Transformer V3 /
  E-SpikeFormer ImageNet weights (Yao et al., TPAMI 2025; BICLab/Spike-Driven-Transformer-V3, ``models.py``),
  SDTrack checkpoints (Shan et al., arXiv:2503.08703; YmShan/SDTrack: ``backbone.`` + ``box_head.``) and SpikeTrack
  checkpoints (Zhang et al., arXiv:2602.23963; faicaiwawa/SpikeTrack: ``encoder.`` + ``decoder.``).

Foreign weights go through a key map (:data:`CONV_BLOCK_MAP`, :data:`ATTENTION_BLOCK_MAP`, :func:`foreign_rules`,
built from the module names and shapes of those repositories' public code): each of our conv+BN / linear+BN
layers takes the corresponding conv (1x1 convs and 1-wide Conv1d become linear weights) and BN; their conv biases
fold into the BN's running mean (BN(Wx + b) = BN'(Wx) with mu' = mu - b, exact); the RGB encoding conv becomes a
2-polarity one with timm's ``adapt_input_conv``. Where the architectures differ the map says so instead of
guessing: the value and projection convs of their attention are 4x wider (``lamda_ratio`` 4), their stage-4
downsampling is a 3x3 conv where ours is a token projection, their transformer blocks carry a SepConv ours lack,
their memory-retrieval modules differ from ours — such tensors are reported as mismatched (shape) or unexpected,
and our layers without a counterpart stay at their initialisation (missing).

Loading is partial and said out loud: the :class:`StudentLoadReport` lists loaded, missing (left at their
initialisation; ``num_batches_tracked`` counters of foreign loads are not listed), unexpected (unused) and, for
foreign weights, mismatched keys, and the format recognised; it is logged and kept as ``model.pretrained_report``.
With our own names a tensor whose shape differs, a file that fits no key at all, or a missing file is a
:class:`~spiketrack.errors.CheckpointError` naming the file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spiketrack.errors import CheckpointError
from spiketrack.models.torch_files import load_torch_file

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "spiketrack-checkpoint"  # the field models/checkpoint.py writes and checks


@dataclass
class StudentLoadReport:
    """What loading ``model.pretrained`` into the student did."""

    path: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # student keys the file did not provide (kept at init)
    unexpected: list[str] = field(default_factory=list)  # file keys with no place in the student (unused)
    mismatched: list[str] = field(default_factory=list)  # foreign tensors whose shape fits no layer ("ours: why")
    format: str = "spiketrack"  # the naming recognised: spiketrack or a FOREIGN_FORMATS key

    def summary(self, shown: int = 8) -> str:
        def listed(keys: list[str]) -> str:
            if not keys:
                return "none"
            more = f" ... (+{len(keys) - shown})" if len(keys) > shown else ""
            return ", ".join(keys[:shown]) + more

        foreign = f" ({self.format} names)" if self.format != "spiketrack" else ""
        mismatched = f"; mismatched {len(self.mismatched)} ({listed(self.mismatched)})" if self.mismatched else ""
        return (
            f"{self.path}{foreign}: loaded {len(self.loaded)} tensors; missing {len(self.missing)} "
            f"({listed(self.missing)}); unexpected {len(self.unexpected)} ({listed(self.unexpected)}){mismatched}"
        )


def read_student_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The student state dict stored in ``path`` (see the module docstring); CheckpointError naming the file."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"pretrained weights not found: {p} (key 'model.pretrained'; weights are never downloaded)")
    raw: Any = load_torch_file(p, "pretrained weights file (key 'model.pretrained')")
    if isinstance(raw, dict) and raw.get("format") == CHECKPOINT_FORMAT:
        if raw.get("kind") not in (None, "student"):
            raise CheckpointError(f"{p} [kind]: a {raw.get('kind')!r} checkpoint cannot initialise the student")
        raw = raw.get("model")
    for key in ("model", "state_dict", "net"):  # 'net': pytracking-style checkpoints (SDTrack, SpikeTrack)
        if isinstance(raw, dict) and isinstance(raw.get(key), dict):
            raw = raw[key]
    if not isinstance(raw, dict) or not raw or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise CheckpointError(f"{p}: expected a state dict (name -> tensor), a spiketrack checkpoint, or one under 'model'")
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in raw.items()}


# --------------------------------------------------------------------------------------------- foreign key maps
@dataclass(frozen=True)
class ForeignFormat:
    """Where a checkpoint family keeps its SDT-V3 backbone and (trackers) its centre head."""

    backbone: str  # key prefix of the SDT-V3 backbone modules
    head: str | None = None  # key prefix of the OSTrack-style centre head (conv{1..5}_{ctr,size,offset})
    head_conv: int = 0  # index of the conv inside each head Sequential ...
    head_bn: int = 1  # ... and of its BN
    source: str = ""


FOREIGN_FORMATS: dict[str, ForeignFormat] = {
    "sdt_v3": ForeignFormat("", source="Spike-driven Transformer V3 / E-SpikeFormer ImageNet weights "
                                       "(BICLab/Spike-Driven-Transformer-V3, SDT_V3/Classification/Model_Base/models.py)"),
    "sdtrack": ForeignFormat("backbone.", "box_head.", head_conv=1, head_bn=2,  # Sequential(MultiSpike, Conv2d, BN)
                             source="SDTrack (YmShan/SDTrack, lib/models/SDTrack, lib/models/layers/head.py)"),
    "spiketrack": ForeignFormat("encoder.", "decoder.", head_conv=0, head_bn=1,  # Sequential(Conv2d, BN)
                                source="SpikeTrack (faicaiwawa/SpikeTrack, lib/models/spiketrack/sdtv3.py, decoder.py)"),
}
_MARKER = "downsample1_1.encode_conv.weight"  # the SDT-V3 encoding conv: present in every format above

# Our conv block <- their MS_ConvBlock_spike_SepConv: (our SeqConvBN, their conv, their BN)
CONV_BLOCK_MAP = (
    ("mixer.pw1", "Conv.pwconv1.0", "Conv.pwconv1.1"),
    ("mixer.dw", "Conv.dwconv.0", "Conv.dwconv.1"),
    ("mixer.pw2", "Conv.pwconv2.0", "Conv.pwconv2.1"),
    ("mlp.c1", "conv1", "bn1"),
    ("mlp.c2", "conv2", "bn2"),
)
# Our transformer block <- their MS_Block_Spike_SepConv (its 'conv' SepConv has no counterpart here):
# (our SeqLinearBN, their 1x1 conv / Conv1d, their BN)
ATTENTION_BLOCK_MAP = (
    ("attn.q", "attn.q_conv.0", "attn.q_conv.1"),
    ("attn.k", "attn.k_conv.0", "attn.k_conv.1"),
    ("attn.v", "attn.v_conv.0", "attn.v_conv.1"),
    ("attn.proj", "attn.proj_conv.0", "attn.proj_conv.1"),
    ("mlp.fc1", "mlp.fc1_conv", "mlp.fc1_bn"),
    ("mlp.fc2", "mlp.fc2_conv", "mlp.fc2_bn"),
)
HEAD_BRANCHES = (("score", "ctr"), ("size", "size"), ("offset", "offset"))  # ours <- their centre-head branch


@dataclass(frozen=True)
class Rule:
    """One of our weight layers <- one foreign conv (+ BN). kind: 'conv' (conv + BN), 'linear' (1x1 conv + BN as a
    linear + BN), 'input' (the encoding conv: input channels adapted), 'plain' (weight and bias copied)."""

    weight: str  # our weight key
    bn: str | None  # our BN prefix
    their: str  # their conv prefix (``.weight``, optional ``.bias``)
    their_bn: str | None
    kind: str


def detect_format(keys: Any) -> str | None:
    """The FOREIGN_FORMATS name whose backbone prefix fits ``keys`` (None: our own names)."""
    for name, fmt in FOREIGN_FORMATS.items():
        if f"{fmt.backbone}{_MARKER}" in keys:
            return name
    return None


def foreign_rules(model: nn.Module, fmt: ForeignFormat) -> list[Rule]:
    """The key map of the MetaFormer student ``model`` from ``fmt`` (module docstring), for the blocks both have."""
    from spiketrack.models.spiking.metaformer import SpikingMetaFormer

    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, SpikingMetaFormer):
        raise CheckpointError(f"{type(model).__name__}: foreign (SDT-V3 family) weights map onto the Spiking "
                              "MetaFormer student only")
    p = fmt.backbone
    rules = [Rule("backbone.stem.conv.conv.weight", "backbone.stem.conv.bn", f"{p}downsample1_1.encode_conv",
                  f"{p}downsample1_1.encode_bn", "input")]
    # their stage-1 block at half width (ConvBlock1_1) has no counterpart: our stride-2 stem feeds down1 directly
    stages = (("down1", "downsample1_2", "stage1", ["ConvBlock1_2.0"]),
              ("down2", "downsample2", "stage2", ["ConvBlock2_1.0", "ConvBlock2_2.0"]))
    for down, their_down, stage, blocks in stages:
        rules.append(Rule(f"backbone.{down}.conv.conv.weight", f"backbone.{down}.conv.bn", f"{p}{their_down}.encode_conv",
                          f"{p}{their_down}.encode_bn", "conv"))
        for j, their_block in enumerate(blocks[: len(getattr(backbone, stage))]):
            rules += [Rule(f"backbone.{stage}.{j}.{ours}.conv.weight", f"backbone.{stage}.{j}.{ours}.bn",
                           f"{p}{their_block}.{conv}", f"{p}{their_block}.{bn}", "conv") for ours, conv, bn in CONV_BLOCK_MAP]
    rules.append(Rule("backbone.down3.conv.conv.weight", "backbone.down3.conv.bn", f"{p}downsample3.encode_conv",
                      f"{p}downsample3.encode_bn", "conv"))
    n3 = int(next(iter(backbone.transitions)))  # blocks before the stage-4 width change
    pairs = [(i, f"block3.{i}") for i in range(n3)] + [(n3 + j, f"block4.{j}") for j in range(len(backbone.blocks) - n3)]
    for i, their_block in pairs:
        rules += [Rule(f"backbone.blocks.{i}.{ours}.linear.weight", f"backbone.blocks.{i}.{ours}.bn",
                       f"{p}{their_block}.{conv}", f"{p}{their_block}.{bn}", "linear") for ours, conv, bn in ATTENTION_BLOCK_MAP]
    rules.append(Rule(f"backbone.transitions.{n3}.proj.linear.weight", f"backbone.transitions.{n3}.proj.bn",
                      f"{p}downsample4.encode_conv", f"{p}downsample4.encode_bn", "linear"))
    if fmt.head is not None:
        h = fmt.head
        for ours, theirs in HEAD_BRANCHES:
            rules += [Rule(f"head.{ours}.convs.{i}.weight", f"head.{ours}.norms.{i}", f"{h}conv{i + 1}_{theirs}.{fmt.head_conv}",
                           f"{h}conv{i + 1}_{theirs}.{fmt.head_bn}", "conv") for i in range(4)]
            rules.append(Rule(f"head.{ours}.proj.weight", None, f"{h}conv5_{theirs}", None, "plain"))
    return rules


def _convert_weight(rule: Rule, weight: torch.Tensor, own: torch.Tensor) -> torch.Tensor | None:
    """Their weight in our layout, or None when it cannot take our shape."""
    if rule.kind == "linear":
        if weight.dim() < 2 or any(s != 1 for s in weight.shape[2:]):
            return None  # a k x k conv is not a linear layer
        weight = weight.reshape(weight.shape[0], weight.shape[1])
    elif rule.kind == "input" and weight.dim() == 4 and weight.shape[1] != own.shape[1]:
        from timm.models import adapt_input_conv

        weight = adapt_input_conv(int(own.shape[1]), weight)  # RGB -> 2 polarity channels (timm's rule)
    return weight if tuple(weight.shape) == tuple(own.shape) else None


def map_foreign(source: dict[str, torch.Tensor], own: dict[str, torch.Tensor], rules: list[Rule],
                report: StudentLoadReport) -> dict[str, torch.Tensor]:
    """Our state-dict entries from foreign ``source`` through ``rules``; fills the report's unexpected and
    mismatched lists (loaded and missing are the caller's)."""
    target: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for rule in rules:
        w_key = f"{rule.their}.weight"
        if w_key not in source or rule.weight not in own:
            continue
        bias = source.get(f"{rule.their}.bias")
        bn_keys = {} if rule.their_bn is None else {
            s: f"{rule.their_bn}.{s}" for s in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
            if f"{rule.their_bn}.{s}" in source}
        used |= {w_key, f"{rule.their}.bias", *bn_keys.values()}
        weight = _convert_weight(rule, source[w_key], own[rule.weight])
        bn_fits = rule.bn is None or all(
            source[k].shape == own[f"{rule.bn}.{s}"].shape for s, k in bn_keys.items() if s != "num_batches_tracked")
        if weight is None or not bn_fits:
            report.mismatched.append(f"{rule.weight} <- {w_key} {tuple(source[w_key].shape)}, expects "
                                     f"{tuple(own[rule.weight].shape)}")
            continue
        target[rule.weight] = weight
        if rule.kind == "plain":
            own_bias = rule.weight.removesuffix(".weight") + ".bias"
            if bias is not None and own_bias in own:
                target[own_bias] = bias
            continue
        assert rule.bn is not None
        for s, k in bn_keys.items():
            target[f"{rule.bn}.{s}"] = source[k]
        if bias is not None and "running_mean" in bn_keys:  # BN(Wx + b) = BN'(Wx) with mu' = mu - b
            target[f"{rule.bn}.running_mean"] = source[bn_keys["running_mean"]] - bias
    report.unexpected = sorted(k for k in source if k not in used)
    return target


def load_student_weights(model: nn.Module, path: str | Path) -> StudentLoadReport:
    """Load ``path`` into ``model`` (partial: missing keys keep their initialisation); returns and logs the report."""
    source = read_student_state(path)
    own = model.state_dict()
    report = StudentLoadReport(path=str(path))
    fmt = detect_format(source)
    if fmt is not None:
        report.format = fmt
        target = map_foreign(source, own, foreign_rules(model, FOREIGN_FORMATS[fmt]), report)
        if not target:
            raise CheckpointError(f"{path}: {fmt} weights, but no tensor fits this student (is model.variant that "
                                  f"of the weights? {len(report.mismatched)} shape mismatches)")
        model.load_state_dict(target, strict=False)
        report.loaded = sorted(target)
        report.missing = sorted(k for k in own if k not in target and not k.endswith("num_batches_tracked"))
        log.warning("model.pretrained %s", report.summary())
        return report
    target: dict[str, torch.Tensor] = {}
    for key, value in source.items():
        if key not in own:
            report.unexpected.append(key)
            continue
        if own[key].shape != value.shape:
            raise CheckpointError(
                f"{path} [{key}]: shape {tuple(value.shape)}, the student expects {tuple(own[key].shape)} "
                "(is model.variant / model.overrides that of the weights?)"
            )
        target[key] = value
    if not target:
        raise CheckpointError(
            f"{path}: no key fits the student (first keys: {sorted(source)[:3]}); expected the student's own names"
        )
    model.load_state_dict(target, strict=False)
    report.loaded = sorted(target)
    report.missing = sorted(k for k in own if k not in target)
    (log.warning if report.missing or report.unexpected else log.info)("model.pretrained %s", report.summary())
    return report


__all__ = [
    "ATTENTION_BLOCK_MAP",
    "CONV_BLOCK_MAP",
    "FOREIGN_FORMATS",
    "ForeignFormat",
    "Rule",
    "StudentLoadReport",
    "detect_format",
    "foreign_rules",
    "load_student_weights",
    "map_foreign",
    "read_student_state",
]
