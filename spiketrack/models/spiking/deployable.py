"""Deployable spiking student: every layer NIR-expressible (conv + BN folded, binary LIF, residual sums), with a
template-search depthwise cross-correlation as a conv whose kernel is the encoded template.

Layout (``[T, B, C, H, W]`` throughout, stride 16 like the MetaFormer student):

- backbone: encoding conv (stride 2, analog input) -> LIF -> conv s2 -> residual conv blocks
  (``x + conv(LIF(conv(LIF(x))))``) -> LIF -> conv s2 -> blocks -> LIF -> conv s2; a final LIF gives the
  feature spikes;
- template: ``encode_template`` runs the backbone once and keeps the template's feature *firing rates*
  average-pooled to a ``k x k`` kernel per channel [B, C, k, k] (analog, fixed for the sequence);
- correlation: depthwise conv of the search feature spikes with that kernel (groups = C) - a conv layer whose
  weights are the template, i.e. the NIR graph is exported per template (``export_nir_graph(template=...)``);
- head: BN-free scale (folded into the next conv) -> LIF -> conv3x3 -> LIF -> conv1x1 to 5 maps (score,
  size, offset); the 5 output currents are averaged over T on the host (NIR ``Output``), then decoded.

What stays on the host: the input normalisation log1p, the template pooling (once per template), the time
average of the 5 output currents and the box decoding. Neurons must be binary ``lif`` (I-LIF is refused).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import torch
from torch import nn

from spiketrack.data.inputs import InputSpec
from spiketrack.models import wants
from spiketrack.models.correlation import TemplateCorrelation, template_kernel
from spiketrack.models.heads import _head_outputs, init_score_bias
from spiketrack.models.spiking.bins import check_event_bins, time_mean_tokens
from spiketrack.models.spiking.metaformer import SeqConvBN
from spiketrack.models.spiking.neurons import NeuronFactory, reset_neurons


class ConvBlock(nn.Module):
    """x + conv(LIF(conv(LIF(x)))): two 3x3 conv+BN with a membrane shortcut."""

    def __init__(self, dim: int, neuron: NeuronFactory) -> None:
        super().__init__()
        self.n1, self.c1 = neuron(), SeqConvBN(dim, dim, 3)
        self.n2, self.c2 = neuron(), SeqConvBN(dim, dim, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.c2(self.n2(self.c1(self.n1(x))))


class Down(nn.Module):
    """LIF (absent for the encoding layer) -> conv3x3 stride 2 + BN."""

    def __init__(self, cin: int, cout: int, neuron: NeuronFactory | None, k: int = 3) -> None:
        super().__init__()
        self.neuron = neuron() if neuron is not None else None
        self.conv = SeqConvBN(cin, cout, k, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.neuron(x) if self.neuron is not None else x)


class DeployableStudent(nn.Module):
    """Conv-only spiking tracker with a depthwise template-search correlation (see the module docstring)."""

    encodes_template = True

    def __init__(self, *, dims: list[int], depths: list[int], corr_kernel: int, head_channels: int,
                 neuron: NeuronFactory, timesteps: int, in_chans: int = 2) -> None:
        super().__init__()
        if len(dims) != 4 or len(depths) != 3:
            raise ValueError("the deployable student needs 4 widths (dims) and 3 stage depths")
        self.dims = list(dims)
        self.stem = Down(in_chans, dims[0], None)
        self.down1 = Down(dims[0], dims[1], neuron)
        self.stage1 = nn.ModuleList(ConvBlock(dims[1], neuron) for _ in range(depths[0]))
        self.down2 = Down(dims[1], dims[2], neuron)
        self.stage2 = nn.ModuleList(ConvBlock(dims[2], neuron) for _ in range(depths[1]))
        self.down3 = Down(dims[2], dims[3], neuron)
        self.stage3 = nn.ModuleList(ConvBlock(dims[3], neuron) for _ in range(depths[2]))
        self.feat = neuron()
        self.corr_kernel = int(corr_kernel)
        self.correlation = TemplateCorrelation(dims[3], self.corr_kernel)
        self.corr_scale = SeqConvBN(dims[3], dims[3], 1)  # mixes correlation channels (analog input: MACs)
        self.n_head1 = neuron()
        self.head1 = SeqConvBN(dims[3], head_channels, 3)
        self.n_head2 = neuron()
        self.head2 = nn.Conv2d(head_channels, 5, 1)  # score, size (2), offset (2); output currents
        self.timesteps = timesteps
        self.input_spec = InputSpec.event_bins(timesteps)
        self.feature_info = [dict(num_chs=dims[3], module="stage3"), dict(num_chs=dims[3], module="corr_scale")]
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and not isinstance(m, TemplateCorrelation):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        with torch.no_grad():
            self.head2.weight.mul_(0.1)
            init_score_bias(self.head2, channels=1)

    def reset_state(self) -> None:
        reset_neurons(self)

    def summary_parts(self) -> dict[str, nn.Module]:
        """Parameter groups for ``spiketrack model summary``: backbone, correlation, head."""
        backbone = [self.stem, self.down1, *self.stage1, self.down2, *self.stage2, self.down3, *self.stage3, self.feat]
        return {"backbone": nn.ModuleList(backbone), "correlation": nn.ModuleList([self.correlation, self.corr_scale]),
                "head": nn.ModuleList([self.n_head1, self.head1, self.n_head2, self.head2])}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised bins [T, B, 2, H, W] -> analog stride-16 features [T, B, C, H/16, W/16] (before ``feat``)."""
        x = self.down1(self.stem(x))
        for blk in self.stage1:
            x = blk(x)
        x = self.down2(x)
        for blk in self.stage2:
            x = blk(x)
        x = self.down3(x)
        for blk in self.stage3:
            x = blk(x)
        return x

    def encode_template(self, template_bins: torch.Tensor) -> torch.Tensor:
        """template_bins [T, B, 2, Ht, Wt] -> correlation kernel [B, C, k, k] (template feature firing rates)."""
        check_event_bins(template_bins, "template_bins")
        self.reset_state()
        spikes = self.feat(self.features(torch.log1p(template_bins.clamp_min(0))))
        return template_kernel(spikes.mean(dim=0), self.corr_kernel)

    def correlate(self, spikes: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        """Depthwise cross-correlation: search spikes [T, B, C, h, w] with kernel [B, C, k, k] -> [T, B, C, h, w]."""
        return self.correlation(spikes, kernel)

    def track(
        self, search_bins: torch.Tensor, kernel: torch.Tensor, return_features: bool | Collection[str] = False
    ) -> dict[str, Any]:
        """search_bins [T, B, 2, Hs, Ws] + template kernel -> score/size/offset maps [B, 1|2|2, Hs/16, Ws/16], pred_boxes."""
        check_event_bins(search_bins, "search_bins")
        self.reset_state()
        f = self.features(torch.log1p(search_bins.clamp_min(0)))
        corr = self.corr_scale(self.correlate(self.feat(f), kernel))
        out_t = self.head2_forward(corr)
        maps = out_t.mean(dim=0)
        out: dict[str, Any] = _head_outputs(maps[:, :1], maps[:, 1:3], maps[:, 3:5])
        if wants(return_features, "features"):
            out["features"] = [time_mean_tokens(f), time_mean_tokens(corr)]
        if wants(return_features, "similarity"):
            out["similarity"] = []
        return out

    def head2_forward(self, corr: torch.Tensor) -> torch.Tensor:
        """Correlation currents [T, B, C, h, w] -> output currents [T, B, 5, h, w]."""
        y = self.head1(self.n_head1(corr))
        s = self.n_head2(y)
        t, b = s.shape[:2]
        return self.head2(s.flatten(0, 1)).view(t, b, 5, *s.shape[-2:])

    def forward(
        self, template_bins: torch.Tensor, search_bins: torch.Tensor, return_features: bool | Collection[str] = False
    ) -> dict[str, Any]:
        return self.track(search_bins, self.encode_template(template_bins), return_features)

    def nir_forward(self, x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        """What the exported NIR graph computes: normalised bins x [T, B, 2, H, W] and a template kernel
        [B, C, k, k] -> output currents [T, B, 5, h, w] (no normalisation, no time average, no decoding)."""
        return self.head2_forward(self.corr_scale(self.correlate(self.feat(self.features(x)), kernel)))


__all__ = ["ConvBlock", "DeployableStudent", "Down"]
