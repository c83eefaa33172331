"""Model inputs from a frame's events (and RGB): the single place where crops become tensors.

Training and tracking must feed the model identical inputs, so both build them here:
What a model eats is its :class:`InputSpec` (``model.input_spec``):
- event bins (the student): timestep bins ``[T, 2, S, S]`` of the cropped events over the frame window ``(t0, t1]``
  (T = ``cfg.model.timesteps``); batched to ``[T, B, 2, S, S]``. The template crop may use its own T
  (``cfg.model.template_timesteps``: SpikeTrack's asymmetric timestep expansion, Zhang et al., arXiv:2602.23963):
  ``build_input(..., template=True)`` bins it with ``spec.template_bins``. With stacked templates
  (``model.template_steps: templates``) each template crop is one bin and the template branch runs
  ``spec.template_steps`` of them stacked.
- views (the teacher): a dict with one entry per modality of ``cfg.model.modalities`` ('events' -> ``[2, S, S]`` count
  frame, 'rgb' -> ``[3, S, S]`` in [0, 1], 'voxel' -> ``[bins, S, S]`` voxel grid); batched to ``[B, C, S, S]``.

Events are cropped exactly (coordinates mapped into the output grid, see
:func:`spiketrack.data.crop.crop_events`), images with bilinear crop-and-resize.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass

import numpy as np
import torch

from spiketrack.data.crop import CropWindow, crop_events, crop_image, image_to_tensor
from spiketrack.data.events import EventArray
from spiketrack.data.representations import count_frame, timestep_bins, voxel_grid
from spiketrack.errors import ConfigError

# Input views of each teacher modality setting (HDETrack/CEUTrack-style two-stream teachers; docs/models.md,
# "Teacher and student").
# The one place that maps ``cfg.model.modalities`` to input tensors: sampling, tracking and the teacher use it.
MODALITY_INPUTS: dict[str, tuple[str, ...]] = {
    "events": ("events",),
    "rgb+events": ("rgb", "events"),
    "events+voxel": ("events", "voxel"),
}


def teacher_input_keys(modalities: str) -> tuple[str, ...]:
    """Input dict keys of a teacher with ``cfg.model.modalities``."""
    if modalities not in MODALITY_INPUTS:
        raise ConfigError(f"key 'model.modalities': expected one of {sorted(MODALITY_INPUTS)}, got {modalities!r}")
    return MODALITY_INPUTS[modalities]


def view_channels(view: str, voxel_bins: int) -> int:
    """Channels C of one input view: 'events' 2 (ON/OFF counts), 'rgb' 3, 'voxel' ``voxel_bins`` (the one place)."""
    return {"events": 2, "rgb": 3, "voxel": int(voxel_bins)}[view]


ModelInput = torch.Tensor | dict[str, torch.Tensor]


@dataclass(frozen=True)
class InputSpec:
    """What a model eats, declared by the model (``model.input_spec``; ``spiketrack.models.input_spec(cfg)``).

    ``timesteps`` > 0: one tensor of T event bins ``[T, 2, S, S]`` (batched ``[T, B, 2, S, S]``; the student);
    otherwise a dict with one entry per view of ``views`` (``[C, S, S]``, batched ``[B, C, S, S]``; the teacher).
    ``template_timesteps`` > 0: the template crop has its own T_t bins (0: the same T as the search crop).
    ``template_stack`` > 0: stacked templates (SpikeTrack): each template crop is one bin and the template branch
    runs this many crops stacked as its steps.

    The spec owns the layout, so no caller branches on it: building one input (:meth:`select` of
    :func:`build_inputs`' dict), batching (:meth:`batch`, :meth:`cat`), a training sample's entries
    (:meth:`sample_entries`) and the model inputs of a collated batch (:meth:`pairs`, :meth:`extra_templates`). The
    sampler cuts the inputs of both distilled models from the same crops with one spec holding both
    (:meth:`union`: views and event bins).
    """

    views: tuple[str, ...] = ()
    timesteps: int = 0
    voxel_bins: int = 5
    template_timesteps: int = 0
    template_stack: int = 0

    @staticmethod
    def event_bins(timesteps: int, template_timesteps: int | None = None, stacked: bool = False) -> InputSpec:
        """T event bins of the frame window (the template's T_t = ``template_timesteps``, None: T); ``stacked``:
        T_t template crops of one bin each."""
        if stacked:
            one = 1 if int(timesteps) != 1 else 0
            return InputSpec(timesteps=int(timesteps), template_timesteps=one, template_stack=int(template_timesteps or 1))
        tt = int(template_timesteps) if template_timesteps and int(template_timesteps) != int(timesteps) else 0
        return InputSpec(timesteps=int(timesteps), template_timesteps=tt)

    @staticmethod
    def from_modalities(modalities: str, voxel_bins: int = 5) -> InputSpec:
        """The views of a modality setting ('events', 'rgb+events', 'events+voxel')."""
        return InputSpec(views=teacher_input_keys(modalities), voxel_bins=int(voxel_bins))

    @property
    def channels(self) -> dict[str, int]:
        """Input key -> channels C: each view's, or ``{'bins': 2}`` for event bins."""
        if self.timesteps:
            return {"bins": 2}
        return {v: view_channels(v, self.voxel_bins) for v in self.views}

    @property
    def template_bins(self) -> int:
        """T_t of the template crop's event bins (= ``timesteps`` unless set apart; 0 for views)."""
        return self.template_timesteps or self.timesteps

    @property
    def template_steps(self) -> int:
        """Steps the template branch runs: the stacked templates, else the template crop's bins."""
        return self.template_stack or self.template_bins

    def bins_for(self, template: bool) -> int:
        """Event bins of a template (``template=True``) or search crop."""
        return self.template_bins if template else self.timesteps

    @staticmethod
    def union(specs: SequenceABC[InputSpec]) -> InputSpec:
        """One spec for the inputs of several models cut from the same crops (distillation: the teacher's views and
        the student's event bins); at most one spec of views and one of event bins."""
        views = [spec for spec in specs if not spec.timesteps]
        bins = [spec for spec in specs if spec.timesteps]
        if len(views) > 1 or len(bins) > 1 or not specs:
            raise ConfigError("PairDataset: ask for one set of views, one of event bins, or both")
        return InputSpec(
            views=views[0].views if views else (),
            timesteps=bins[0].timesteps if bins else 0,
            voxel_bins=views[0].voxel_bins if views else InputSpec.voxel_bins,
            template_timesteps=bins[0].template_timesteps if bins else 0,
            template_stack=bins[0].template_stack if bins else 0,
        )

    @property
    def carries_extra_templates(self) -> bool:
        """Whether a sample holds extra template slots for this input (``data.num_templates``): event bins only,
        the student merges several template memories, the one-stream teacher does not."""
        return self.timesteps > 0

    @property
    def batch_dim(self) -> int:
        """The dimension of B in a batched tensor input: 1 for event bins ``[T, B, ...]``, 0 for views."""
        return 1 if self.timesteps else 0

    def build_kwargs(self, template: bool = False) -> dict[str, object]:
        """The :func:`build_inputs` arguments that make this input of a template (``template=True``) or search crop."""
        return {"teacher_keys": self.views, "timesteps": self.bins_for(template), "voxel_bins": self.voxel_bins}

    def select(self, built: dict[str, torch.Tensor]) -> ModelInput:
        """This model's input from a :func:`build_inputs` dict: the event bins ``[T, 2, S, S]`` or the views dict."""
        if self.timesteps:
            return built["bins"]
        return {v: built[v] for v in self.views}

    def batch(self, items: SequenceABC[ModelInput]) -> ModelInput:
        """Stack unbatched inputs: event bins ``[T, 2, S, S]`` -> ``[T, B, 2, S, S]``; views -> ``[B, C, S, S]``."""
        if isinstance(items[0], dict):
            return {key: torch.stack([it[key] for it in items], dim=0) for key in items[0]}  # type: ignore[index]
        return torch.stack(list(items), dim=self.batch_dim)  # type: ignore[arg-type]

    def cat(self, items: SequenceABC[ModelInput]) -> ModelInput:
        """Concatenate batched inputs along B (views: every entry along dim 0)."""
        if isinstance(items[0], dict):
            return {k: torch.cat([it[k] for it in items], dim=0) for k in items[0]}  # type: ignore[index]
        return torch.cat(list(items), dim=self.batch_dim)  # type: ignore[arg-type]

    def sample_entries(
        self, template: dict[str, torch.Tensor], searches: SequenceABC[dict[str, torch.Tensor]]
    ) -> dict[str, object]:
        """A training sample's entries (``spiketrack.train.sampling``) from the :func:`build_inputs` dicts of its
        template crop and its n search crops: views ``'template'`` ``{view: [C, St, St]}`` and ``'search'``
        ``{view: [n, C, Ss, Ss]}``; event bins ``'template_bins'`` ``[T_t, 2, St, St]`` and ``'search_bins'``
        ``[n, T, 2, Ss, Ss]`` (both for a :meth:`union` spec)."""
        out: dict[str, object] = {}
        if self.views:
            out["template"] = {key: template[key] for key in self.views}
            out["search"] = {key: torch.stack([s[key] for s in searches]) for key in self.views}
        if self.timesteps:
            out["template_bins"] = template["bins"]
            out["search_bins"] = torch.stack([s["bins"] for s in searches])
        return out

    def pairs(self, batch: dict, n: int) -> tuple[ModelInput, ModelInput]:
        """This model's inputs of the B*n (template, search) pairs of a collated batch (rows ordered (sample,
        search frame), each template repeated n times): event bins ``[T_t, B*n, 2, St, St]`` and
        ``[T, B*n, 2, Ss, Ss]``; views ``{view: [B*n, C, St, St]}`` and ``{view: [B*n, C, Ss, Ss]}``."""
        if self.timesteps:
            template = batch["template_bins"].repeat_interleave(n, dim=0).transpose(0, 1).contiguous()
            search = batch["search_bins"].flatten(0, 1).transpose(0, 1).contiguous()
            return template, search
        template = {k: v.repeat_interleave(n, dim=0) for k, v in batch["template"].items()}
        search = {k: v.flatten(0, 1) for k, v in batch["search"].items()}
        return template, search

    def extra_templates(self, batch: dict, n: int) -> list[ModelInput]:
        """The extra template slots of a collated batch (``extra_template_bins`` ``[B, k-1, T_t, 2, St, St]``,
        ``data.num_templates``), each as a pairs' template input ``[T_t, B*n, 2, St, St]``; [] when the batch has
        none or this input carries none (:attr:`carries_extra_templates`)."""
        extra = batch.get("extra_template_bins")
        if extra is None or not self.carries_extra_templates:
            return []
        return [extra[:, j].repeat_interleave(n, dim=0).transpose(0, 1).contiguous() for j in range(extra.shape[1])]

    @property
    def needs_rgb(self) -> bool:
        return "rgb" in self.views

    @property
    def needs_events(self) -> bool:
        return self.timesteps > 0 or any(v != "rgb" for v in self.views)


def build_inputs(
    events: EventArray,
    t0: int,
    t1: int,
    window: CropWindow,
    out_size: int,
    *,
    teacher_keys: SequenceABC[str] = (),
    timesteps: int = 0,
    voxel_bins: int = 5,
    rgb: np.ndarray | torch.Tensor | None = None,
    flip: bool = False,
    thin: Callable[[EventArray], EventArray] | None = None,
    rgb_gain: float = 1.0,
    device: torch.device | str | None = None,
) -> dict[str, torch.Tensor]:
    """Every representation asked for, of one crop, from the same cropped events.

    Keys: teacher views ``'events'`` ``[2, S, S]``, ``'voxel'`` ``[bins, S, S]``, ``'rgb'`` ``[3, S, S]`` in [0, 1]
    (those in ``teacher_keys``) and ``'bins'`` ``[T, 2, S, S]`` for the student when ``timesteps`` > 0.
    ``events`` are the frame window's events in image coordinates (``t0 < t <= t1``); ``rgb`` is uint8
    ``[H, W, 3]`` (or a float ``[3, H, W]`` tensor in [0, 1]). Training augmentation hooks: ``thin`` drops
    cropped events (intensity jitter), ``rgb_gain`` scales the RGB crop (clipped to [0, 1]).
    """
    cropped = crop_events(events, window, out_size, flip=flip)
    if thin is not None and len(cropped):
        cropped = thin(cropped)
    out: dict[str, torch.Tensor] = {}
    if "events" in teacher_keys:
        out["events"] = count_frame(cropped, out_size, out_size, device=device)
    if "voxel" in teacher_keys:
        out["voxel"] = voxel_grid(cropped, out_size, out_size, voxel_bins, t0, t1, device=device)
    if "rgb" in teacher_keys:
        if rgb is None:
            raise ConfigError("model.modalities includes 'rgb' but the frame has no intensity image")
        image = rgb if isinstance(rgb, torch.Tensor) else image_to_tensor(rgb, device=device)
        crop = crop_image(image.to(device) if device is not None else image, window, out_size, flip=flip)
        out["rgb"] = (crop * rgb_gain).clamp_(0.0, 1.0) if rgb_gain != 1.0 else crop
    if timesteps:
        out["bins"] = timestep_bins(cropped, out_size, out_size, timesteps, t0, t1, device=device)
    return out


def build_input(
    spec: InputSpec,
    events: EventArray,
    t0: int,
    t1: int,
    window: CropWindow,
    out_size: int,
    rgb: np.ndarray | torch.Tensor | None = None,
    flip: bool = False,
    device: torch.device | str | None = None,
    template: bool = False,
    thin: Callable[[EventArray], EventArray] | None = None,
) -> ModelInput:
    """One unbatched model input of the crop ``window`` resized to ``out_size`` pixels.

    Returns ``[T, 2, S, S]`` (event bins; T = ``spec.bins_for(template)``) or a dict of ``[C, S, S]`` tensors
    (views); see :func:`build_inputs` (``thin``: drops cropped events, an augmentation).
    """
    built = build_inputs(
        events, t0, t1, window, out_size, **spec.build_kwargs(template), rgb=rgb, flip=flip, thin=thin, device=device,
    )
    return spec.select(built)


def batch_inputs(items: SequenceABC[ModelInput]) -> ModelInput:
    """Stack unbatched inputs of a model whose spec is not at hand: a dict of views -> ``[B, C, S, S]``, event bins
    ``[T, 2, S, S]`` -> ``[T, B, 2, S, S]`` (:meth:`InputSpec.batch`)."""
    spec = InputSpec() if isinstance(items[0], dict) else InputSpec(timesteps=int(items[0].shape[0]))
    return spec.batch(items)


def crop_event_count(events: EventArray, window: CropWindow) -> int:
    """Number of events whose pixel centre falls inside ``window`` (0 means the model would see nothing)."""
    if len(events) == 0:
        return 0
    x = events.x.astype(np.float64) + 0.5
    y = events.y.astype(np.float64) + 0.5
    inside = (x >= window.x0) & (x < window.x0 + window.side) & (y >= window.y0) & (y < window.y0 + window.side)
    return int(np.count_nonzero(inside))


__all__ = [
    "MODALITY_INPUTS",
    "InputSpec",
    "ModelInput",
    "batch_inputs",
    "build_input",
    "build_inputs",
    "crop_event_count",
    "teacher_input_keys",
    "view_channels",
]
