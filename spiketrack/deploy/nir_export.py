"""Export of the spiking student to NIR (Neuromorphic Intermediate Representation, Pedersen et al., Nat.
Commun. 2024; the ``nir`` package).

What is exported
----------------
The NIR-expressible subgraph of the model, one NIR node per spiking neuron layer and per weight layer,
named by the PyTorch module name:

- **weight layers**: every conv / linear + BN pair becomes one ``nir.Conv2d`` whose weight and bias are
  the *folded* BN (:mod:`spiketrack.deploy.fold`); the graph carries no BN.
- **membrane shortcuts** (``x + f(x)``): NIR sums all edges that enter a node, so a residual sum is the
  set of edges from every term into each consumer; no extra node.
- **neurons**: spikingjelly's ``LIFNode`` (decay_input=True, hard reset) -> ``nir.LIF`` (see below).
- the graph runs one timestep per call; T calls = one frame (T event bins). Its input is the *normalised*
  event bins ``log1p(counts)`` [2, H, W] (the normalisation is a host-side preprocessing step).

LIF mapping (exact)
-------------------
spikingjelly's discrete LIF (``decay_input=True``, ``v_reset`` = 0, hard reset), per timestep::

    H[t] = V[t-1] + (X[t] - (V[t-1] - v_reset)) / tau
    S[t] = H[t] >= v_th ;  V[t] = v_reset if S[t] else H[t]

NIR's LIF is ``tau_nir dv/dt = (v_leak - v) + R I``, spike when ``v > v_thr``, reset to ``v_reset``. Its
forward-Euler step with step ``dt`` is ``v += dt / tau_nir * ((v_leak - v) + R I)``, which equals the
spikingjelly update with

    tau_nir = tau * dt,  R = 1,  v_leak = v_reset,  v_threshold = v_th,  v_reset = v_reset

(the mapping of spikingjelly's own ``nir_exchange.to_nir``). ``dt`` is a free unit of time: we use
:data:`NIR_DT` = 1e-4 s, the step snnTorch's NIR importer assumes (it builds ``beta = 1 - 1e-4 / tau``), and
store it in the graph metadata. The one difference is the comparison at the threshold (``>=`` here, ``>`` in
NIR), which matters only when the membrane lands exactly on the threshold.

Not exported (listed per layer with the reason, :class:`Unsupported`)
---------------------------------------------------------------------
- integer-valued I-LIF neurons (D levels): I-LIF emits ``round(clip(H / v_th, 0, D))`` spikes per step
  with a *soft* reset (``V = H - C v_th``), i.e. it fires from ``H >= v_th / 2`` and keeps the remainder.
  NIR's LIF/CubaLIF/IF emit one binary spike with a hard reset at ``v > v_thr``. Expanding a step into D
  binary sub-steps does not reproduce the rounding (half-threshold) nor the once-per-step leak with NIR's
  per-step leak, so the export refuses models with I-LIF neurons (even D = 1: the rounding still fires at
  half threshold).
- spike x spike products (spike-driven attention ``Q (K^T V)``, ``K^T V``): NIR's weight layers have
  static weights; a product of two dynamic spike tensors has no NIR primitive.
- the attention's fixed scale 0.125 and the BN after the product: analog scalings of that product.
- memory retrieval (queries against the cached template memory): products with data-dependent tensors.
- head: the time average over T and the analog projection / box decoding (argmax) run on the host.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from spikingjelly.activation_based import neuron as sj_neuron
from torch import nn

from spiketrack.atomic import atomic_write_bytes
from spiketrack.deploy.fold import folded_weight_bias
from spiketrack.errors import SpiketrackError, output_error
from spiketrack.models.correlation import TemplateCorrelation
from spiketrack.models.heads import SpikingBranch, SpikingCenterHead
from spiketrack.models.spiking.deployable import ConvBlock, DeployableStudent, Down
from spiketrack.models.spiking.memory import MemoryRetrieval
from spiketrack.models.spiking.metaformer import (
    SeqConvBN,
    SpikeDrivenSelfAttention,
    SpikingConvBlock,
    SpikingDownsample,
    SpikingMetaFormer,
    SpikingTransformerBlock,
    TokenProjection,
)

NIR_DT = 1e-4  # seconds per timestep in the exported graph (snnTorch's NIR importer assumes 1e-4)


class ExportError(SpiketrackError, ValueError):
    """The model (or a part asked for) cannot be expressed in NIR; the message says why."""


@dataclass(frozen=True)
class Unsupported:
    """One layer (or operation) that NIR cannot express, and why."""

    layer: str
    op: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"layer": self.layer, "op": self.op, "reason": self.reason}


@dataclass
class NIRExport:
    """An exported NIR graph with what it covers and what it leaves out."""

    graph: Any  # nir.NIRGraph
    input_shape: tuple[int, int, int]  # [C, H, W] per timestep
    output_shape: tuple[int, ...]
    neurons: list[str] = field(default_factory=list)  # NIR node names of the LIF layers (= module names)
    unsupported: list[Unsupported] = field(default_factory=list)
    dt: float = NIR_DT
    placeholder_template: bool = False  # the correlation weights are a placeholder, not an encoded template

    def summary(self) -> dict[str, Any]:
        return {
            **({"template": "placeholder"} if self.placeholder_template else {}),
            "nodes": len(self.graph.nodes),
            "edges": len(self.graph.edges),
            "lif_layers": len(self.neurons),
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "dt": self.dt,
            "unsupported": [u.to_dict() for u in self.unsupported],
        }


I_LIF_REASON = (
    "integer-valued I-LIF (round(clip(H/v_th, 0, D)) spikes per step, soft reset) has no NIR neuron: NIR "
    "LIF/CubaLIF/IF emit binary spikes at v > v_thr with a hard reset; D binary sub-steps do not reproduce the "
    "half-threshold rounding or the once-per-step leak"
)


def lif_to_nir(module: nn.Module, shape: tuple[int, ...], dt: float = NIR_DT) -> Any:
    """spikingjelly LIFNode -> ``nir.LIF`` of ``shape`` (exact mapping, module docstring); refuses the rest."""
    import nir

    if isinstance(module, sj_neuron.ILIFNode) or getattr(module, "levels", 1) != 1:
        raise ExportError(I_LIF_REASON)
    if not isinstance(module, sj_neuron.LIFNode):
        raise ExportError(f"{type(module).__name__}: only spikingjelly LIFNode neurons map to NIR")
    if not module.decay_input:
        raise ExportError("LIFNode with decay_input=False is not mapped (use R = tau)")
    if module.v_reset is None:
        raise ExportError("LIFNode with soft reset (v_reset=None) has no NIR equivalent (NIR resets to v_reset)")
    tau = float(module.tau)
    v_reset = float(module.v_reset)
    full = lambda v: np.full(shape, v, dtype=np.float32)  # noqa: E731
    return nir.LIF(tau=full(tau * dt), r=full(1.0), v_leak=full(v_reset), v_threshold=full(float(module.v_threshold)),
                   v_reset=full(v_reset))


def nir_lif_step_params(node: Any, dt: float = NIR_DT) -> dict[str, float]:
    """Back from a ``nir.LIF`` to spikingjelly's (tau, v_threshold, v_reset) (for checks and readers)."""
    return {
        "tau": float(np.unique(node.tau)[0] / dt),
        "v_threshold": float(np.unique(node.v_threshold)[0]),
        "v_reset": float(np.unique(node.v_reset)[0]),
    }


