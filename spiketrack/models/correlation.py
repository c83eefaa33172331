"""Depthwise template-search cross-correlation (SiamRPN++, Li et al., CVPR 2019), shared by teacher and students.

The template's features are pooled to a ``k x k`` kernel per channel ([B, C, k, k]); the search features are
correlated with it channel by channel (a grouped conv whose weights are the template, 'same' padding), so the
response at a search cell says how much the neighbourhood there looks like the template in each channel. A head
that sees only this response cannot box anything the template does not resemble: the template is necessary
by construction (a template-blind shortcut such as "box the salient moving thing" is not available to it).

:class:`TemplateCorrelation` is an ``nn.Conv2d`` (its ``weight`` a zero buffer giving the kernel's shape) so the
energy counter charges it like any conv: MACs for the teacher's analog features, synaptic operations for a
student's spike features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Variant fields of a model with an optional correlation head (teacher, MetaFormer student): ``xcorr`` puts this
# correlation between backbone and head, ``xcorr_kernel`` is k, ``xcorr_kernel_norm`` standardises the kernel over
# the templates (:func:`kernel_normaliser`). Off by default.
XCORR_DEFAULTS: dict[str, bool | int] = dict(xcorr=False, xcorr_kernel=3, xcorr_kernel_norm=False)


def template_kernel(features: torch.Tensor, k: int) -> torch.Tensor:
    """Template features [..., C, Ht, Wt] -> correlation kernel [..., C, k, k] (average pooling)."""
    return F.adaptive_avg_pool2d(features, k)


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


__all__ = ["XCORR_DEFAULTS", "TemplateCorrelation", "kernel_normaliser", "template_kernel"]
