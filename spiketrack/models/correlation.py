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
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Variant fields of a model with an optional correlation head (teacher, MetaFormer student): ``xcorr`` puts this
# correlation between backbone and head, ``xcorr_kernel`` is k, ``xcorr_kernel_norm`` standardises the kernel over
# the templates (:func:`kernel_normaliser`). Off by default.
XCORR_DEFAULTS: dict[str, bool | int] = dict(
    xcorr=False, xcorr_kernel=3, xcorr_kernel_norm=False, xcorr_shallow=False, xcorr_shallow_kernel=3
)
CENTRE_SHARE = 0.5  # the box's share of the template crop's side (template factor 2: data.template_factor)


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


def normalise_kernel(kernel: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Kernel [B, C, k, k] -> per (sample, channel) zero-mean over the k x k cells, then unit L2 norm.

    A channel that is constant over the template (no pattern) becomes all zero: it cannot favour a location.
    """
    centred = kernel - kernel.mean(dim=(-2, -1), keepdim=True)
    # rsqrt(sum + eps), not 1 / (sqrt(sum) + eps): the gradient of sqrt at 0 (a channel without pattern) is infinite
    return centred * torch.rsqrt(centred.pow(2).sum(dim=(-2, -1), keepdim=True) + eps)


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


class TemplateCorrelation(nn.Conv2d):
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


__all__ = ["CENTRE_SHARE", "XCORR_DEFAULTS", "TemplateCorrelation", "centre_kernel", "kernel_normaliser",
           "normalise_kernel", "template_kernel"]
