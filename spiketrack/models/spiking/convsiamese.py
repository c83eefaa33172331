"""Spiking conv Siamese student: spiking conv layers to stride 8, the template's analog features correlated with the
search's, a spiking head on the stride-8 grid.

Why this family: on the validation split a plain ANN conv Siamese net trained for the student's minutes scored 7.5 SR
above the Spiking MetaFormer student, whose ANN twin scored the same as itself (docs/benchmarks.md, "Where the
student's limit lies"); spiking layers cost that net little, correlating spikes cost it up to 9 SR. So this student
keeps every layer spiking except the correlation, which takes the analog currents (BN outputs) that the last
feature neurons would see.

Layout (``[T, B, C, H, W]`` throughout; ``a, b, c, d = widths``):

- features: conv s2 (2 -> a, analog input: MACs) -> LIF -> conv s2 (a -> b) -> LIF -> conv (b -> b) -> LIF ->
  conv s2 (b -> c) -> LIF -> conv (c -> c) -> LIF -> conv (c -> d): currents at stride 8, every conv + BN;
- template: ``encode_template`` runs the features once, averages them over T and keeps the central
  ``kernel_share`` of the map (the box and a little context) area-resampled to ``kernel`` x ``kernel`` cells,
  zero-mean, unit norm per channel [B, d, k, k];
- correlation: depthwise conv of the search currents with that kernel ('same' size), dense MACs (analog x analog:
  a spiking chip would run it as a conv layer whose weights are the template, on the neurons' input currents);
- head: BN -> LIF -> conv3x3 (d -> h) -> LIF -> conv3x3 (h -> h) -> LIF -> conv1x1 to 5 maps (score, size (2),
  offset (2)); the 5 maps are averaged over T and decoded as the centre head's (``heads._head_outputs``).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import torch
from torch import nn

from spiketrack.data.inputs import InputSpec
from spiketrack.models import wants
from spiketrack.models.correlation import TemplateCorrelation, centre_kernel, check_share, normalise_kernel
from spiketrack.models.heads import _head_outputs, init_score_bias
from spiketrack.models.spiking.bins import check_event_bins, time_mean_tokens
from spiketrack.models.spiking.metaformer import SeqConvBN
from spiketrack.models.spiking.neurons import NeuronFactory, reset_neurons

STRIDE = 8  # output stride of the features and the score map


class SpikingConvSiamese(nn.Module):
    """Spiking conv Siamese tracker with an analog template correlation (see the module docstring)."""

    encodes_template = True
    output_stride = STRIDE

    def __init__(self, *, widths: list[int], head_channels: int, kernel: int, kernel_share: float,
                 neuron: NeuronFactory, timesteps: int, in_chans: int = 2) -> None:
        super().__init__()
        if len(widths) != 4:
            raise ValueError(f"the conv Siamese student needs 4 widths, got {widths}")
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"key 'model.overrides.kernel': expected an odd number of cells >= 1, got {kernel}")
        a, b, c, d = widths
        self.kernel, self.kernel_share = int(kernel), check_share(kernel_share, "kernel_share")
        # (cin, cout, stride) of the feature convs; a neuron precedes every conv but the first
        plan = [(in_chans, a, 2), (a, b, 2), (b, b, 1), (b, c, 2), (c, c, 1), (c, d, 1)]
        self.convs = nn.ModuleList(SeqConvBN(i, o, 3, stride=s) for i, o, s in plan)
        self.neurons = nn.ModuleList(neuron() for _ in plan[1:])
        self.correlation = TemplateCorrelation(d, self.kernel)
        self.corr_norm = nn.BatchNorm2d(d)
        self.correlation_channels = d  # the head's input (correlation KD)
        self.head_neurons = nn.ModuleList(neuron() for _ in range(3))
        self.head_convs = nn.ModuleList([SeqConvBN(d, head_channels, 3), SeqConvBN(head_channels, head_channels, 3)])
        self.out = nn.Conv2d(head_channels, 5, 1)  # score, size (2), offset (2)
        self.timesteps = timesteps
        self.input_spec = InputSpec.event_bins(timesteps)
        self.feature_info = [dict(num_chs=d, module="convs.5"), dict(num_chs=d, module="corr_norm")]
        nn.init.zeros_(self.out.bias)
        init_score_bias(self.out, channels=1)

    def reset_state(self) -> None:
        reset_neurons(self)

    def summary_parts(self) -> dict[str, nn.Module]:
        """Parameter groups for ``spiketrack model summary``: backbone, correlation, head."""
        return {"backbone": nn.ModuleList([self.convs, self.neurons]),
                "correlation": nn.ModuleList([self.correlation, self.corr_norm]),
                "head": nn.ModuleList([self.head_neurons, self.head_convs, self.out])}

    def features(self, bins: torch.Tensor) -> torch.Tensor:
        """Event bins [T, B, 2, H, W] -> stride-8 currents [T, B, d, H/8, W/8] (log1p of the counts in)."""
        x = self.convs[0](torch.log1p(bins.clamp_min(0)))
        for neuron, conv in zip(self.neurons, self.convs[1:], strict=True):
            x = conv(neuron(x))
        return x

    def encode_template(self, template_bins: torch.Tensor) -> torch.Tensor:
        """template_bins [T, B, 2, Ht, Wt] -> correlation kernel [B, d, k, k] (computed once per template)."""
        check_event_bins(template_bins, "template_bins")
        self.reset_state()
        f = self.features(template_bins).mean(dim=0)
        return normalise_kernel(centre_kernel(f, self.kernel, self.kernel_share))

    def track(
        self, search_bins: torch.Tensor, kernel: torch.Tensor, return_features: bool | Collection[str] = False
    ) -> dict[str, Any]:
        """search_bins [T, B, 2, Hs, Ws] + template kernel -> score/size/offset maps [B, 1|2|2, Hs/8, Ws/8],
        pred_boxes [B, 4]; ``features`` (distillation) are the search currents and the normalised correlation, which
        is also the ``correlation`` output (the head's input, for the correlation KD)."""
        check_event_bins(search_bins, "search_bins")
        self.reset_state()
        f = self.features(search_bins)
        corr = self.correlation(f, kernel)
        t, b = corr.shape[:2]
        corr = self.corr_norm(corr.flatten(0, 1)).view(corr.shape)
        y = corr
        for neuron, conv in zip(self.head_neurons[:-1], self.head_convs, strict=True):
            y = conv(neuron(y))
        s = self.head_neurons[-1](y)  # the output conv's spikes
        maps = self.out(s.flatten(0, 1)).view(t, b, 5, *s.shape[-2:]).mean(dim=0)
        out: dict[str, Any] = _head_outputs(maps[:, :1], maps[:, 1:3], maps[:, 3:5])
        if wants(return_features, "features"):
            out["features"] = [time_mean_tokens(f), time_mean_tokens(corr)]
        if wants(return_features, "similarity"):
            out["similarity"] = []
        if wants(return_features, "correlation"):
            out["correlation"] = time_mean_tokens(corr)  # [B, Hf*Wf, d]
        return out

    def forward(
        self, template_bins: torch.Tensor, search_bins: torch.Tensor, return_features: bool | Collection[str] = False
    ) -> dict[str, Any]:
        return self.track(search_bins, self.encode_template(template_bins), return_features)


__all__ = ["STRIDE", "SpikingConvSiamese"]
