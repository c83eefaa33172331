"""Exact operation counting with forward hooks: MACs for dense inputs, synaptic operations for spike inputs.

What is counted (docs/architecture.md, "Energy method")
---------------------------
* Every ``nn.Conv1d/2d/3d`` and ``nn.Linear`` (this includes spikingjelly's ``layer.Conv2d``/``layer.Linear``
  wrappers in single- and multi-step mode, which subclass them), every
  :class:`spiketrack.models.spiking.ops.SpikeMatMul`, and - at function level, for layers that do not wrap
  them in a module - ``torch.matmul``/``@``/``bmm``/``mm``, two-operand ``torch.einsum``, ``F.linear`` and
  ``F.scaled_dot_product_attention`` (the ANN teacher's attention: QK^T and softmax(.)V, 2 N M d MACs).
* A layer's input is a **spike** tensor when it is the output of a spiking neuron (a spikingjelly
  ``BaseNode``/``SimpleBaseNode`` subclass, or any module with ``spiketrack_is_neuron = True``) or a
  layout-only transform of one (view, reshape, permute, cat, pad with zeros, max-pool, dtype cast, ...).
  Outputs are recognised by their storage (``untyped_storage().data_ptr()``), so views of spike tensors stay
  spikes; copies are followed through the layout operations listed in ``_LAYOUT_OPS``. Everything else
  (event-count inputs, analog tensors, every layer of the ANN teacher) is **dense**. A module attribute
  ``spiketrack_input_kind = "dense" | "spike"`` overrides the decision for that module.
* **Spike counts.** A spike tensor's elements are converted to counts: binary spikes count 1; integer spikes
  whose values lie in {0, 1/D, ..., 1} carry ``D * value`` unit spikes. A neuron **declares** its D with an
  integer attribute ``levels`` (every neuron of :mod:`spiketrack.models.spiking.neurons` does; this is the
  whole protocol); for a neuron that declares nothing (spikingjelly's own nodes, user modules) D is
  **inferred** as the smallest D <= 64 that makes every output value an integer multiple of 1/D, and an
  output that fits no D (analog) is not a spike tensor. spikingjelly's ``ILIFNode`` emits counts {0..D}
  (inferred scale 1).
* **Exact SOPs** = fan-out of every unit spike: conv ``conv(counts, ones_like(weight), stride, padding,
  dilation, groups).sum()`` (zero padding receives no spikes, so border and stride effects are exact);
  linear ``counts.sum() * out_features``; ``A @ B`` with ``(counts_A @ ones).sum()`` when only A is spikes
  and ``(counts_A @ counts_B).sum()`` when both are (one operation per coinciding pair of unit spikes).
* **MACs** (dense inputs): conv ``out.numel() * C_in / groups * prod(kernel)``; linear
  ``out.numel() * in_features``; matmul ``out.numel() * K``. Bias additions are not counted and batch
  norm is taken as folded into the preceding conv/linear (it costs nothing), as in the SNN literature.
* **Paper-convention SOPs** = ``fr * T * FLOPs`` with FLOPs the dense MACs of one timestep and fr the mean
  spike count per input element and timestep (for a spike x spike product: fr of the left operand, the
  "weights-view" of Spikformer-style tables). It ignores padding and stride, so it differs from the exact
  count at borders.
* **Neuron updates** (one per neuron per timestep = the neuron's output ``numel``) and **residual
  additions** (element-wise ``+`` of two same-shaped tensors outside neurons and counted layers:
  shortcuts, and also any other same-shape feature sum such as an added position embedding at batch 1)
  are reported separately and are not part of the totals unless asked for.

Timesteps: spikingjelly multi-step layers see ``[T, B, ...]``; ``seq_to_ann_forward`` flattens to
``[T*B, ...]``. With ``timesteps=T`` the counter splits a layer's leading dimension time-major when it is
``T*B`` (or ``[T, B, ...]``) and reports per-timestep SOPs and firing rates; layers whose input has no time
dimension (e.g. heads after a temporal mean) are "static" and appear only in the totals.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from spikingjelly.activation_based.neuron import BaseNode
from spikingjelly.activation_based.neuron.base_node import SimpleBaseNode
from torch import nn
from torch.overrides import TorchFunctionMode

from spiketrack.energy.operations import LayerOps, NeuronOps, OperationReport
from spiketrack.models.spiking.ops import SpikeMatMul

DENSE = "dense"
SPIKE = "spike"

# Operations whose output holds the same values as (a rearrangement of) their inputs: spikes stay spikes.
_LAYOUT_OPS = frozenset(
    {
        "reshape", "view", "view_as", "permute", "transpose", "swapaxes", "contiguous", "flatten", "unflatten",
        "clone", "detach", "cat", "concat", "concatenate", "stack", "split", "chunk", "unbind", "tensor_split",
        "__getitem__", "expand", "expand_as", "repeat", "squeeze", "unsqueeze", "movedim", "moveaxis", "roll",
        "t", "narrow", "select", "flip", "to", "float", "half", "bfloat16", "double", "type", "type_as",
        "max_pool1d", "max_pool2d", "max_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d", "pixel_shuffle",
        "pixel_unshuffle", "unfold", "repeat_interleave", "mT", "transpose_", "squeeze_", "unsqueeze_",
    }
)
_MATMUL_OPS = frozenset({"matmul", "__matmul__", "__rmatmul__", "bmm", "mm"})
_ADD_OPS = frozenset({"add", "add_", "__add__", "__iadd__", "__radd__"})
_MAX_LEVELS = 64  # largest D tried when inferring integer-spike levels from values


# ------------------------------------------------------------------------------------------------
# Counting helpers (pure functions; exact integer results)
# ------------------------------------------------------------------------------------------------


def _is_neuron(module: nn.Module) -> bool:
    return isinstance(module, (BaseNode, SimpleBaseNode)) or bool(getattr(module, "spiketrack_is_neuron", False))


def _is_counted(module: nn.Module) -> bool:
    return isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, SpikeMatMul))


def neuron_spike_scale(module: nn.Module, out: torch.Tensor) -> float | None:
    """D of a neuron's output: declared by its integer ``levels`` attribute, else inferred from the values."""
    levels = getattr(module, "levels", None)
    if isinstance(levels, int) and levels >= 1:
        return float(levels)
    return infer_spike_scale(out)


