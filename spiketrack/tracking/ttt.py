"""Test-time tuning with LoRA (HDETrack V2, Wang et al., arXiv:2502.05574, §3.4), per sequence.

The tracker hands :class:`TestTimeTuner` each of the first n = ``tracking.ttt.frames`` tracked frames (its search
input, search crop and tracked box). After frame n their boxes are pseudo-labels and LoRA adapters
(:mod:`spiketrack.models.lora`, r = 16, alpha = 32 on attention qkv/proj and MLP fc1/fc2 linears) are tuned with
SGD (lr 0.01, ``epochs`` = 5 steps, each over all n frames as one batch); only adapter parameters change. The
tuned adapters are then merged into the weights they adapt (W <- W + (alpha/r) B A) and the wrappers removed, so
every later frame costs what the untuned model costs; :meth:`TestTimeTuner.finish` (the tracker's ``finish``,
called by the runner when the sequence ends, and again by the next ``initialize``) copies the original weights
back, so the next sequence starts from the trained weights.

Checked at start-up (:func:`check_ttt_config` when the tracker is built, :func:`check_ttt_frames` before the first
sequence): value ranges, target names that exist, a model with at least one adaptable linear (the deployable
student is conv-only and is refused), sequences long enough to collect the n pseudo-labels.

Loss (our reading of §3.4): each step builds two augmented versions of the first template (event-sparsity
augmentation: every template event dropped with probability ``drop_events``) and runs both on the n search
inputs; per version L1 + GIoU of the predicted box against the pseudo-label (OSTrack's box losses, weights 5 and
2 as ``train.loss``), plus ``consistency`` x L1 between the two versions' score maps (the prediction must not
depend on which events the sensor happened to fire).

Model mode stays ``eval`` (BN statistics frozen, as in tracking); spiking neurons train through their surrogate
gradients. Energy: the tuning's forward passes are counted exactly under the meter kind ``test_time_tuning``; the
backward pass is charged by the meter (see :mod:`spiketrack.energy.meter`). The re-encoded template memory after
tuning is counted under the same kind.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import generalized_box_iou_loss

from spiketrack.config import TestTimeTuningConfig
from spiketrack.data.inputs import InputSpec, ModelInput
from spiketrack.errors import ConfigError
from spiketrack.models.lora import (
    DEFAULT_TARGETS,
    add_lora,
    lora_parameters,
    merge_lora,
    remove_lora,
    restore_weights,
    target_names,
)
from spiketrack.tracking.meter import TUNING_KIND

L1_WEIGHT, GIOU_WEIGHT = 5.0, 2.0  # OSTrack box-loss weights (Ye et al., ECCV 2022), as train.loss


@dataclass
class PseudoLabel:
    """One tracked frame: its search input (batch 1) and the tracked box in that crop (cx, cy, w, h in [0, 1])."""

    search: ModelInput
    box: np.ndarray


def _cxcywh_to_xyxy(b: torch.Tensor) -> torch.Tensor:
    return torch.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2], 1)


def check_ttt_config(cfg: TestTimeTuningConfig, model: nn.Module | None = None) -> list[str]:
    """Check ``tracking.ttt`` (ConfigError naming the key); with ``model``, also that it has linears to adapt.

    Returns the qualified names of the layers that get adapters (empty without ``model``).
    """
    ranges = (
        ("frames", cfg.frames >= 1, "an integer >= 1"), ("epochs", cfg.epochs >= 0, "an integer >= 0"),
        ("rank", cfg.rank >= 1, "an integer >= 1"), ("alpha", cfg.alpha > 0, "a number > 0"),
        ("lr", cfg.lr > 0, "a learning rate > 0"), ("momentum", 0 <= cfg.momentum < 1, "a number in [0, 1)"),
        ("drop_events", 0 <= cfg.drop_events < 1, "a probability in [0, 1)"),
        ("consistency", cfg.consistency >= 0, "a weight >= 0"),
    )
    for key, ok, expected in ranges:
        if not ok:
            raise ConfigError(f"key 'tracking.ttt.{key}': expected {expected}, got {getattr(cfg, key)!r}")
    unknown = [t for t in cfg.targets if t not in DEFAULT_TARGETS]
    if unknown or not cfg.targets:
        raise ConfigError(f"key 'tracking.ttt.targets': expected names among {list(DEFAULT_TARGETS)} (attention qkv/q/"
                          f"k/v/proj and MLP fc1/fc2 linears), got {list(cfg.targets)}")
    if model is None:
        return []
    names = target_names(model, cfg.targets)
    if not names:
        raise ConfigError(
            f"key 'tracking.ttt': the model ({type(model).__name__}) has no attention or MLP linear named "
            f"{list(cfg.targets)} to adapt (the deployable student is conv-only); set tracking.ttt.enabled=false"
        )
    return names


def check_ttt_frames(cfg: TestTimeTuningConfig, lengths: dict[str, int]) -> None:
    """Every sequence (name -> frame count) must have ``frames`` tracked frames after the first (the pseudo-labels);
    a shorter one would never be tuned, so it is refused before tracking starts, naming the shortest."""
    if not lengths:
        return
    name = min(lengths, key=lambda n: lengths[n])
    if lengths[name] - 1 < cfg.frames:
        raise ConfigError(
            f"key 'tracking.ttt.frames': {cfg.frames} pseudo-label frames, but sequence {name!r} has only "
            f"{lengths[name] - 1} tracked frames after the first; lower tracking.ttt.frames"
        )


class TestTimeTuner:
    """Collects pseudo-labels, tunes LoRA adapters once per sequence, merges them into the weights, and restores
    the original weights at the end (module docstring)."""

    __test__ = False  # not a pytest class

    def __init__(self, model: nn.Module, cfg: TestTimeTuningConfig) -> None:
        self.targets = check_ttt_config(cfg, model)
        self.model = model
        self.cfg = cfg
        self.labels: list[PseudoLabel] = []
        self.tuned = False
        self.original: dict[str, torch.Tensor] = {}  # weights before the merged adapters (restored by finish)
        self.losses: list[float] = []  # loss of each SGD step (for inspection)
        self.rng = np.random.default_rng(cfg.seed)
        # the layout of the model's inputs: how the n pseudo-labelled inputs form one batch (a model without a
        # spec: batch first)
        self.inputs: InputSpec = getattr(model, "input_spec", None) or InputSpec()

    @property
    def due(self) -> bool:
        """True once the n pseudo-labels are collected and the adapters are not tuned yet."""
        return not self.tuned and len(self.labels) >= self.cfg.frames

    def start(self, seed: int) -> None:
        """A new sequence: forget pseudo-labels, remove adapters left by an earlier one, reseed the augmentations."""
        self.finish()
        self.labels, self.tuned, self.losses = [], False, []
        self.rng = np.random.default_rng([self.cfg.seed, int(seed)])

    def add(self, search: ModelInput, box_in_crop: np.ndarray) -> None:
        """Record one tracked frame (until n are collected)."""
        if not self.tuned and len(self.labels) < self.cfg.frames:
            self.labels.append(PseudoLabel(search, np.asarray(box_in_crop, dtype=np.float64)))

    def drop(self) -> Callable[[Any], Any]:
        """The event-sparsity augmentation: keep each event with probability 1 - ``drop_events``."""
        keep, rng = 1.0 - self.cfg.drop_events, self.rng
        return lambda ev: ev[rng.random(len(ev)) < keep]

    def tune(
        self,
        make_template: Callable[[Callable[[Any], Any] | None], ModelInput],
        measure: Callable[[str], AbstractContextManager[Any]],
    ) -> None:
        """Add adapters and tune them on the pseudo-labels; ``make_template(thin)`` builds the first template's
        input (batch 1) with an event-dropping ``thin``; ``measure(kind)`` wraps each model call (the meter)."""
        model, n = self.model, len(self.labels)
        add_lora(model, self.targets, self.cfg.rank, self.cfg.alpha)
        params = lora_parameters(model)
        frozen = [p for p in model.parameters() if p.requires_grad and all(p is not q for q in params)]
        for p in frozen:
            p.requires_grad_(False)
        try:
            search = self.inputs.cat([lab.search for lab in self.labels])
            device = params[0].device if params else torch.device("cpu")
            target = torch.as_tensor(np.stack([lab.box for lab in self.labels]), dtype=torch.float32, device=device)
            opt = torch.optim.SGD(params, lr=self.cfg.lr, momentum=self.cfg.momentum)
            for _ in range(self.cfg.epochs):
                templates = [self.inputs.cat([make_template(self.drop()) for _ in range(n)]) for _ in (0, 1)]
                with measure(TUNING_KIND), torch.enable_grad():
                    outs = [model.track(search, model.encode_template(t)) for t in templates]
                    loss = sum(self._box_loss(o["pred_boxes"], target) for o in outs) / 2
                    loss = loss + self.cfg.consistency * F.l1_loss(outs[0]["score_map"], outs[1]["score_map"])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                opt.step()
                self.losses.append(float(loss.detach()))
        finally:
            for p in frozen:
                p.requires_grad_(True)
            for p in params:
                p.requires_grad_(False)
        self.original = merge_lora(model)  # later frames run the plain layers with the tuned weights
        self.tuned, self.labels = True, []

    @staticmethod
    def _box_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """pred, target [n, 4] (cx, cy, w, h) -> L1 * 5 + GIoU * 2 (OSTrack weights)."""
        giou = generalized_box_iou_loss(_cxcywh_to_xyxy(pred), _cxcywh_to_xyxy(target), reduction="mean")
        return L1_WEIGHT * F.l1_loss(pred, target) + GIOU_WEIGHT * giou

    def finish(self) -> None:
        """Undo the sequence's tuning: adapters left by an interrupted tuning are removed and merged weights get
        their original values back, so the model is exactly as before the sequence."""
        remove_lora(self.model)
        restore_weights(self.model, self.original)
        self.original = {}


__all__ = ["TUNING_KIND", "PseudoLabel", "TestTimeTuner", "check_ttt_config", "check_ttt_frames"]
