"""Depthwise template-search cross-correlation (SiamRPN++, Li et al., CVPR 2019), shared by teacher and students.

The template's features are pooled to a ``k x k`` kernel per channel ([B, C, k, k]); the search features are
correlated with it channel by channel (a grouped conv whose weights are the template, 'same' padding), so the
response at a search cell says how much the neighbourhood there looks like the template in each channel. A head
that sees only this response cannot box anything the template does not resemble: the template is necessary
by construction (a template-blind shortcut such as "box the salient moving thing" is not available to it).

:class:`TemplateCorrelation` is an ``nn.Conv2d`` (its ``weight`` a zero buffer giving the kernel's shape) so the
energy counter charges it like any conv: MACs for the teacher's analog features, synaptic operations for a
student's spike features.

**Shallow level (appearance).** Final features at stride 16 pooled to a 3 x 3 kernel keep little of what tells one
textured object from another. The shallow level (variant field ``xcorr_shallow``) correlates stride-8 features with
the template's *central* stride-8 features — the box region of the template crop (half its side, as SiamRPN++ crops
the template's centre, Li et al. 2019) resampled to ``xcorr_shallow_kernel`` squared cells, so the kernel keeps the
object's spatial layout — after making every channel of the kernel zero-mean and unit-norm
(:func:`normalise_kernel`): a uniform neighbourhood answers 0, only the pattern counts, as in normalised
cross-correlation. The response is pooled to stride 16 and given to the head beside the deep level's (several levels
aggregated, SiamRPN++).

**Input level (level 0, not learned).** :class:`InputNcc` is the normalised cross-correlation of the model's own
input (average-pooled to ``xcorr_input_stride``) with the template's central ``xcorr_input_share`` of the crop: the
matcher of :mod:`spiketrack.tracking.ncc` inside the model, so the head sees from the first step where the template's
pattern is, and learning adds what NCC cannot do (a location prior, sizes, when to trust the match). Its convolutions
are modules, so the energy counter charges them (dense MACs: pooled counts or pixels are not spikes). With
``xcorr_input_prior`` w > 0 its best match per head cell, times a learned scalar starting at w, is also added to the
score logits (:class:`~spiketrack.models.heads.ScorePrior`): the untrained model then scores as NCC does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from spiketrack.errors import ConfigError
from spiketrack.models.heads import ScorePrior

CENTRE_SHARE = 0.5  # the box's share of the template crop's side (template factor 2: data.template_factor)
# Variant fields of a model with an optional correlation head (teacher, MetaFormer student): ``xcorr`` puts this
# correlation between backbone and head, ``xcorr_kernel`` is k, ``xcorr_kernel_norm`` standardises the kernel over
# the templates (:func:`kernel_normaliser`). Off by default.
XCORR_DEFAULTS: dict[str, bool | int | float] = dict(
    xcorr=False, xcorr_kernel=3, xcorr_kernel_norm=False, xcorr_shallow=False, xcorr_shallow_kernel=3,
    xcorr_shallow_share=CENTRE_SHARE, xcorr_input=False, xcorr_input_stride=4, xcorr_input_share=0.75,
    xcorr_input_prior=0.0, head_stride=16,
)
HEAD_STRIDES = (16, 8)  # the head's output stride: the backbone's 16, or 8 (finer score map, see head_grid)


def check_head_stride(stride: int, has_stride8_level: bool) -> int:
    """``head_stride`` (a variant field) if it is one of :data:`HEAD_STRIDES` and, below 16, the model has a
    stride-8 level (``xcorr_shallow`` or ``xcorr_input``) to fill the finer grid; else a ConfigError."""
    if stride not in HEAD_STRIDES:
        raise ConfigError(f"key 'model.overrides.head_stride': expected one of {list(HEAD_STRIDES)}, got {stride!r}")
    if stride < HEAD_STRIDES[0] and not has_stride8_level:
        raise ConfigError("key 'model.overrides.head_stride': a stride-8 head needs a stride-8 level "
                          "(xcorr_shallow or xcorr_input)")
    return int(stride)


def to_head_grid(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Feature maps [..., C, h, w] -> [..., C, *size]: nearest upsampling of the stride-16 backbone levels to a
    stride-8 head grid (each cell's value repeated), average pooling of finer levels down to the grid, or as is."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    lead = x.shape[:-3]
    flat = x.reshape(-1, *x.shape[-3:])
    if x.shape[-1] < size[1]:
        out = F.interpolate(flat, size=size, mode="nearest")
    else:
        out = F.adaptive_avg_pool2d(flat, size)
    return out.view(*lead, *out.shape[-3:])


def template_kernel(features: torch.Tensor, k: int) -> torch.Tensor:
    """Template features [..., C, Ht, Wt] -> correlation kernel [..., C, k, k] (average pooling)."""
    return F.adaptive_avg_pool2d(features, k)


def centre_kernel(features: torch.Tensor, k: int, share: float = CENTRE_SHARE) -> torch.Tensor:
    """Template features [..., C, Ht, Wt] -> the central ``share`` of the map (the box) resampled to [..., C, k, k].

    Area-averaging keeps the layout: cell (i, j) of the kernel is the mean of the features over the (i, j)-th of
    k x k equal parts of the central region.
    """
    h, w = features.shape[-2:]
    ch, cw = max(1, round(h * share)), max(1, round(w * share))
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return F.adaptive_avg_pool2d(features[..., y0 : y0 + ch, x0 : x0 + cw], k)


def check_share(share: float, key: str) -> float:
    """A share of the template crop (``model.overrides.<key>``) in (0, 1]; else a ConfigError naming the key."""
    if not 0.0 < float(share) <= 1.0:
        raise ConfigError(f"key 'model.overrides.{key}': expected a share of the template crop in (0, 1], got {share!r}")
    return float(share)


def normalise_kernel(kernel: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Kernel [B, C, k, k] -> per (sample, channel) zero-mean over the k x k cells, then unit L2 norm.

    A channel that is constant over the template (no pattern) becomes all zero: it cannot favour a location.
    """
    centred = kernel - kernel.mean(dim=(-2, -1), keepdim=True)
    # rsqrt(sum + eps), not 1 / (sqrt(sum) + eps): the gradient of sqrt at 0 (a channel without pattern) is infinite
    return centred * torch.rsqrt(centred.pow(2).sum(dim=(-2, -1), keepdim=True) + eps)


