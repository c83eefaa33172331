"""Models: the ANN ViT teacher, the spiking MetaFormer student and their center heads.

``build_model(cfg)`` builds either from an :class:`~spiketrack.config.ExperimentConfig`:
``cfg.model.kind`` ('teacher' | 'student') picks the family, ``cfg.model.variant`` a named variant of the
family's ``VARIANTS`` dict (teacher: quickstart/tiny/small/base in ``teacher.py``; student:
quickstart/tiny/base in ``spiking/student.py``), ``cfg.model.overrides`` changes variant fields, and the
crop sizes come from ``cfg.data``. Call protocol (see the contract in each class):

- teacher: ``model(template: dict, search: dict, return_features=False) -> dict``; inputs by view
  ('events' [B, 2, H, W] counts, 'rgb' [B, 3, H, W] in [0, 1], 'voxel' [B, bins, H, W]).
  With ``return_features``: 'features' (per layer [B, Ns, C], search tokens of the 'events' view) and
  'attentions' (per layer [B, heads, Ns, Ns], the search->search block of the softmax attention).
- student: ``encode_template(bins) -> TemplateMemory``, ``merge_memories([...]) -> TemplateMemory``,
  ``track(search_bins, memory, return_features=False) -> dict``, ``forward(template_bins, search_bins)``,
  ``reset_state()``; bins are [T, B, 2, H, W] polarity counts. With ``return_features``: 'features'
  (per transformer block [B, Ns, C], averaged over T) and 'similarity' (per block [B, heads, Ns, Ns],
  spike Q K^T averaged over T).

A trained model is rebuilt from a checkpoint (its stored config) by :mod:`spiketrack.models.checkpoint`.

Outputs of both: 'score_map' [B, 1, Hf, Wf] (sigmoid), 'size_map' [B, 2, Hf, Wf], 'offset_map'
[B, 2, Hf, Wf] (cells), 'pred_boxes' [B, 4] (cx, cy, w, h normalised to the search crop).

Energy-counter notes: integer-valued neurons output count / D and carry ``levels`` (D);
``SpikeMatMul`` modules are the spike products: in attention ``kv_matmul`` (K^T V, spike x spike),
``qkv_matmul`` (Q x (K^T V), spike x integer count), ``sim_matmul`` (only with return_features); in the
memory ``memory_matmul`` (K^T V) and ``retrieve_matmul`` (Q x memory slots, spike x integer count).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from spiketrack.errors import ConfigError


def build_model(cfg: Any) -> nn.Module:
    """Teacher or student of ``cfg`` (an ExperimentConfig), freshly initialised (teacher: pretrained ViT if set)."""
    kind = cfg.model.kind
    if kind == "teacher":
        from spiketrack.models.teacher import build_teacher

        return build_teacher(cfg)
    if kind == "student":
        from spiketrack.models.spiking.student import build_student

        return build_student(cfg)
    raise ConfigError(f"key 'model.kind': expected 'teacher' or 'student', got {kind!r}")


__all__ = ["build_model"]