def dense_grouped_weight(w: torch.Tensor, groups: int) -> torch.Tensor:
    """Grouped conv weight [Cout, Cin/g, k, k] -> the equivalent dense weight [Cout, Cin, k, k] (zeros off the groups).

    NIR's Conv2d type inference and snnTorch's importer take ``in_channels = weight.shape[1]``, so a grouped
    (depthwise) conv is written as this dense conv: the same function, with explicit zero synapses.
    """
    if groups == 1:
        return w
    cout, cin_g = w.shape[:2]
    out_g = cout // groups
    dense = w.new_zeros(cout, cin_g * groups, *w.shape[2:])
    for g in range(groups):
        dense[g * out_g:(g + 1) * out_g, g * cin_g:(g + 1) * cin_g] = w[g * out_g:(g + 1) * out_g]
    return dense


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


class _GraphBuilder:
    """Builds a NIR graph; an analog value is the list of node names whose outputs sum into it."""

    def __init__(self, dt: float) -> None:
        self.template: torch.Tensor | None = None  # the deployable student's correlation kernel [1, C, k, k]
        self.nodes: dict[str, Any] = {}
        self.edges: list[tuple[str, str]] = []
        self.neurons: list[str] = []
        self.dt = dt

    def _connect(self, name: str, sources: list[str]) -> None:
        self.edges += [(s, name) for s in sources]

    def neuron(self, name: str, module: nn.Module, sources: list[str], shape: tuple[int, ...]) -> list[str]:
        try:
            self.nodes[name] = lif_to_nir(module, shape, self.dt)
        except ExportError as exc:
            raise ExportError(f"layer {name!r}: {exc}") from None
        self._connect(name, sources)
        self.neurons.append(name)
        return [name]

    def conv(self, name: str, layer: SeqConvBN, sources: list[str], shape: tuple[int, int, int]) -> tuple[list[str], tuple[int, int, int]]:
        import nir

        conv = layer.conv
        w, b = folded_weight_bias(conv, layer.bn)
        w = dense_grouped_weight(w, conv.groups)
        node = nir.Conv2d(
            input_shape=(shape[1], shape[2]), weight=w.cpu().float().numpy(), stride=_pair(conv.stride),
            padding=_pair(conv.padding), dilation=_pair(conv.dilation), groups=1, bias=b.cpu().float().numpy(),
        )
        self.nodes[name] = node
        self._connect(name, sources)
        h, wd = (int(v) for v in node.output_type["output"][1:])
        return [name], (w.shape[0], h, wd)

    def finish(self, input_shape: tuple[int, int, int], sources: list[str], output_shape: tuple[int, ...], metadata: dict) -> Any:
        import nir

        self.nodes["input"] = nir.Input(input_type=np.array(input_shape))
        self.nodes["output"] = nir.Output(output_type=np.array(output_shape))
        self._connect("output", sources)
        return nir.NIRGraph(nodes=self.nodes, edges=self.edges, metadata=metadata)


