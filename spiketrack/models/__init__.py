"""Models: the ANN ViT teacher, the spiking MetaFormer student and their center heads.

``build_model(cfg)`` is the one entry point, over :data:`FAMILIES` (``cfg.model.kind`` -> the family's file):
``cfg.model.variant`` names a variant of the family's ``VARIANTS`` table (teacher: quickstart/tiny/small/base in
``teacher.py``; student: quickstart/tiny/base in ``spiking/student.py``), ``cfg.model.overrides`` changes
variant fields, the crop sizes come from ``cfg.data``, and the student's neurons from the neuron factory built
once from ``cfg.model.neuron``. Every family module provides ``VARIANTS``, ``build(cfg)`` and ``input_spec(cfg)``.

One call protocol for every model (see the contract in each class):

- ``encode_template(template) -> state`` (cached by the tracker), ``track(search, state, return_features=False)
  -> dict``, ``forward(template, search, return_features=False)`` = ``track(search, encode_template(template))``.
- ``input_spec`` (:class:`~spiketrack.data.inputs.InputSpec`): what the inputs are. Teacher: a dict of views
  ('events' [B, 2, H, W] counts, 'rgb' [B, 3, H, W] in [0, 1], 'voxel' [B, bins, H, W]); its state is its
  template inputs (a one-stream ViT sees them again in every ``track``; ``encodes_template = False``: encoding
  runs no layer). Student: event bins [T, B, 2, H, W]; its state a ``TemplateMemory``.
- ``feature_info`` (timm's habit): per block, ``{'num_chs': C, 'module': name}`` of the features that
  ``return_features`` returns.
- A model that supports several templates exposes ``merge_memories([state, ...]) -> state`` (the student).

With ``return_features``: teacher 'features' (per layer [B, Ns, C], search tokens of the 'events' view) and
'attentions' (per layer [B, heads, Ns, Ns], the search->search block of the softmax attention); student
'features' (per transformer block [B, Ns, C], averaged over T) and 'similarity' (per block [B, heads, Ns, Ns],
spike Q K^T averaged over T); with xcorr both 'correlation' (the head's input [B, Hf*Wf, C]). ``return_features``
is True (every extra output), False, or a collection of output names: only those are computed and returned
(:func:`wants`; the trainer asks for what the enabled distillation terms need, ``DistillLoss.outputs``).

A trained model is rebuilt from a checkpoint (its stored config) by :mod:`spiketrack.models.checkpoint`.

Outputs of both: 'score_map' [B, 1, Hf, Wf] (sigmoid), 'size_map' [B, 2, Hf, Wf], 'offset_map'
[B, 2, Hf, Wf] (cells), 'pred_boxes' [B, 4] (cx, cy, w, h normalised to the search crop).

Energy-counter notes: integer-valued neurons output count / D and carry ``levels`` (D);
``SpikeMatMul`` modules are the spike products: in attention ``kv_matmul`` (K^T V, spike x spike),
``qkv_matmul`` (Q x (K^T V), spike x integer count), ``sim_matmul`` (only with return_features); in the
memory ``memory_matmul`` (K^T V) and ``retrieve_matmul`` (Q x memory slots, spike x integer count).
"""

from __future__ import annotations

import importlib
from collections.abc import Collection
from types import ModuleType
from typing import TYPE_CHECKING, Any

from torch import nn

from spiketrack.errors import ConfigError

if TYPE_CHECKING:
    from spiketrack.data.inputs import InputSpec

# family name (cfg.model.kind) -> the family's file (its VARIANTS table, build(cfg), input_spec(cfg)); imported on use
FAMILIES: dict[str, str] = {
    "teacher": "spiketrack.models.teacher",
    "student": "spiketrack.models.spiking.student",
}


def _family(cfg: Any) -> ModuleType:
    kind = cfg.model.kind
    if kind not in FAMILIES:
        raise ConfigError(f"key 'model.kind': expected one of {sorted(FAMILIES)}, got {kind!r}")
    return importlib.import_module(FAMILIES[kind])


def wants(return_features: bool | Collection[str], name: str) -> bool:
    """Whether a ``return_features`` request (True: every extra output, False: none, or a collection of output
    names) asks for the output ``name`` ('features', 'attentions', 'similarity', 'correlation')."""
    if isinstance(return_features, bool):
        return return_features
    return name in return_features


def build_model(cfg: Any) -> nn.Module:
    """The model of ``cfg`` (an ExperimentConfig), freshly initialised (teacher: pretrained ViT if set).

    Sizes whose parameters or one forward pass at batch 1 cannot fit in memory are refused first
    (:func:`spiketrack.models.memory_check.check_memory`).
    """
    from spiketrack.models.memory_check import check_memory

    family = _family(cfg)
    check_memory(cfg)
    return family.build(cfg)


def input_spec(cfg: Any) -> InputSpec:
    """What the model of ``cfg`` eats (its ``input_spec``), without building it."""
    return _family(cfg).input_spec(cfg)


__all__ = ["FAMILIES", "build_model", "input_spec", "wants"]
