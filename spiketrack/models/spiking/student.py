"""Spiking MetaFormer tracker (student): backbone + memory retrieval + spiking center head.

Template and search run through the same backbone in separate calls. ``encode_template`` stops after the
last retrieval point and returns a :class:`TemplateMemory` (cached by the tracker); ``track`` runs the
search branch, queries the memory after the configured transformer blocks and decodes boxes from the
spiking center head. The T timesteps are T temporal bins of the frame's event window
(``[T, B, 2, H, W]`` polarity counts). Every call starts by resetting all neuron states, so calls are
independent; ``reset_state`` does the same explicitly.

Asymmetric timesteps (SpikeTrack's "asymmetric timestep expansion", Zhang et al., arXiv:2602.23963): the
template branch may run T_t = ``template_timesteps`` steps (once per sequence) and the search branch T_s =
``timesteps`` (every frame). Two ways (``template_steps``, config ``model.template_steps``):

- ``bins`` (default): the T_t steps are T_t bins of one template window. A memory of T_t steps is reduced to one
  step by its mean over the template timesteps (``[T_t, ...] -> [1, ...]``), which every search step queries
  (broadcast over T_s). The mean keeps a per-step scale (a search step sees the memory of an average template
  step), so a model trained with T_t = T_s keeps its retrieval range. With T_t = T_s the memory keeps its T steps
  and step t queries step t, as before.
- ``templates``: as SpikeTrack's code does it. The T_t steps are T_t stacked template crops (one bin each: the
  first template and later ones, :func:`stack_templates`), the search runs T = 1. Learned position embeddings per
  template step (and one for the search) are added before every transformer block and every retrieval
  (:class:`StepPositions`); the memory keeps one K^T V per template step, the one-step search query retrieves from
  each, and a gate fuses the T_t retrieved steps into one (:class:`StepGate`). A single template crop (tracking's
  first frame) is repeated to fill the T_t steps, as SpikeTrack's tracker starts.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import torch
from torch import nn

from spiketrack.data.inputs import InputSpec
from spiketrack.errors import ConfigError
from spiketrack.models import wants
from spiketrack.models.correlation import (
    CENTRE_SHARE,
    XCORR_DEFAULTS,
    FixedConv2d,
    InputNcc,
    TemplateCorrelation,
    centre_kernel,
    check_head_stride,
    check_share,
    input_score_prior,
    kernel_normaliser,
    normalise_kernel,
    template_kernel,
    to_head_grid,
)
from spiketrack.models.heads import SpikingCenterHead, TimeAveragedCenterHead, init_score_bias
from spiketrack.models.spiking.bins import check_event_bins, time_mean_tokens
from spiketrack.models.spiking.convsiamese import SpikingConvSiamese
from spiketrack.models.spiking.deployable import DeployableStudent
from spiketrack.models.spiking.memory import MemoryRetrieval, StepPositions, TemplateMemory
from spiketrack.models.spiking.metaformer import SpikingMetaFormer
from spiketrack.models.spiking.neurons import NeuronFactory, neuron_factory, reset_neurons

# Named variants of the family. tiny/base follow SDTrack's Tiny/Base widths (Shan et al., 2025: SDTrack-Tiny
# 19.61 M parameters); 'quickstart' is a small model for the 2-core CPU demo (64/128 crops).
# memory_points: transformer-block indices after which the search branch queries the template memory.
# XCORR_DEFAULTS (xcorr, xcorr_kernel, xcorr_kernel_norm; models/correlation.py) are fields of the metaformer
# variants too: with xcorr the head sees the depthwise correlation of the final search spikes with the template's firing rates pooled to an
# xcorr_kernel^2 kernel (spiking SiamRPN++-style correlation, charged as SOPs) instead of the search tokens, so a
# box needs a template match. Off by default (memory retrieval alone).
VARIANTS: dict[str, dict[str, Any]] = {
    "quickstart": dict(
        dims=[16, 32, 64, 96], conv_depths=[1, 1], depths=[2, 1], heads=4, mlp_ratio=2.0, conv_ratio=2.0,
        memory_points=[1, 2], refine_steps=1, head_channels=32, sepconv_kernel=3, stem_kernel=3,
    ),
    "tiny": dict(
        dims=[64, 128, 256, 360], conv_depths=[2, 4], depths=[6, 2], heads=8, mlp_ratio=4.0, conv_ratio=4.0,
        memory_points=[3, 5, 7], refine_steps=1, head_channels=256, sepconv_kernel=7, stem_kernel=7,
    ),
    "base": dict(
        dims=[128, 256, 512, 768], conv_depths=[2, 4], depths=[9, 3], heads=8, mlp_ratio=4.0, conv_ratio=4.0,
        memory_points=[5, 8, 11], refine_steps=1, head_channels=256, sepconv_kernel=7, stem_kernel=7,
    ),
    # every layer NIR-expressible: conv stages, binary LIF, depthwise template correlation (models/spiking/deployable.py)
    "deployable": dict(arch="deployable", dims=[16, 32, 48, 64], depths=[1, 1, 1], corr_kernel=3, head_channels=32),
    # spiking conv layers to stride 8, the template's analog features correlated with the search's, a spiking head
    # (models/spiking/convsiamese.py); kernel: 5 cells over the central 0.75 of the template's 8 x 8 feature map
    "conv": dict(arch="conv", widths=[32, 64, 96, 128], head_channels=64, kernel=5, kernel_share=0.75),
}

# fields of the metaformer variants beside XCORR_DEFAULTS: analog_head puts an ANN center head (dense MACs) on the
# time average of the head input instead of the spiking head (heads.TimeAveragedCenterHead); xcorr_membrane makes the
# deep and shallow correlation levels correlate the analog membrane inputs of the search features with the template's
# (dense MACs) instead of spikes with firing rates
METAFORMER_DEFAULTS: dict[str, bool] = dict(analog_head=False, xcorr_membrane=False)

TEMPLATE_STEPS = ("bins", "templates")  # model.template_steps: what the template branch's T_t steps are (module docstring)


def stack_templates(crops: list[torch.Tensor], steps: int) -> torch.Tensor:
    """SpikeTrack's template stack from template crops in time order, each [1, B, 2, H, W] -> [steps, B, 2, H, W].

    The first crop fills every step; each later crop drops the oldest added one (never the first, which stays at
    step 0) and joins at the end: crops a, b, c, d with 3 steps give [a, a, a] -> [a, a, b] -> [a, b, c] -> [a, c, d].
    """
    stack = [crops[0]] * steps
    if steps > 1:
        for crop in crops[1:]:
            stack.pop(1)
            stack.append(crop)
    return torch.cat(stack, dim=0)


def _normalise_events(x: torch.Tensor) -> torch.Tensor:
    """Own input norm: log1p of the polarity counts (dense and sparse windows in one range)."""
    return torch.log1p(x.clamp_min(0))


class SpikingStudent(nn.Module):
    """The student tracker. See the module docstring for the call protocol."""

    encodes_template = True  # encode_template runs the template branch (counted as a model call)

    def __init__(
        self,
        *,
        dims: list[int],
        conv_depths: list[int],
        depths: list[int],
        heads: int,
        mlp_ratio: float,
        conv_ratio: float,
        memory_points: list[int],
        refine_steps: int,
        head_channels: int,
        sepconv_kernel: int,
        stem_kernel: int,
        neuron: NeuronFactory,
        timesteps: int,
        template_timesteps: int | None = None,
        xcorr: bool = False,
        xcorr_kernel: int = 3,
        xcorr_kernel_norm: bool = False,
        xcorr_shallow: bool = False,
        xcorr_shallow_kernel: int = 3,
        xcorr_shallow_share: float = CENTRE_SHARE,
        xcorr_input: bool = False,
        xcorr_input_stride: int = 4,
        xcorr_input_share: float = 0.75,
        xcorr_input_prior: float = 0.0,
        template_steps: str = "bins",
        tokens: tuple[int, int] | None = None,
        template_size: int = 64,
        search_size: int = 128,
        head_stride: int = 16,
        analog_head: bool = False,
        xcorr_membrane: bool = False,
    ) -> None:
        """``template_steps`` 'templates' (stacked templates) needs ``tokens`` = (template, search) token counts."""
        super().__init__()
        self.backbone = SpikingMetaFormer(
            dims, conv_depths, depths, heads, mlp_ratio, conv_ratio, neuron,
            sepconv_kernel=sepconv_kernel, stem_kernel=stem_kernel,
        )
        nblocks = len(self.backbone.blocks)
        points = sorted(set(memory_points))
        if not points or points[0] < 0 or points[-1] >= nblocks:
            raise ConfigError(
                f"key 'model.overrides.memory_points': expected block indices in [0, {nblocks - 1}], got {memory_points}"
            )
        self.memory_points = points
        if template_steps not in TEMPLATE_STEPS:
            raise ConfigError(f"key 'model.template_steps': expected one of {list(TEMPLATE_STEPS)}, got {template_steps!r}")
        self.stacked = template_steps == "templates"
        if self.stacked and tokens is None:
            raise ValueError("stacked templates need the (template, search) token counts")
        search_tokens = tokens[1] if self.stacked and tokens is not None else None
        self.memory = nn.ModuleList(
            MemoryRetrieval(self.backbone.block_dims[i], heads, neuron, refine_steps, search_tokens) for i in points
        )
        c = self.backbone.out_dim
        self.correlation = TemplateCorrelation(c, xcorr_kernel) if xcorr else None
        self.correlation_neuron = neuron() if xcorr else None  # template rates and search spikes of the final tokens
        self.xcorr_membrane = xcorr_membrane  # correlate membrane inputs (analog) instead of spikes and rates
        self.correlation_norm = nn.BatchNorm2d(c) if xcorr else None  # response scale grows with C and k*k
        self.kernel_norm = kernel_normaliser(c, xcorr and xcorr_kernel_norm)
        # shallow level: stride-8 spikes correlated with the template centre's firing rates (spike x weight: SOPs)
        self.shallow_correlation: TemplateCorrelation | None = None
        shallow_channels = 0
        if xcorr_shallow:
            if not xcorr:
                raise ConfigError("key 'model.overrides.xcorr_shallow': needs xcorr: true")
            shallow_channels = dims[1]
            self.shallow_neuron = neuron()
            self.shallow_correlation = TemplateCorrelation(shallow_channels, xcorr_shallow_kernel)
            self.shallow_norm = nn.BatchNorm2d(shallow_channels)
        self.shallow_share = check_share(xcorr_shallow_share, "xcorr_shallow_share")
        # input level: NCC of the event counts (log1p, polarities jointly) with the template's centre; not learned,
        # dense MACs (pooled counts are not spikes); best and mean match per head cell, the same at every timestep
        self.input_ncc: InputNcc | None = None
        input_channels = 0
        if xcorr_input:
            if not xcorr:
                raise ConfigError("key 'model.overrides.xcorr_input': needs xcorr: true")
            self.input_ncc = InputNcc(2, template_size, xcorr_input_stride, xcorr_input_share)
            input_channels = 2
            self.input_ncc_norm = nn.BatchNorm2d(input_channels)
        self.input_prior = input_score_prior(xcorr_input, xcorr_input_prior)
        # the head's grid: stride 16, or 8 (deep levels repeated, the shallow level at its own resolution)
        self.output_stride = check_head_stride(head_stride, xcorr_shallow or xcorr_input)
        self.head_grid = search_size // self.output_stride
        self.correlation_channels = c + shallow_channels + input_channels  # the head's input (correlation KD)
        self.head: SpikingCenterHead | TimeAveragedCenterHead = (
            TimeAveragedCenterHead(self.correlation_channels, head_channels) if analog_head
            else SpikingCenterHead(self.correlation_channels, head_channels, neuron)
        )
        self.timesteps = timesteps
        self.input_spec = InputSpec.event_bins(timesteps, template_timesteps, stacked=self.stacked)
        self.template_timesteps = self.input_spec.template_steps
        # stacked templates: position embeddings per template step before every block and every retrieval
        self.positions: nn.ModuleList | None = None
        self.memory_positions: nn.ModuleList | None = None
        if self.stacked and tokens is not None:
            steps = self.template_timesteps
            self.positions = nn.ModuleList(StepPositions(steps, *tokens, d) for d in self.backbone.block_dims)
            self.memory_positions = nn.ModuleList(
                StepPositions(steps, *tokens, self.backbone.block_dims[i]) for i in points
            )
        self.feature_info = [
            dict(num_chs=c, module=f"backbone.blocks.{i}") for i, c in enumerate(self.backbone.block_dims)
        ]
        self.apply(_init_weights)
        init_score_bias(self.head.score_proj)  # after the generic init, which zeroes conv biases

    def _correlated(self, neuron: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """What a correlation level correlates of the membrane inputs x [T, B, C, h, w]: their spikes (firing rates once
        averaged over T), or with ``xcorr_membrane`` x itself (analog: dense MACs)."""
        return x if self.xcorr_membrane else neuron(x)

    def reset_state(self) -> None:
        """Reset every neuron's membrane state (done at the start of each call as well)."""
        reset_neurons(self)

    def summary_parts(self) -> dict[str, nn.Module]:
        """Parameter groups for ``spiketrack model summary``: backbone, memory, head, and where present the template
        correlation and the stacked templates' step position embeddings."""
        parts: dict[str, nn.Module] = {"backbone": self.backbone, "memory": self.memory, "head": self.head}
        if self.correlation is not None:
            parts["correlation"] = nn.ModuleList(
                m for m in (self.correlation, self.correlation_neuron, self.correlation_norm, self.kernel_norm)
                if isinstance(m, nn.Module))
        if self.positions is not None and self.memory_positions is not None:
            parts["step positions"] = nn.ModuleList([self.positions, self.memory_positions])
        return parts

    def _blocks(self, i: int, tokens: torch.Tensor, template: bool, need: bool = False) -> tuple[torch.Tensor, Any]:
        """Transformer block ``i`` (its step positions added first with stacked templates)."""
        if self.positions is not None:
            key = str(i)
            if key in self.backbone.transitions:  # the width changes before this block: project, then add
                tokens = self.backbone.transitions[key](tokens)
            tokens = self.positions[i](tokens, template)
            return self.backbone.blocks[i](tokens, need)
        return self.backbone.block_forward(i, tokens, need)

    def _at_memory(self, p: int, tokens: torch.Tensor, template: bool) -> torch.Tensor:
        """Tokens entering retrieval point ``p`` (its step positions added with stacked templates)."""
        return tokens if self.memory_positions is None else self.memory_positions[p](tokens, template)

    def encode_template(self, template_bins: torch.Tensor) -> TemplateMemory:
        """template_bins [T_t, B, 2, Ht, Wt] -> TemplateMemory (one slot; slots [T, B, 1, h, d, d] per point).

        ``bins``: T = T_t when T_t equals the search T_s (``timesteps``), else 1: the memory's mean over the T_t
        template steps. ``templates`` (stacked): T = T_t, one memory per template step; the input is the stack of
        T_t crops, or one crop [1, B, 2, Ht, Wt] that fills every step (see the module docstring).
        """
        check_event_bins(template_bins, "template_bins")
        if self.stacked:
            steps = self.template_timesteps
            if template_bins.shape[0] == 1 and steps > 1:
                template_bins = template_bins.expand(steps, *template_bins.shape[1:])
            if template_bins.shape[0] != steps:
                raise ValueError(f"template_bins: expected 1 or {steps} stacked template crops, got "
                                 f"{template_bins.shape[0]}")
        self.reset_state()
        tokens, (h, w), shallow = self.backbone.conv_tokens(_normalise_events(template_bins))
        slots = []
        last = len(self.backbone.blocks) - 1 if self.correlation is not None else self.memory_points[-1]
        for i in range(last + 1):
            tokens, _ = self._blocks(i, tokens, template=True)
            if i in self.memory_points:
                p = self.memory_points.index(i)
                slots.append(self.memory[p].build(self._at_memory(p, tokens, True)).unsqueeze(2))
        if template_bins.shape[0] != self.timesteps and not self.stacked:
            slots = [s.mean(dim=0, keepdim=True) for s in slots]  # T_t steps -> one step, broadcast over T_s
        b = template_bins.shape[1]
        weights = [torch.ones(b, 1, s.shape[3], device=s.device, dtype=s.dtype) for s in slots]
        kernel = None
        if self.correlation is not None:
            rates = self._correlated(self.correlation_neuron, _token_map(tokens, h, w)).mean(dim=0)  # [B, C, h, w]
            kernel = self.kernel_norm(template_kernel(rates, self.correlation.kernel_size[0]))
        shallow_kernel = None
        if self.shallow_correlation is not None:
            rates = self._correlated(self.shallow_neuron, shallow).mean(dim=0)  # [B, C1, Ht/8, Wt/8]
            shallow_kernel = normalise_kernel(centre_kernel(rates, self.shallow_correlation.kernel_size[0], self.shallow_share))
        input_kernel = None
        if self.input_ncc is not None:
            input_kernel = self.input_ncc.template_kernel(_normalise_events(template_bins))
        return TemplateMemory(slots, weights, num_tokens=tokens.shape[2], kernel=kernel, shallow_kernel=shallow_kernel,
                              inputs=template_bins if self.stacked else None, input_kernel=input_kernel)

    def encode_templates(self, crops: list[torch.Tensor]) -> TemplateMemory:
        """Several template crops in time order (the first, then later ones), each [T_t or 1, B, 2, H, W] -> one
        memory: ``bins``: each encoded as a slot, merged by the learned gate; ``templates``: encoded once as
        SpikeTrack's stack of one-bin crops (:func:`stack_templates`)."""
        if self.stacked:
            return self.encode_template(stack_templates([c[-1:] for c in crops], self.template_timesteps))
        return self.merge_memories([self.encode_template(c) for c in crops])

    def merge_memories(self, memories: list[TemplateMemory]) -> TemplateMemory:
        """Several template memories -> one memory whose slots are combined by the learned gate (stacked
        templates: the template stack of their crops encoded again, :meth:`encode_templates`)."""
        if not memories:
            raise ValueError("merge_memories needs at least one memory")
        if self.stacked:
            crops = [m.inputs for m in memories]
            if any(c is None for c in crops):
                raise ValueError("stacked templates: a memory without its template crops cannot be merged")
            # the first memory's own first crop, then the newest crop of each later one (a template update)
            return self.encode_templates([crops[0][:1], *[c[-1:] for c in crops[1:]]])
        n = memories[0].num_tokens
        slots = [torch.cat([m.slots[p] for m in memories], dim=2) for p in range(len(self.memory_points))]
        weights = [mod.gate_weights(s, n) for mod, s in zip(self.memory, slots, strict=True)]
        kernels = [m.kernel for m in memories if m.kernel is not None]
        kernel = torch.stack(kernels).mean(dim=0) if kernels else None  # templates' mean appearance
        shallow = [m.shallow_kernel for m in memories if m.shallow_kernel is not None]
        shallow_kernel = normalise_kernel(torch.stack(shallow).mean(dim=0)) if shallow else None
        level0 = [m.input_kernel for m in memories if m.input_kernel is not None]
        input_kernel = InputNcc.renormalise(torch.stack(level0).mean(dim=0)) if level0 else None
        return TemplateMemory(slots, weights, n, kernel, shallow_kernel, input_kernel=input_kernel)

    def track(
        self, search_bins: torch.Tensor, memory: TemplateMemory, return_features: bool | Collection[str] = False
    ) -> dict[str, Any]:
        """search_bins [T, B, 2, Hs, Ws] + cached memory -> score_map [B, 1, Hf, Wf], size_map [B, 2, Hf, Wf],
        offset_map [B, 2, Hf, Wf], pred_boxes [B, 4] (Hf = Hs/16).

        With ``return_features``: 'features' (per transformer block, search tokens averaged over T
        [B, Ns, C], after retrieval where it applies), 'similarity' (per block, spike Q K^T averaged
        over T [B, heads, Ns, Ns]) and, with xcorr, 'correlation' (the head's input averaged over T [B, Ns, C]);
        a collection of names returns only those (:func:`spiketrack.models.wants`).
        """
        check_event_bins(search_bins, "search_bins")
        self.reset_state()
        normalised = _normalise_events(search_bins)
        tokens, (h, w), shallow = self.backbone.conv_tokens(normalised)
        want_features, want_similarity = wants(return_features, "features"), wants(return_features, "similarity")
        features, similarity = [], []
        for i in range(len(self.backbone.blocks)):
            tokens, sim = self._blocks(i, tokens, template=False, need=want_similarity)
            if i in self.memory_points:
                p = self.memory_points.index(i)
                tokens = self.memory[p](self._at_memory(p, tokens, False), memory, p)
            if want_features:
                features.append(tokens.mean(dim=0))
            if want_similarity:
                similarity.append(sim)
        x = _token_map(tokens, h, w)
        if self.correlation is not None:
            if memory.kernel is None:
                raise ValueError("this student correlates with its template (xcorr): the memory has no kernel")
            corr = self.correlation(self._correlated(self.correlation_neuron, x), memory.kernel)
            x = self.correlation_norm(corr.flatten(0, 1)).view(corr.shape)
        grid = (self.head_grid, self.head_grid)
        x = to_head_grid(x, grid)
        prior = None
        if self.shallow_correlation is not None:  # appearance level, on the head's grid
            if memory.shallow_kernel is None:
                raise ValueError("this student correlates at the shallow level (xcorr_shallow): the memory has no kernel")
            r = self.shallow_correlation(self._correlated(self.shallow_neuron, shallow), memory.shallow_kernel)
            r = self.shallow_norm(r.flatten(0, 1)).view(r.shape)
            x = torch.cat([x, to_head_grid(r, grid)], dim=2)
        if self.input_ncc is not None:  # input level (not learned), the same at every timestep
            if memory.input_kernel is None:
                raise ValueError("this student correlates at the input level (xcorr_input): the memory has no kernel")
            match = InputNcc.to_grid(self.input_ncc(normalised, memory.input_kernel), grid)
            level0 = self.input_ncc_norm(match)
            x = torch.cat([x, level0.unsqueeze(0).expand(x.shape[0], *level0.shape)], dim=2)
            if self.input_prior is not None:  # the best match per cell, on the analog score logits
                prior = self.input_prior(match[:, :1])
        out: dict[str, Any] = self.head(x, prior)
        if want_features:
            out["features"] = features
        if want_similarity:
            out["similarity"] = similarity
        if self.correlation is not None and wants(return_features, "correlation"):
            out["correlation"] = time_mean_tokens(x)  # [B, Hf*Wf, C]
        return out

    def forward(
        self, template_bins: torch.Tensor, search_bins: torch.Tensor, return_features: bool | Collection[str] = False
    ) -> dict[str, Any]:
        """template_bins [T, B, 2, Ht, Wt], search_bins [T, B, 2, Hs, Ws] -> outputs of :meth:`track`."""
        return self.track(search_bins, self.encode_template(template_bins), return_features)