class _Plain(nn.Module):
    """A conv with bias and no BN, presented like SeqConvBN (``conv`` + identity ``bn``) to the graph builder."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv, self.bn = conv, nn.Identity()


def _correlation_conv(kernel: torch.Tensor) -> _Plain:
    """The depthwise template correlation with one kernel [C, k, k] as a grouped conv (weights = the template)."""
    c, k = kernel.shape[0], kernel.shape[-1]
    conv = nn.Conv2d(c, c, k, padding=k // 2, groups=c, bias=False)
    conv.weight.data.copy_(kernel.reshape(c, 1, k, k))
    return _Plain(conv)


# ----------------------------------------------------------------------------- the layer table
Shape = tuple[int, int, int]
Handler = Callable[[_GraphBuilder, str, Any, list[str], Shape], tuple[list[str], Shape]]


def _neuron(g: _GraphBuilder, name: str, m: nn.Module, x: list[str], shape: Shape) -> tuple[list[str], Shape]:
    return g.neuron(name, m, x, shape), shape  # lif_to_nir refuses I-LIF and other neurons with the reason


def _conv_bn(g: _GraphBuilder, name: str, m: SeqConvBN, x: list[str], shape: Shape) -> tuple[list[str], Shape]:
    return g.conv(name, m, x, shape)


def _plain_conv(g: _GraphBuilder, name: str, m: nn.Conv2d, x: list[str], shape: Shape) -> tuple[list[str], Shape]:
    return g.conv(name, _Plain(m), x, shape)


def _downsample(g: _GraphBuilder, name: str, m: SpikingDownsample | Down, x: list[str], shape: Shape) -> tuple[list[str], Shape]:
    """(LIF ->) conv + BN: both students' downsampling layers (the encoding layer has no neuron)."""
    if m.neuron is not None:
        x = g.neuron(f"{name}.neuron", m.neuron, x, shape)
    return g.conv(f"{name}.conv", m.conv, x, shape)