class InputNcc(nn.Module):
    """Level-0 correlation: zero-mean NCC of the (pooled) input with the template's centre, all channels jointly.

    ``forward(search, template_kernel(template))`` -> NCC map [B, 1, Hs/stride, Ws/stride] in [-1, 1] ('same'
    placement: cell (i, j) scores the template centred there; 0 where the search window is flat).
    The kernel side is ``share`` of the template crop (``share`` x template factor x sqrt(w h) of the box) at
    ``stride``, resampled to an odd number of cells.
    """

    def __init__(self, channels: int, template_size: int, stride: int, share: float) -> None:
        super().__init__()
        cells = template_size / stride * share
        k = max(1, int(round(cells)) // 2 * 2 + 1)  # odd: the map is centred on the cell it scores
        self.stride, self.share, self.kernel = stride, share, k
        self.pool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.numerator = TemplateCorrelation(channels, k)
        self.window_sum = BoxSum(channels, k)  # a box filter, not a learned layer

    def template_kernel(self, template: torch.Tensor) -> torch.Tensor:
        """Template [B, C, Ht, Wt] (or [T, B, C, Ht, Wt], averaged over T) -> kernel [B, C, k, k]: its central
        ``share`` pooled to k x k cells, zero-mean per channel, unit norm over all channels (computed once per
        template; a template without pattern gives an all-zero kernel)."""
        if template.dim() == 5:
            template = template.mean(dim=0)
        z = self.pool(template)
        h, w = z.shape[-2:]
        ch, cw = max(1, round(h * self.share)), max(1, round(w * self.share))
        y0, x0 = (h - ch) // 2, (w - cw) // 2
        t = F.interpolate(z[..., y0 : y0 + ch, x0 : x0 + cw], size=(self.kernel, self.kernel), mode="area")
        return self.renormalise(t)

    @staticmethod
    def renormalise(kernel: torch.Tensor) -> torch.Tensor:
        """Kernel [B, C, k, k] -> zero-mean per channel, unit norm over all channels (e.g. after averaging kernels)."""
        t = kernel - kernel.mean(dim=(-2, -1), keepdim=True)
        return t * torch.rsqrt(t.pow(2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)

    @staticmethod
    def to_grid(ncc: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """NCC map [B, 1, h, w] -> [B, 2, *size]: the best and the mean match inside each head cell."""
        return torch.cat([F.adaptive_max_pool2d(ncc, size), F.adaptive_avg_pool2d(ncc, size)], dim=1)

    def forward(self, search: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        """search [B, C, Hs, Ws] (or [T, B, C, Hs, Ws], averaged over T), kernel of :meth:`template_kernel` ->
        NCC map [B, 1, Hs/stride, Ws/stride]."""
        if search.dim() == 5:
            search = search.mean(dim=0)
        x = self.pool(search)
        num = self.numerator(x, kernel).sum(dim=1)  # [B, h, w]: sum over channels of T' * I (the mean of I drops out)
        n = float(self.kernel * self.kernel)
        s1, s2 = self.window_sum(x), self.window_sum(x * x)
        var = (s2 - s1 * s1 / n).clamp_min(0).sum(dim=1)  # sum over channels of |I - mean(I)|^2 in the window
        return (num * torch.rsqrt(var + 1e-6)).unsqueeze(1)


def input_score_prior(xcorr_input: bool, initial: float) -> ScorePrior | None:
    """The score prior of the input-level NCC (``xcorr_input_prior`` > 0), None when off; needs ``xcorr_input``."""
    if initial < 0:
        raise ConfigError(f"key 'model.overrides.xcorr_input_prior': expected >= 0 (0: off), got {initial}")
    if initial > 0 and not xcorr_input:
        raise ConfigError("key 'model.overrides.xcorr_input_prior': needs xcorr_input: true")
    return ScorePrior(initial) if initial > 0 else None


def kernel_normaliser(channels: int, enabled: bool) -> nn.Module:
    """Kernel [B, C, k, k] -> the same, standardised per channel over the templates (``enabled``) or unchanged.

    A batch norm without affine parameters: training normalises by the batch of templates, tracking by the running
    statistics. It removes the part of the kernel every template shares (for a spiking student the firing rates
    are non-negative, so an unnormalised kernel is mostly 'how busy each channel is anywhere'); what remains is how
    this template differs from the others. Measured on the validation split (docs/benchmarks.md, "Kernel
    normalisation, more negatives, an events-only teacher"): the teacher gains SR and template dependence, the
    student neither.
    """
    return nn.BatchNorm2d(channels, affine=False) if enabled else nn.Identity()


class FixedConv2d(nn.Conv2d):
    """A conv whose weights are not learned or initialised (a buffer): model initialisers leave it alone, and the
    energy counter still charges it like any conv."""


class BoxSum(FixedConv2d):
    """Per-channel sum over every k x k window ('same' padding): ``forward(x)`` [B, C, h, w] -> [B, C, h, w]."""

    def __init__(self, channels: int, k: int) -> None:
        super().__init__(channels, channels, k, padding=k // 2, groups=channels, bias=False)
        del self.weight
        self.register_buffer("weight", torch.ones(channels, 1, k, k), persistent=False)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: object, **kwargs: object) -> None:
        # checkpoints written while the box filter was a (frozen) parameter hold its constant ones: not needed
        state_dict.pop(prefix + "weight", None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class TemplateCorrelation(FixedConv2d):
    """Depthwise cross-correlation of search features with a per-sample template kernel (see the module docstring).

    ``forward(x, kernel)``: x [B, C, h, w] or multi-step [T, B, C, h, w], kernel [B, C, k, k] -> same shape as x.
    """

    def __init__(self, channels: int, k: int) -> None:
        if k < 1 or k % 2 == 0:
            raise ValueError(f"correlation kernel size must be odd and >= 1 ('same' output size), got {k}")
        super().__init__(channels, channels, k, padding=k // 2, groups=channels, bias=False)
        del self.weight
        self.register_buffer("weight", torch.zeros(channels, 1, k, k), persistent=False)

    def forward(self, x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        b, c = kernel.shape[:2]
        lead = x.shape[:-4] if x.dim() == 5 else ()
        flat = x.reshape(-1, b * c, *x.shape[-2:])  # every sample's channels are groups of one conv
        out = F.conv2d(flat, kernel.reshape(b * c, 1, *kernel.shape[-2:]), padding=self.padding, groups=b * c)
        return out.view(*lead, b, c, *out.shape[-2:])


__all__ = [
    "CENTRE_SHARE",
    "HEAD_STRIDES",
    "XCORR_DEFAULTS",
    "BoxSum",
    "FixedConv2d",
    "InputNcc",
    "TemplateCorrelation",
    "centre_kernel",
    "check_head_stride",
    "check_share",
    "input_score_prior",
    "kernel_normaliser",
    "normalise_kernel",
    "template_kernel",
    "to_head_grid",
]
