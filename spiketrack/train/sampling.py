"""Training samples: one template frame and n search frames, cropped and turned into model inputs.

Sampling (per sample index, from its own RNG, so DataLoader workers and resumed runs draw the same
samples; see :meth:`PairDataset.rng_for`):

1. A dataset is chosen by ``cfg.data.datasets[i].weight``, then a sequence uniformly among those with a
   visible frame, then the template frame uniformly among its *clean* frames: the object at least
   ``data.template_min_visible`` visible (where the file records visibility) and no other annotated object's box
   covering more than ``data.template_max_overlap`` of its box (:mod:`spiketrack.data.visibility`; the rule of
   every test sequence's first frame). A sequence without a clean frame uses any visible frame.
2. The n = ``cfg.data.num_search`` search frames are causal: consecutive visible frames starting at a
   frame ``j`` with ``template < j <= template + max_gap`` (consecutive so the temporal Fourier loss
   sees a real frame sequence). If fewer than n visible frames follow the template within the gap, the
   available ones are drawn with replacement (sorted); a sequence with one visible frame uses it for both.
3. Template crop: ``template_factor`` around the template box, no jitter. Search crops: ``search_factor``
   around each search frame's box with centre/scale jitter (:meth:`CropWindow.jittered`, OSTrack style).
4. Augmentation, shared by the whole sample and by teacher and student inputs: a horizontal flip
   (p = 0.5 when ``cfg.data.flip``); intensity jitter ``b ~ U(1 - j, 1 + j)`` with ``j = brightness_jitter``
   — RGB crops are multiplied by ``b`` (clipped to [0, 1]); events are thinned, each kept with probability
   ``min(b, 1)`` (fewer events = lower contrast sensitivity; counts stay integers, as a real sensor's).

5. Extra templates (``cfg.data.num_templates`` = k >= 2, event bins only): the template object's first visible
   frame and k - 2 visible frames drawn between it and the template (sorted), cropped like the template; the model merges
   them with the template as memory slots (the tracker's template update). Drawn after everything else, so
   samples with k = 1 are unchanged.

Targets per search frame: the normalised box (cx, cy, w, h) in its crop (after the flip) and the
CenterNet/OSTrack Gaussian heatmap on the trained model's score-map grid, ``search_size / output_stride`` (16, or 8
for a stride-8 head; :mod:`spiketrack.train.targets`).

Multi-object sequences and distractor-aware pairs, in the spirit of DaSiamRPN (Zhu et al., "Distractor-aware
Siamese Networks for Visual Object Tracking", ECCV 2018), which trains with pairs whose search region holds
semantic distractors and with negative pairs so the tracker must match the template instead of detecting
whatever is salient:

5. In a sequence that annotates several objects (``/objects``), the target of the pair is any object with a
   visible frame, drawn uniformly; template and search frames are that object's.
6. With probability ``data.distractor_prob`` (multi-object sequences) the search frames start at a frame where
   another visible object lies inside the target's unjittered search crop, when there is such a frame.
7. With probability ``data.negative_prob`` the pair is negative: the template shows another object of the
   sequence (half the time, when there is one with a visible frame and the scene's objects do not look alike:
   no ``LA`` attribute) or the primary target of another sequence of the dataset, cut from a clean frame; the
   search crops are cut around the real object as usual, and the targets say "absent": an all-zero heatmap, box
   0,0,0,0 and ``box_mask`` 0 (no box loss, :func:`spiketrack.train.losses.tracking_losses`). A search frame in
   which the template's own object is present with its centre inside the crop is labelled with that object's box
   instead (a positive frame whose target is off-centre): a label never calls absent what the template shows, and
   look-alike objects are never a negative's template.

With both probabilities 0 and single-object sequences no random number is drawn for 5-7: the samples are
exactly those of the plain sampler.

Sample layout (a dict; the default collate stacks a leading batch dimension)::

    'template': {'events': [2, St, St], 'rgb': [3, St, St], 'voxel': [bins, St, St]}   (views, e.g. teacher)
    'search':   {modality: [n, C, Ss, Ss]}                                               (views)
    'template_bins': [T_t, 2, St, St]   'search_bins': [n, T, 2, Ss, Ss]   (event bins, student; T_t: template T)
    'extra_template_bins': [k-1, T_t, 2, St, St]   'extra_template_frames': [k-1]      (only when k >= 2)
    'boxes': [n, 4]   'heatmap': [n, 1, Hf, Hf]   'box_mask': [n] (1 = target present, 0 = negative pair)
    'object': int (annotated object of the pair, 0 = primary)   'negative': bool
    'index': int   'sequence': str (file)   'frames': [1 + n] (template, search frame indices)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from collections.abc import Sequence as SequenceABC
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from spiketrack.config import ExperimentConfig
from spiketrack.data.crop import CropWindow
from spiketrack.data.dataset import SequenceDataset
from spiketrack.data.h5seq import file_version, open_sequence
from spiketrack.data.inputs import InputSpec, build_inputs
from spiketrack.data.sequence import MemorySequence, Sequence
from spiketrack.data.synth_attributes import LOOKALIKE_OBJECTS
from spiketrack.errors import ConfigError, DataFormatError
from spiketrack.train.targets import heatmap_targets

# the backbones' stride (ViT-B/16 patches, OSTrack); a head may output at 8 (the model's output_stride;
# docs/architecture.md, "The model call protocol")
FEATURE_STRIDE = 16

@dataclass(frozen=True)
class SequenceEntry:
    """What the sampler needs to know about one sequence without keeping it open."""

    path: Path
    visible: np.ndarray  # int64 indices of visible frames (of the primary target)
    has_rgb: bool
    objects: tuple[np.ndarray, ...] = ()  # visible frames of every annotated object (multi-object files only)
    clean: tuple[np.ndarray, ...] = ()  # clean template frames of every object (index 0: the primary target)
    lookalike: bool = False  # the scene's objects look alike (attribute LA): none is another's negative

    def object_choices(self) -> list[int]:
        """Objects with a visible frame ([0] for single-object files)."""
        return [i for i, v in enumerate(self.objects) if len(v)] if self.objects else [0]

    def visible_of(self, obj: int) -> np.ndarray:
        return self.objects[obj] if self.objects else self.visible

    def templates_of(self, obj: int) -> np.ndarray:
        """Template frames of object ``obj``: its clean frames, or every visible frame when none is clean."""
        clean = self.clean[obj] if obj < len(self.clean) else np.zeros(0, np.int64)
        return clean if len(clean) else self.visible_of(obj)


def _scan(root: str, split: str | None, min_visible: float, max_overlap: float) -> list[SequenceEntry]:
    """Visible and clean frames of every sequence of ``split`` (all files when the split list does not exist)."""
    ds = SequenceDataset(root)
    names = ds.names(split) if split and (Path(root) / f"{split}.txt").is_file() else ds.names(None)
    entries = []
    for name in names:
        with ds.open(name) as seq:
            visible = np.flatnonzero(seq.absent == 0).astype(np.int64)
            objects: tuple[np.ndarray, ...] = ()
            if seq.object_absent is not None and len(seq.object_absent) > 1:
                objects = tuple(np.flatnonzero(a == 0).astype(np.int64) for a in seq.object_absent)
            clean = tuple(np.flatnonzero(seq.clean_frames(i, min_visible, max_overlap)).astype(np.int64)
                          for i in range(seq.num_objects))
            if len(visible):
                entries.append(SequenceEntry(ds.path(name), visible, seq.has_rgb, objects, clean,
                                             LOOKALIKE_OBJECTS in seq.attributes))
    return entries


# Decoded sequences kept between the datasets of one process, inside ``shared_preload()`` only, per file version
# (``file_version``), so a rewritten file is read again.
_SHARED: dict[tuple[str, int, int, int], MemorySequence] | None = None


@contextmanager
def shared_preload() -> Iterator[None]:
    """Within this block every :class:`PairDataset` of the process shares the sequences it preloads.

    The quickstart trains the teacher and then the student on the same training split in one process; without
    this, each stage decodes every file again (~30 s of the 2-core machine for the synthetic split, mostly
    the RGB frames' decompression). Decoded sequences are dropped when the block ends.
    """
    global _SHARED
    outer = _SHARED
    _SHARED = {} if outer is None else outer
    try:
        yield
    finally:
        _SHARED = outer


def _preloaded(path: Path) -> MemorySequence:
    """``path`` decoded into memory, from the shared store when a :func:`shared_preload` block is open."""
    if _SHARED is None:
        return _load_in_memory(path)
    key = file_version(path)
    if key not in _SHARED:
        _SHARED[key] = _load_in_memory(path)
    return _SHARED[key]


def _load_in_memory(path: Path) -> MemorySequence:
    """The whole sequence file as a :class:`MemorySequence` (events and intensity frames decoded once)."""
    with open_sequence(path) as seq:
        rgb = np.stack([seq.rgb(k) for k in range(seq.num_frames)]) if seq.has_rgb else None
        return MemorySequence(
            seq.name, seq.width, seq.height, seq.all_events(), seq.frame_times, seq.boxes, seq.absent,
            rgb=rgb, attributes=seq.attributes, source=seq.source,
            object_boxes=seq.object_boxes, object_absent=seq.object_absent,
            visible=seq.visible, object_visible=seq.object_visible, scene=seq.scene,
        )


class PairDataset(Dataset):
    """Template/search samples over several weighted datasets, deterministic per (seed, epoch, index).

    ``inputs``: the input specs (``model.input_spec``) of the models fed from each sample, made from the same
    cropped events: views (a dict, the teacher) and/or event bins (the student). Distillation asks for both.
    """

    def __init__(
        self,
        cfg: ExperimentConfig,
        *,
        inputs: SequenceABC[InputSpec] = (),
        length: int | None = None,
        split: str | None = None,
        seed: int | None = None,
        output_stride: int | None = None,
    ) -> None:
        self.data = cfg.data
        self.seed = int(cfg.train.seed if seed is None else seed)
        self.spec = InputSpec.union(inputs)  # both models' inputs, cut from the same crops
        self.teacher_keys = self.spec.views
        self.voxel_bins = self.spec.voxel_bins
        self.timesteps = self.spec.timesteps
        self.template_timesteps = self.spec.template_bins  # T_t (model.template_timesteps)
        if self.data.num_templates < 1 or (self.data.num_templates > 1 and not self.spec.carries_extra_templates):
            raise ConfigError(
                f"key 'data.num_templates': expected 1, or >= 2 for a model of several templates (the student), "
                f"got {self.data.num_templates}"
            )
        self.length = int(length if length is not None else cfg.data.samples_per_epoch)
        self.epoch = 0
        if self.data.search_size % FEATURE_STRIDE:
            raise ConfigError(f"data.search_size: must be a multiple of {FEATURE_STRIDE}, got {self.data.search_size}")
        # the trained model's score-map grid: its head's output stride (16, or 8 for a stride-8 head)
        self.feat_size = self.data.search_size // int(output_stride or FEATURE_STRIDE)
        for key in ("negative_prob", "distractor_prob"):
            value = getattr(self.data, key)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"data.{key}: expected a probability in [0, 1], got {value}")
        split = self.data.train_split if split is None else split
        self.sources: list[list[SequenceEntry]] = []
        weights = []
        for i, src in enumerate(self.data.datasets):
            entries = _scan(src.root, split, self.data.template_min_visible, self.data.template_max_overlap)
            if not entries:
                raise DataFormatError(src.root, f"data.datasets[{i}]", "no sequence with a visible frame")
            if "rgb" in self.teacher_keys and not all(e.has_rgb for e in entries):
                bad = next(e.path for e in entries if not e.has_rgb)
                raise DataFormatError(bad, "frames/rgb", "teacher modalities 'rgb+events' need intensity frames")
            if src.weight < 0:
                raise ConfigError(f"data.datasets[{i}].weight: must be >= 0, got {src.weight}")
            self.sources.append(entries)
            weights.append(src.weight)
        if not self.sources:
            raise ConfigError("data.datasets: empty list")
        for i, entries in enumerate(self.sources):
            if self.data.negative_prob > 0 and len(entries) < 2 and len(entries[0].object_choices()) < 2:
                raise ConfigError(
                    f"key 'data.negative_prob': {self.data.negative_prob:g} asks for negative pairs, but "
                    f"{self.data.datasets[i].root} (data.datasets[{i}]) has one sequence of one object, so no other "
                    "object or sequence can give the template; add sequences or set data.negative_prob=0"
                )
        total = float(sum(weights))
        if total <= 0:
            raise ConfigError("data.datasets: sampling weights sum to 0")
        self.weights = np.asarray(weights, dtype=np.float64) / total
        self._open: OrderedDict[Path, Sequence] = OrderedDict()
        self._memory: dict[Path, MemorySequence] = {}
        if cfg.train.preload_mb > 0:
            self.preload(cfg.train.preload_mb)

    def preload(self, max_mb: float) -> bool:
        """Hold every sequence in memory when their files total at most ``max_mb`` MiB (on disk).

        Loaded once in this process, before the DataLoader starts its workers, so forked workers share the
        arrays instead of re-reading HDF5 windows per sample (the bottleneck of small models on a CPU).
        Returns whether the sequences were loaded.
        """
        paths = sorted({e.path for entries in self.sources for e in entries})
        if sum(p.stat().st_size for p in paths) > max_mb * 2**20:
            return False
        for path in paths:
            if path not in self._memory:
                self._memory[path] = _preloaded(path)
        return True

    # -- bookkeeping -------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """Samples of epoch e differ from those of other epochs but are the same on every run."""
        self.epoch = int(epoch)

    def rng_for(self, index: int) -> np.random.Generator:
        """The RNG of one sample: seeded by (seed, epoch, index) only."""
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def _sequence(self, path: Path) -> Sequence:
        if path in self._memory:
            return self._memory[path]
        seq = self._open.get(path)
        if seq is None:
            seq = open_sequence(path)
            self._open[path] = seq
            if len(self._open) > 16:
                self._open.popitem(last=False)[1].close()
        else:
            self._open.move_to_end(path)
        return seq

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_open"] = OrderedDict()  # worker processes open their own handles
        return state

    # -- sampling --------------------------------------------------------------------------------------

    def choose_frames(
        self, visible: np.ndarray, rng: np.random.Generator, near: np.ndarray | None = None,
        templates: np.ndarray | None = None,
    ) -> tuple[int, list[int]]:
        """Template frame (one of ``templates``, default ``visible``) and n causal search frames among ``visible``
        (see the module docstring).

        ``near`` (bool per frame, optional): prefer search frames starting where it is True (distractor-rich).
        """
        n = self.data.num_search
        templates = visible if templates is None or len(templates) == 0 else templates
        template = int(templates[int(rng.integers(len(templates)))])
        after = visible[(visible > template) & (visible <= template + self.data.max_gap)]
        if len(after) == 0:
            return template, [template] * n
        if len(after) >= n:
            starts = np.arange(len(after) - n + 1)
            if near is not None and near[after[starts]].any():
                starts = starts[near[after[starts]]]
            start = int(starts[int(rng.integers(len(starts)))]) if near is not None else int(rng.integers(len(starts)))
            return template, [int(f) for f in after[start : start + n]]
        return template, sorted(int(f) for f in rng.choice(after, size=n, replace=True))

    def _near_frames(self, seq: Sequence, obj: int) -> np.ndarray:
        """bool [F]: another visible object's centre lies inside object ``obj``'s (unjittered) search crop."""
        boxes, absent = seq.object_track(obj)
        near = np.zeros(len(boxes), bool)
        for other in range(seq.num_objects):
            if other == obj:
                continue
            ob, oa = seq.object_track(other)
            for k in np.flatnonzero((absent == 0) & (oa == 0)):
                window = CropWindow.around(boxes[k], self.data.search_factor)
                c = window.box_to_crop(ob[k])
                near[k] |= bool(0.0 <= c[0] <= 1.0 and 0.0 <= c[1] <= 1.0)
        return near

    def _negative_template(
        self, entries: list[SequenceEntry], entry: SequenceEntry, obj: int, rng: np.random.Generator
    ) -> tuple[Sequence, np.ndarray, int, int | None] | None:
        """(sequence, boxes [F, 4], frame, object of this sequence or None) of a template that is not the pair's
        object, cut from a clean frame; None if there is none. Objects of a look-alike scene are never chosen."""
        others = [] if entry.lookalike else [i for i in entry.object_choices() if i != obj]
        use_object = bool(others) and (len(entries) < 2 or rng.random() < 0.5)
        if use_object:
            other = others[int(rng.integers(len(others)))]
            seq = self._sequence(entry.path)
            frames = entry.templates_of(other)
            return seq, seq.object_track(other)[0], int(frames[int(rng.integers(len(frames)))]), other
        if len(entries) < 2:
            return None
        i = int(rng.integers(len(entries) - 1))
        i += i >= next(n for n, e in enumerate(entries) if e is entry)
        seq = self._sequence(entries[i].path)
        frames = entries[i].templates_of(0)
        return seq, seq.boxes, int(frames[int(rng.integers(len(frames)))]), None

    def __getitem__(self, index: int) -> dict:
        rng = self.rng_for(index)
        entries = self.sources[int(rng.choice(len(self.sources), p=self.weights))]
        entry = entries[int(rng.integers(len(entries)))]
        seq = self._sequence(entry.path)
        d = self.data
        choices = entry.object_choices()
        obj = choices[int(rng.integers(len(choices)))] if len(choices) > 1 else 0
        obj_boxes = seq.object_track(obj)[0] if obj else seq.boxes
        near = None
        if entry.objects and d.distractor_prob > 0 and rng.random() < d.distractor_prob:
            near = self._near_frames(seq, obj)
        negative = None
        if d.negative_prob > 0 and rng.random() < d.negative_prob:
            negative = self._negative_template(entries, entry, obj, rng)
        template, searches = self.choose_frames(entry.visible_of(obj), rng, near, entry.templates_of(obj))
        flip = bool(self.data.flip and rng.random() < 0.5)
        j = self.data.brightness_jitter
        gain = float(rng.uniform(1 - j, 1 + j)) if j > 0 else 1.0

        t_seq, t_boxes = seq, obj_boxes
        shown: np.ndarray | None = None  # boxes [F, 4] of a negative template's object in this sequence
        if negative is not None:
            t_seq, t_boxes, template, shown_obj = negative
            shown = seq.object_track(shown_obj)[0] if shown_obj is not None else None
        t_window = CropWindow.around(t_boxes[template], d.template_factor)
        t_inputs = self._inputs(t_seq, template, t_window, d.template_size, flip, gain, rng, self.template_timesteps)
        s_inputs, boxes, present = [], [], []
        for k in searches:
            base = CropWindow.around(obj_boxes[k], d.search_factor)
            window = base.jittered(rng, d.center_jitter, d.scale_jitter, d.search_factor)
            s_inputs.append(self._inputs(seq, k, window, d.search_size, flip, gain, rng))
            label = obj_boxes[k] if negative is None else (shown[k] if shown is not None else None)
            box = window.box_to_crop(label) if label is not None and label[2] > 0 and label[3] > 0 else None
            if box is not None and negative is not None and not (0.0 <= box[0] <= 1.0 and 0.0 <= box[1] <= 1.0):
                box = None  # the template's object is not in this crop: the frame is negative
            if box is not None and flip:
                box[0] = 1.0 - box[0]
            present.append(box is not None)
            boxes.append(box if box is not None else np.zeros(4))
        boxes_np = np.stack(boxes).astype(np.float32)
        heatmap = heatmap_targets(boxes_np, self.feat_size)
        mask = torch.tensor(present, dtype=torch.float32)
        heatmap[~mask.bool()] = 0.0  # target absent: nothing to find, no box to regress

        sample: dict = {
            "boxes": torch.from_numpy(boxes_np),
            "heatmap": heatmap,
            "box_mask": mask,
            "object": int(obj),
            "negative": negative is not None,
            "index": int(index),
            "sequence": str(entry.path),
            "frames": torch.tensor([template, *searches]),
        }
        sample.update(self.spec.sample_entries(t_inputs, s_inputs))
        if d.num_templates > 1:  # event bins only (checked in __init__)
            # from the template's own source: the pair's object, or the negative template's object or sequence
            t_visible = np.flatnonzero((t_boxes[:, 2] > 0) & (t_boxes[:, 3] > 0)).astype(np.int64)
            extra = self.extra_templates(t_visible, template, d.num_templates - 1, rng)
            sample["extra_template_bins"] = torch.stack(
                [self._template_bins(t_seq, t_boxes, k, flip, gain, rng) for k in extra]
            )
            sample["extra_template_frames"] = torch.tensor(extra)
        return sample

    def extra_templates(self, visible: np.ndarray, template: int, count: int, rng: np.random.Generator) -> list[int]:
        """``count`` earlier template frames: the first visible frame, then ``count - 1`` visible frames drawn
        between it and ``template`` (sorted; with replacement when too few)."""
        first = int(visible[0])
        between = visible[(visible > first) & (visible < template)]
        if count == 1:
            return [first]
        if len(between) == 0:
            return [first] * count
        rest = rng.choice(between, size=count - 1, replace=len(between) < count - 1)
        return [first, *sorted(int(f) for f in rest)]

    def _template_bins(
        self, seq: Sequence, boxes: np.ndarray, k: int, flip: bool, gain: float, rng: np.random.Generator
    ) -> torch.Tensor:
        """Event bins [T_t, 2, St, St] of the template crop around ``boxes[k]`` in frame k (no jitter, the sample's
        flip and thinning)."""
        d = self.data
        window = CropWindow.around(boxes[k], d.template_factor)
        t0, t1 = seq.frame_window(k)
        thin = (lambda ev: ev[rng.random(len(ev)) < gain]) if gain < 1.0 else None
        return build_inputs(
            seq.frame_events(k), t0, t1, window, d.template_size, timesteps=self.template_timesteps, flip=flip, thin=thin,
        )["bins"]

    def _inputs(
        self, seq: Sequence, k: int, window: CropWindow, size: int, flip: bool, gain: float, rng: np.random.Generator,
        timesteps: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """Every representation this sample needs of frame k in ``window`` (same events for all); event bins
        with ``timesteps`` (default: the search crop's T)."""
        t0, t1 = seq.frame_window(k)
        thin = (lambda ev: ev[rng.random(len(ev)) < gain]) if gain < 1.0 else None
        return build_inputs(
            seq.frame_events(k), t0, t1, window, size, teacher_keys=self.teacher_keys,
            timesteps=self.timesteps if timesteps is None else timesteps,
            voxel_bins=self.voxel_bins, rgb=seq.rgb(k) if "rgb" in self.teacher_keys else None, flip=flip,
            thin=thin, rgb_gain=gain,
        )

__all__ = ["FEATURE_STRIDE", "PairDataset", "SequenceEntry", "shared_preload"]