def _metaformer_conv_block(g: _GraphBuilder, name: str, m: SpikingConvBlock, x: list[str], shape: Shape) -> tuple[list[str], Shape]:
    """x + SepConv(x), then + ChannelConv(x): membrane shortcuts are edges summed by the consuming node."""
    mix = m.mixer
    y = g.neuron(f"{name}.mixer.n1", mix.n1, x, shape)
    y, s = g.conv(f"{name}.mixer.pw1", mix.pw1, y, shape)
    y = g.neuron(f"{name}.mixer.n2", mix.n2, y, s)
    y, s = g.conv(f"{name}.mixer.dw", mix.dw, y, s)
    y = g.neuron(f"{name}.mixer.n3", mix.n3, y, s)
    y, _ = g.conv(f"{name}.mixer.pw2", mix.pw2, y, s)
    x = x + y  # membrane shortcut: NIR sums the edges entering a node
    mlp = m.mlp
    y = g.neuron(f"{name}.mlp.n1", mlp.n1, x, shape)
    y, s = g.conv(f"{name}.mlp.c1", mlp.c1, y, shape)
    y = g.neuron(f"{name}.mlp.n2", mlp.n2, y, s)
    y, _ = g.conv(f"{name}.mlp.c2", mlp.c2, y, s)
    return x + y, shape


def _deployable_conv_block(g: _GraphBuilder, name: str, m: ConvBlock, x: list[str], shape: Shape) -> tuple[list[str], Shape]:
    """x + conv(LIF(conv(LIF(x))))."""
    y = g.neuron(f"{name}.n1", m.n1, x, shape)
    y, s = g.conv(f"{name}.c1", m.c1, y, shape)
    y = g.neuron(f"{name}.n2", m.n2, y, s)
    y, _ = g.conv(f"{name}.c2", m.c2, y, s)
    return x + y, shape


def _template_correlation(g: _GraphBuilder, name: str, m: TemplateCorrelation, x: list[str], shape: Shape) -> tuple[list[str], Shape]:
    """The depthwise template correlation as a grouped conv whose weights are the template kernel."""
    if g.template is None:
        raise ExportError(f"layer {name!r}: the template correlation needs a template kernel")
    return g.conv(name, _correlation_conv(g.template[0].detach()), x, shape)


# module type -> how it becomes NIR nodes (looked up along the type's MRO, so a subclass maps like its base)
NIR_LAYERS: dict[type, Handler] = {
    sj_neuron.BaseNode: _neuron,
    SeqConvBN: _conv_bn,
    SpikingDownsample: _downsample,
    Down: _downsample,
    SpikingConvBlock: _metaformer_conv_block,
    ConvBlock: _deployable_conv_block,
    TemplateCorrelation: _template_correlation,
    nn.Conv2d: _plain_conv,
}


def _handler(module: nn.Module) -> Handler | None:
    return next((NIR_LAYERS[cls] for cls in type(module).__mro__ if cls in NIR_LAYERS), None)