def infer_spike_scale(values: torch.Tensor) -> float | None:
    """Unit spikes per unit of value: 1 for binary/count tensors, D for values in {0, 1/D, ..., 1}.

    Returns None when the values are not non-negative multiples of 1/D for any D <= 64 (an analog tensor,
    not spikes).
    """
    v = values.detach()
    if v.numel() == 0 or v.dtype == torch.bool:
        return 1.0
    v = v.float()
    if bool((v < 0).any()):
        return None
    for d in range(1, _MAX_LEVELS + 1):
        scaled = v * d
        if bool(((scaled - scaled.round()).abs() <= 1e-4 * d).all()):
            return float(d)
    return None


def _counts(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Integer unit-spike counts of a spike tensor as float32."""
    c = x.detach().float()
    if scale != 1.0:
        c = (c * scale).round()
    return c


def _tensor_args(args: Any) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    if isinstance(args, torch.Tensor):
        out.append(args)
    elif isinstance(args, (list, tuple)):
        for a in args:
            out.extend(_tensor_args(a))
    elif isinstance(args, dict):
        for a in args.values():
            out.extend(_tensor_args(a))
    return out


class _FunctionWatcher(TorchFunctionMode):
    """Sees every torch function call during a counted forward (spike propagation, matmuls, adds)."""

    def __init__(self, counter: OperationCounter) -> None:
        super().__init__()
        self.counter = counter

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        c = self.counter
        if c._busy:
            return out
        name = getattr(func, "__name__", "")
        try:
            c._busy = True
            if name in _LAYOUT_OPS:
                c._propagate(args, out)
            elif name == "pad":
                value = kwargs.get("value", args[3] if len(args) > 3 else None)
                mode = kwargs.get("mode", args[2] if len(args) > 2 else "constant")
                if mode == "constant" and not value:
                    c._propagate(args[:1], out)
            elif c._layer_depth == 0 and c._neuron_depth == 0:
                if name in _MATMUL_OPS and len(args) >= 2:
                    c._count_function_matmul(args[0], args[1], out)
                elif name == "scaled_dot_product_attention":
                    c._count_sdpa(args, kwargs, out)
                elif name == "linear" and len(args) >= 2:
                    c._count_function_linear(args[0], args[1], out)
                elif name == "einsum":
                    c._count_einsum(args, out)
                elif name in _ADD_OPS and len(args) >= 2:
                    a, b = args[0], args[1]
                    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape:
                        c.residual_adds += a.numel()
        finally:
            c._busy = False
        return out


class OperationCounter:
    """Context manager that attaches the hooks to ``model`` and collects one :class:`OperationReport`.

    >>> with torch.no_grad(), OperationCounter(model, timesteps=4) as counter:
    ...     out = model(x)
    >>> report = counter.report()
    """

    def __init__(self, model: nn.Module, *, timesteps: int = 1, batch_size: int | None = None) -> None:
        if timesteps < 1:
            raise ValueError(f"timesteps must be >= 1, got {timesteps}")
        self.model = model
        self.timesteps = int(timesteps)
        self.batch_size = batch_size
        self._handles: list[Any] = []
        self._names = {m: n or type(model).__name__ for n, m in model.named_modules()}
        self._mode = _FunctionWatcher(self)
        self.reset()

    # -------------------------------------------------------------------------------- lifecycle
    def reset(self) -> None:
        """Forget everything counted so far (hooks stay attached)."""
        self.layers: list[LayerOps] = []
        self.neurons: list[NeuronOps] = []
        self.residual_adds = 0
        self._spikes: dict[int, tuple[torch.Tensor, float]] = {}
        self._calls: dict[str, int] = {}
        self._stack: list[str] = []
        self._layer_depth = 0
        self._neuron_depth = 0
        self._busy = False
        self.saw_grad = False  # some counted layer's output required grad (a training forward: test-time tuning)

    def __enter__(self) -> OperationCounter:
        for module in self.model.modules():
            self._handles.append(module.register_forward_pre_hook(self._pre_hook))
            self._handles.append(module.register_forward_hook(self._post_hook, with_kwargs=True))
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._mode.__exit__(*exc)
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._spikes.clear()  # release the references that kept spike storages alive

    def infer_batch_size(self, inputs: Any) -> None:
        """Set B from the first input tensor ([T, B, ...] when T > 1, else [B, ...]) unless given."""
        if self.batch_size is not None:
            return
        tensors = _tensor_args(inputs)
        if not tensors:
            self.batch_size = 1
            return
        t = tensors[0]
        if self.timesteps > 1 and t.ndim >= 2 and t.shape[0] == self.timesteps:
            self.batch_size = int(t.shape[1])
        else:
            self.batch_size = int(t.shape[0]) if t.ndim else 1

    def report(self) -> OperationReport:
        return OperationReport(list(self.layers), list(self.neurons), int(self.residual_adds), self.timesteps)

    # -------------------------------------------------------------------------------- spike bookkeeping
    def _register_spikes(self, t: torch.Tensor, scale: float) -> None:
        if isinstance(t, torch.Tensor) and t.numel() > 0:
            # keep a reference: a freed storage could be reused by a dense tensor at the same address
            self._spikes[t.untyped_storage().data_ptr()] = (t, scale)

    def _spike_scale(self, t: torch.Tensor) -> float | None:
        if not isinstance(t, torch.Tensor) or t.numel() == 0:
            return None
        entry = self._spikes.get(t.untyped_storage().data_ptr())
        return None if entry is None else entry[1]

    def _kind(self, t: torch.Tensor, module: nn.Module | None = None) -> tuple[str, float]:
        """(kind, D) of a layer input: spikes by provenance, unless ``module.spiketrack_input_kind`` says."""
        override = getattr(module, "spiketrack_input_kind", None)
        if override not in (None, DENSE, SPIKE):
            raise ValueError(f"{self._names.get(module)}.spiketrack_input_kind must be 'dense' or 'spike'")
        scale = self._spike_scale(t)
        if override == DENSE or (override is None and scale is None):
            return DENSE, 1.0
        return SPIKE, scale if scale is not None else 1.0

    def _propagate(self, args: Any, out: Any) -> None:
        """Mark the outputs of a layout operation as spikes when all its tensor inputs are spikes of one D."""
        inputs = _tensor_args(args)
        if not inputs:
            return
        scales = [self._spike_scale(t) for t in inputs]
        if any(s is None for s in scales) or len(set(scales)) != 1:
            return
        for t in _tensor_args(out):
            self._register_spikes(t, scales[0])

    # -------------------------------------------------------------------------------- time split
    def _time_chunks(self, lead: tuple[int, ...], multistep: bool) -> int | None:
        """Number of time-major chunks of the flattened leading dims, or None for a static layer."""
        if multistep:
            return int(lead[0])
        T, B = self.timesteps, self.batch_size or 1
        if T == 1:
            return 1
        if lead and lead[0] == T * B:
            return T
        if len(lead) >= 2 and lead[0] == T and lead[1] == B:
            return T
        return None

    # -------------------------------------------------------------------------------- hooks
    def _pre_hook(self, module: nn.Module, args: tuple) -> None:
        if self._busy:
            return
        self._stack.append(self._names.get(module, type(module).__name__))
        if _is_counted(module):
            self._layer_depth += 1
        if _is_neuron(module):
            self._neuron_depth += 1

    def _post_hook(self, module: nn.Module, args: tuple, kwargs: dict, out: Any) -> None:
        if self._busy:
            return
        name = self._stack.pop() if self._stack else self._names.get(module, "?")
        self._busy = True
        try:
            if _is_counted(module):
                self._layer_depth -= 1
                self.saw_grad = self.saw_grad or (isinstance(out, torch.Tensor) and out.requires_grad)
                if self._layer_depth == 0 and self._neuron_depth == 0:
                    self._count_module(module, name, args, kwargs, out)
            if _is_neuron(module):
                self._neuron_depth -= 1
                self._count_neuron(module, name, out)
        finally:
            self._busy = False

    def _unique(self, name: str) -> str:
        k = self._calls.get(name, 0)
        self._calls[name] = k + 1
        return name if k == 0 else f"{name}#{k}"

    def _count_neuron(self, module: nn.Module, name: str, out: Any) -> None:
        if not isinstance(out, torch.Tensor):
            return
        # a declared D matters: a D = 4 output that happens to hold only 0 and 1 (= 4 unit spikes) is not binary
        scale = neuron_spike_scale(module, out)
        spikes = 0
        if scale is not None:
            self._register_spikes(out, scale)
            spikes = int(_counts(out, scale).double().sum().item())
        self.neurons.append(NeuronOps(self._unique(name), type(module).__name__, out.numel(), spikes, list(out.shape)))

    def _count_module(self, module: nn.Module, name: str, args: tuple, kwargs: dict, out: Any) -> None:
        if isinstance(module, SpikeMatMul):
            a = args[0] if args else kwargs["a"]
            b = args[1] if len(args) > 1 else kwargs["b"]
            dense = getattr(module, "spiketrack_input_kind", None) == DENSE
            kinds = (self._kind(a, module), (DENSE, 1.0) if dense else self._kind(b))
            self._record_matmul(self._unique(name), "SpikeMatMul", a, b, out, kinds)
        elif isinstance(module, nn.Linear):
            x = args[0] if args else next(iter(kwargs.values()))
            self._record_linear(self._unique(name), module, x, out)
        else:
            x = args[0] if args else next(iter(kwargs.values()))
            self._record_conv(self._unique(name), module, x, out)

    # -------------------------------------------------------------------------------- layer rules
    def _spike_stats(self, counts: torch.Tensor, chunks: int | None) -> tuple[float, list[float] | None]:
        fr = float(counts.double().mean().item()) if counts.numel() else 0.0
        if chunks is None:
            return fr, None
        per = counts.reshape(chunks, -1).double().mean(1)
        return fr, [float(v) for v in per.tolist()]

    def _finish(
        self,
        name: str,
        type_name: str,
        kind: str,
        operands: str,
        dense_mac: int,
        sop_per_sample: torch.Tensor | None,
        counts: torch.Tensor | None,
        fr_paper: float | None,
        chunks: int | None,
        in_shape: list[int],
        out_shape: list[int],
    ) -> None:
        if kind == DENSE:
            mac, sop, sop_paper, fr, fr_t = dense_mac, 0, 0.0, None, None
            sop_t = [0] * chunks if chunks else None
            mac_t = [dense_mac / chunks] * chunks if chunks else None
        else:
            assert sop_per_sample is not None and counts is not None
            mac, mac_t = 0, ([0.0] * chunks if chunks else None)
            sop = int(round(float(sop_per_sample.double().sum().item())))
            fr, fr_t = self._spike_stats(counts, chunks)
            fr_paper = fr if fr_paper is None else fr_paper
            sop_paper = fr_paper * dense_mac
            sop_t = None
            if chunks:
                sop_t = [int(round(v)) for v in sop_per_sample.double().reshape(chunks, -1).sum(1).tolist()]
        self.layers.append(
            LayerOps(name, type_name, kind, operands, int(mac), sop, float(sop_paper), int(dense_mac), fr, fr_t,
                     sop_t, mac_t, in_shape, out_shape, chunks)
        )

    def _record_conv(self, name: str, module: nn.Module, x: torch.Tensor, out: torch.Tensor) -> None:
        k = module.weight.ndim - 2
        multistep = x.ndim == k + 3
        xf = x.flatten(0, 1) if multistep else (x.unsqueeze(0) if x.ndim == k + 1 else x)
        lead = tuple(x.shape[:2]) if multistep else (int(xf.shape[0]),)
        chunks = self._time_chunks(lead, multistep)
        per_out = module.in_channels // module.groups * math.prod(module.weight.shape[2:])
        dense_mac = out.numel() * per_out
        kind, scale = self._kind(x, module)
        sop_per_sample = counts = None
        if kind == SPIKE:
            counts = _counts(xf, scale)
            padding = module.padding
            if module.padding_mode != "zeros":
                counts = F.pad(counts, module._reversed_padding_repeated_twice, mode=module.padding_mode)
                padding = 0
            conv = (F.conv1d, F.conv2d, F.conv3d)[k - 1]
            fan = conv(counts, torch.ones_like(module.weight, dtype=counts.dtype), None, module.stride, padding,
                       module.dilation, module.groups)
            sop_per_sample = fan.reshape(fan.shape[0], -1).double().sum(1)
        self._finish(name, type(module).__name__, kind, kind, dense_mac, sop_per_sample, counts, None, chunks,
                     list(x.shape), list(out.shape))

    def _record_linear(
        self, name: str, module: nn.Linear, x: torch.Tensor, out: torch.Tensor, type_name: str | None = None
    ) -> None:
        multistep = getattr(module, "step_mode", "s") == "m" and x.ndim >= 3
        lead = tuple(x.shape[:-1])
        chunks = self._time_chunks(lead, multistep) if x.ndim >= 2 else None
        dense_mac = out.numel() * module.in_features
        kind, scale = self._kind(x, module)
        sop_per_sample = counts = None
        if kind == SPIKE:
            counts = _counts(x, scale)
            sop_per_sample = counts.reshape(-1, module.in_features).double().sum(1) * module.out_features
        self._finish(name, type_name or type(module).__name__, kind, kind, dense_mac, sop_per_sample, counts, None, chunks,
                     list(x.shape), list(out.shape))

    def _record_product(
        self,
        name: str,
        type_name: str,
        a: torch.Tensor,
        b: torch.Tensor,
        out: torch.Tensor,
        kinds: tuple[tuple[str, float], tuple[str, float]],
        dense_mac: int,
        chunks: int | None,
        product: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    ) -> None:
        """A two-operand product (matmul, einsum): MACs when both operands are dense, else exact SOPs.

        ``product(counts_a, counts_b)`` gives the SOPs per leading sample; a dense operand enters as ones, so
        every unit spike of the other operand fans out to all the values it meets.
        """
        (ka, sa), (kb, sb) = kinds
        operands = f"{ka}@{kb}"
        if ka == DENSE and kb == DENSE:
            self._finish(name, type_name, DENSE, operands, dense_mac, None, None, None, chunks, list(a.shape),
                         list(out.shape))
            return
        ca = _counts(a, sa) if ka == SPIKE else torch.ones_like(a, dtype=torch.float32)
        cb = _counts(b, sb) if kb == SPIKE else torch.ones_like(b, dtype=torch.float32)
        per_sample = product(ca, cb)
        # firing-rate statistics follow the left spike operand, split along the same leading dims
        spike_counts = ca if ka == SPIKE else cb
        fr_paper = float(spike_counts.double().mean().item()) if spike_counts.numel() else 0.0
        if chunks and (spike_counts.numel() % chunks or per_sample.numel() % chunks):
            chunks = None
        self._finish(name, type_name, SPIKE, operands, dense_mac, per_sample, spike_counts, fr_paper, chunks,
                     list(a.shape), list(out.shape))

    def _record_matmul(
        self,
        name: str,
        type_name: str,
        a: torch.Tensor,
        b: torch.Tensor,
        out: torch.Tensor,
        kinds: tuple[tuple[str, float], tuple[str, float]],
    ) -> None:
        """``a @ b``: out.numel() * K MACs; time chunks from the leading (batch) dimensions of the output."""
        lead = tuple(out.shape[:-2]) if out.ndim > 2 else ()
        chunks = self._time_chunks(lead, False) if lead else None

        def per_sample(ca: torch.Tensor, cb: torch.Tensor) -> torch.Tensor:
            prod = ca @ cb
            if prod.ndim <= 2:
                return prod.double().sum().reshape(1)
            return prod.reshape(-1, *prod.shape[-2:]).double().sum((-1, -2))

        self._record_product(name, type_name, a, b, out, kinds, out.numel() * a.shape[-1], chunks, per_sample)

    def _count_function_matmul(self, a: Any, b: Any, out: Any) -> None:
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and isinstance(out, torch.Tensor)):
            return
        if a.ndim < 1 or b.ndim < 1:
            return
        self._record_matmul(self._unique(f"{self._parent()}.matmul"), "matmul", a, b, out,
                            (self._kind(a), self._kind(b)))

    def _parent(self) -> str:
        return self._stack[-1] if self._stack else type(self.model).__name__

    def _count_function_linear(self, x: Any, weight: Any, out: Any) -> None:
        """``F.linear`` called outside an ``nn.Linear``: same rule as the module."""
        if not (isinstance(x, torch.Tensor) and isinstance(weight, torch.Tensor) and weight.ndim == 2):
            return
        fake = nn.Linear(weight.shape[1], weight.shape[0], bias=False, device="meta")
        self._record_linear(self._unique(f"{self._parent()}.linear"), fake, x, out, type_name="linear")

    def _count_einsum(self, args: tuple, out: Any) -> None:
        """Two-operand ``torch.einsum``: MACs = product of all label sizes; exact SOPs via einsum on counts."""
        equation, *operands = args
        if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
            operands = list(operands[0])
        if len(operands) != 2 or not isinstance(out, torch.Tensor) or "..." in equation:
            return
        a, b = operands
        lhs = equation.replace(" ", "").split("->")[0]
        sizes: dict[str, int] = {}
        for sub, t in zip(lhs.split(","), (a, b)):
            sizes.update({ch: int(d) for ch, d in zip(sub, t.shape)})
        self._record_product(
            self._unique(f"{self._parent()}.einsum"), "einsum", a, b, out, (self._kind(a), self._kind(b)),
            math.prod(sizes.values()), None, lambda ca, cb: torch.einsum(equation, ca, cb).double().sum().reshape(1),
        )

    def _count_sdpa(self, args: tuple, kwargs: dict, out: Any) -> None:
        q = args[0] if len(args) > 0 else kwargs["query"]
        k = args[1] if len(args) > 1 else kwargs["key"]
        v = args[2] if len(args) > 2 else kwargs["value"]
        parent = self._parent()
        kt = k.transpose(-2, -1)
        scores = torch.empty(*q.shape[:-1], k.shape[-2], device=q.device)  # [..., N, M] attention weights
        self._record_matmul(self._unique(f"{parent}.attn_qk"), "scaled_dot_product_attention", q, kt, scores,
                            (self._kind(q), self._kind(k)))
        # softmax(QK^T) is dense: the attention-times-value product costs MACs unless V is the only spike operand
        self._record_matmul(self._unique(f"{parent}.attn_v"), "scaled_dot_product_attention", scores, v, out,
                            ((DENSE, 1.0), self._kind(v)))


def count_operations(
    model: nn.Module,
    *inputs: Any,
    timesteps: int = 1,
    batch_size: int | None = None,
    fn: Callable[..., Any] | None = None,
    **kwargs: Any,
) -> OperationReport:
    """Run ``model(*inputs, **kwargs)`` (or ``fn(...)``, e.g. ``model.track``) once without gradients and count it.

    timesteps: T of spiking inputs ([T, B, ...]); batch_size: B (inferred from the first input when None).
    Returns the :class:`OperationReport`; see the module docstring for the counting rules.
    """
    report, _ = count_call(model, *inputs, timesteps=timesteps, batch_size=batch_size, fn=fn, **kwargs)
    return report


def count_call(
    model: nn.Module,
    *inputs: Any,
    timesteps: int = 1,
    batch_size: int | None = None,
    fn: Callable[..., Any] | None = None,
    **kwargs: Any,
) -> tuple[OperationReport, Any]:
    """Like :func:`count_operations` but also returns the call's output: ``(report, output)``."""
    call = fn if fn is not None else model
    counter = OperationCounter(model, timesteps=timesteps, batch_size=batch_size)
    counter.infer_batch_size((inputs, kwargs))
    with torch.no_grad(), counter:
        output = call(*inputs, **kwargs)
    return counter.report(), output