def _token_map(tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Tokens [T, B, h*w, C] -> feature map [T, B, C, h, w]."""
    t, b, _, c = tokens.shape
    return tokens.transpose(2, 3).reshape(t, b, c, h, w)


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Conv2d) and not isinstance(m, FixedConv2d):
        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def input_spec(cfg: Any) -> InputSpec:
    """The student's inputs under ``cfg``: T = ``cfg.model.timesteps`` event bins per frame window (the template's
    T_t = ``cfg.model.template_timesteps``, None: T; stacked templates: T_t crops of one bin each)."""
    m = cfg.model
    return InputSpec.event_bins(m.timesteps, m.template_timesteps, stacked=m.template_steps == "templates")


def build(cfg: Any) -> SpikingStudent | DeployableStudent | SpikingConvSiamese:
    """The student of ``cfg`` (ExperimentConfig): variant from cfg.model.variant + cfg.model.overrides, initialised
    from ``cfg.model.pretrained`` when set (:mod:`spiketrack.models.spiking.pretrained`)."""
    m = cfg.model
    if m.variant not in VARIANTS:
        raise ConfigError(f"key 'model.variant': unknown student variant {m.variant!r}; expected one of {sorted(VARIANTS)}")
    if m.modalities != "events":
        raise ConfigError(f"key 'model.modalities': the student tracks from events only, got {m.modalities!r}")
    params = dict(VARIANTS[m.variant])
    arch = params.pop("arch", "metaformer")
    if arch == "metaformer":
        params = {**XCORR_DEFAULTS, **METAFORMER_DEFAULTS, **params}
    for key, value in m.overrides.items():
        if key not in params:
            raise ConfigError(f"key 'model.overrides.{key}': not a student variant field (known: {sorted(params)})")
        params[key] = value
    for size, key in ((cfg.data.template_size, "data.template_size"), (cfg.data.search_size, "data.search_size")):
        if size % 16:
            raise ConfigError(f"key '{key}': the student needs a multiple of 16, got {size}")
    for value, key in ((m.timesteps, "model.timesteps"), (m.template_timesteps, "model.template_timesteps")):
        if value is not None and value < 1:
            raise ConfigError(f"key '{key}': expected a number of timesteps >= 1, got {value}")
    if m.template_steps not in TEMPLATE_STEPS:
        raise ConfigError(f"key 'model.template_steps': expected one of {list(TEMPLATE_STEPS)}, got {m.template_steps!r}")
    stacked = m.template_steps == "templates"
    if stacked and (arch != "metaformer" or m.timesteps != 1 or m.template_timesteps is None):
        raise ConfigError(
            "key 'model.template_steps': stacked templates (SpikeTrack) need the Spiking MetaFormer student, "
            f"model.timesteps: 1 (the search runs one step) and model.template_timesteps set to the number of "
            f"stacked templates; got variant {m.variant!r}, timesteps {m.timesteps}, "
            f"template_timesteps {m.template_timesteps}"
        )
    model: SpikingStudent | DeployableStudent | SpikingConvSiamese
    if arch in ("deployable", "conv") and m.template_timesteps not in (None, m.timesteps):
        raise ConfigError(f"key 'model.template_timesteps': the {m.variant} student runs one T for both branches")
    if arch == "conv":
        model = SpikingConvSiamese(**params, neuron=neuron_factory(m.neuron), timesteps=m.timesteps)
    elif arch == "deployable":
        if m.neuron.kind != "lif":
            raise ConfigError(f"key 'model.neuron.kind': the deployable student needs binary 'lif' (NIR), got {m.neuron.kind!r}")
        model = DeployableStudent(**params, neuron=neuron_factory(m.neuron), timesteps=m.timesteps)
    else:
        tokens = ((cfg.data.template_size // 16) ** 2, (cfg.data.search_size // 16) ** 2) if stacked else None
        model = SpikingStudent(
            **params, neuron=neuron_factory(m.neuron), timesteps=m.timesteps, template_timesteps=m.template_timesteps,
            template_steps=m.template_steps, tokens=tokens, template_size=cfg.data.template_size,
            search_size=cfg.data.search_size,
        )
    if m.pretrained:
        from spiketrack.models.spiking.pretrained import load_student_weights

        model.pretrained_report = load_student_weights(model, m.pretrained)
    return model


__all__ = ["TEMPLATE_STEPS", "VARIANTS", "SpikingStudent", "TemplateMemory", "build", "input_spec", "stack_templates"]