def _walk(g: _GraphBuilder, module: nn.Module, prefix: str, x: list[str], shape: Shape,
          stop: tuple[type, ...] = ()) -> tuple[list[str], Shape, str | None]:
    """Map ``module``'s children in registration order (their forward order in both students) through
    :data:`NIR_LAYERS`; containers are entered. Stops at the first child of a ``stop`` type and returns its name
    (None when every child was mapped). A child of a type with no mapping is an ExportError naming it."""
    for name, child in module.named_children():
        full = f"{prefix}{name}"
        if isinstance(child, nn.ModuleList | nn.Sequential):
            x, shape, stopped = _walk(g, child, f"{full}.", x, shape, stop)
            if stopped is not None:
                return x, shape, stopped
            continue
        if stop and isinstance(child, stop):
            return x, shape, full
        handler = _handler(child)
        if handler is None:
            raise ExportError(
                f"layer {full!r} ({type(child).__name__}): no NIR mapping for this layer type "
                "(spiketrack.deploy.nir_export.NIR_LAYERS)"
            )
        x, shape = handler(g, full, child, x, shape)
    return x, shape, None


def conv_backbone_graph(
    backbone: SpikingMetaFormer, input_shape: Shape, prefix: str = "backbone", dt: float = NIR_DT
) -> tuple[_GraphBuilder, list[str], Shape]:
    """NIR nodes of the backbone's conv stages (up to the first transformer block): builder, output sources,
    output shape [C, H, W]. Nodes are named ``<prefix>.<module path>`` (no prefix for ``prefix=''``)."""
    g = _GraphBuilder(dt)
    x, shape, _ = _walk(g, backbone, f"{prefix}." if prefix else "", ["input"], input_shape,
                        stop=(SpikingTransformerBlock, TokenProjection))
    return g, x, shape


def _input_channels(model: nn.Module) -> int:
    """Input channels of the model's first conv (the encoding layer)."""
    return int(next(m for m in model.modules() if isinstance(m, nn.Conv2d)).in_channels)


def deployable_graph(model: DeployableStudent, input_hw: tuple[int, int], dt: float = NIR_DT,
                     template: torch.Tensor | None = None) -> NIRExport:
    """NIR graph of the deployable student's whole search branch for one template kernel [1, C, k, k].

    ``template``: ``model.encode_template(crop)`` of the target (``spiketrack export --template``). Without it the
    correlation weights are a uniform placeholder (1/k^2), marked as such in the graph metadata and the summary.
    """
    k = model.corr_kernel
    placeholder = template is None
    if template is None:
        template = torch.full((1, model.dims[3], k, k), 1.0 / k**2)
    expected = (model.dims[3], k, k)
    if template.dim() != 4 or tuple(template.shape[1:]) != expected:
        raise ExportError(f"template kernel: expected shape [1, {model.dims[3]}, {k}, {k}], got {tuple(template.shape)}")
    g = _GraphBuilder(dt)
    g.template = template
    in_shape = (_input_channels(model), int(input_hw[0]), int(input_hw[1]))
    x, shape, _ = _walk(g, model, "", ["input"], in_shape)
    meta = {"source": "spiketrack", "dt": dt, "subgraph": "whole search branch (deployable student)",
            "input": "log1p(event counts) per timestep [2, H, W]",
            "output": "score, size (2), offset (2) currents per timestep; mean over T and decoding on the host",
            "template": "placeholder (uniform 1/k^2 kernel)" if placeholder else "encoded template kernel"}
    host = [
        Unsupported("input", "log1p(event counts)", "analog input normalisation (host preprocessing)"),
        Unsupported("template", "feature firing rates pooled to the kernel",
                    "once per template on the host; the kernel is the weight of the exported 'correlation' conv"
                    + (" (placeholder here: export with a template)" if placeholder else "")),
        Unsupported("output", "mean over T, sigmoid, box decoding", "readout of the output currents (host)"),
    ]
    return NIRExport(g.finish(in_shape, x, shape, meta), in_shape, shape, g.neurons, host, dt, placeholder)


_PRODUCT = "product of two dynamic spike tensors; NIR weight layers have static weights"
# Layer types of the MetaFormer student beyond the exported conv backbone: (name suffix, operation, reason) rows
UNSUPPORTED: dict[type, list[tuple[str, str, str]]] = {
    SpikeDrivenSelfAttention: [
        (".kv_matmul", "K^T V (spike x spike)", _PRODUCT),
        (".qkv_matmul", "Q (K^T V) (spike x count)", _PRODUCT),
        ("", "x 0.125, BN after the product", "analog scaling of a product NIR cannot form"),
    ],
    MemoryRetrieval: [("", "query x template memory", "product with a data-dependent (template) tensor")],
    TokenProjection: [("", "token projection", "after the first attention (outside the exported subgraph)")],
    TemplateCorrelation: [("", "correlation with the template kernel", "weights set per target from the template; "
                           "outside the exported conv subgraph")],
    SpikingBranch: [("", "mean over T -> analog 1x1 conv", "time average / analog readout on the host")],
    SpikingCenterHead: [("", "box decoding (argmax)", "not a neural operation (host)")],
}


def unsupported_layers(model: nn.Module) -> list[Unsupported]:
    """The layers of ``model`` beyond the exported conv backbone that NIR cannot express, with the reason."""
    out: list[Unsupported] = [Unsupported("input", "log1p(event counts)", "analog input normalisation (host preprocessing)")]
    for name, m in model.named_modules():
        for cls, rows in UNSUPPORTED.items():
            if isinstance(m, cls):
                out += [Unsupported(f"{name}{suffix}", op, reason) for suffix, op, reason in rows]
    return out


def export_nir(model: nn.Module, input_hw: tuple[int, int], dt: float = NIR_DT,
               template: torch.Tensor | None = None) -> NIRExport:
    """The NIR graph of ``model``'s expressible subgraph for a [2, H, W] input per timestep.

    Spiking MetaFormer students: the conv backbone (stem .. stride-16 downsampling), up to the first
    attention; the deployable student: its whole search branch (``template``: the correlation kernel, see
    :func:`deployable_graph`). Raises :class:`ExportError` with the reason when a layer cannot be expressed.
    """
    if isinstance(model, DeployableStudent):
        return deployable_graph(model, input_hw, dt, template)
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, SpikingMetaFormer)]
    if not found:
        raise ExportError(f"{type(model).__name__}: NIR export covers the spiking students (Spiking MetaFormer, "
                          "deployable) only")
    prefix, backbone = found[0]
    input_shape = (_input_channels(backbone), int(input_hw[0]), int(input_hw[1]))
    g, x, shape = conv_backbone_graph(backbone, input_shape, prefix=prefix, dt=dt)
    meta = {"source": "spiketrack", "dt": dt, "subgraph": "conv backbone (stem .. down3), up to the first attention",
            "input": "log1p(event counts) per timestep [2, H, W]"}
    graph = g.finish(input_shape, x, shape, meta)
    return NIRExport(graph, input_shape, shape, g.neurons, unsupported_layers(model), dt)


def write_nir(export: NIRExport, path: str | Path) -> Path:
    """Write the graph to an HDF5 ``.nir`` file (``nir.write``, atomically); returns the path.

    The HDF5 file is built in memory and written by Python in one go: a full disk then fails in one plain write
    (an :class:`~spiketrack.errors.OutputError` naming ``path``, the temporary file removed) instead of inside
    HDF5, whose half-written handles report errors from their destructors or crash (as ``data/h5seq.py`` does).
    """
    import nir

    path = Path(path)
    buffer = io.BytesIO()
    nir.write(buffer, export.graph)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buffer.getbuffer())
    except OSError as exc:
        error = output_error(exc, path, "the NIR file")
        if error is not None:
            raise error from None
        raise
    return path


def read_nir(path: str | Path) -> Any:
    """``nir.read`` of a written graph."""
    import nir

    return nir.read(str(path))


__all__ = [
    "NIR_LAYERS",
    "UNSUPPORTED",
    "ExportError",
    "NIRExport",
    "NIR_DT",
    "Unsupported",
    "conv_backbone_graph",
    "dense_grouped_weight",
    "deployable_graph",
    "export_nir",
    "lif_to_nir",
    "nir_lif_step_params",
    "read_nir",
    "unsupported_layers",
    "write_nir",
]
