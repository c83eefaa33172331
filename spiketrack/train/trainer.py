"""The training loop shared by ``spiketrack train`` and ``spiketrack distill``.

One optimiser step = ``train.accumulate`` micro-batches of ``train.batch_size`` samples per process
(global batch = batch_size x accumulate x processes); ``steps_per_epoch`` counts optimiser steps
(default ``samples_per_epoch // global batch``). Every sample holds one template and n search frames;
the model runs once on the B*n (template, search) pairs of a micro-batch.

Precision: bf16 autocast on CUDA when ``train.amp`` (float16 with a GradScaler if ``amp_dtype: float16``);
CPU runs in float32; the student's neurons keep a float32 membrane under autocast, and a forced neuron backend
that cannot run on the device is refused before the first step (``neurons.check_backend``). Multi-process:
started by ``torchrun``, each process wraps the model in DDP (NCCL on GPU, gloo on CPU) and reads its shard
through a DistributedSampler; ``train.sync_bn`` makes its BN layers use the global batch's statistics
(``distributed.convert_sync_batchnorm``); only rank 0 writes checkpoints, TensorBoard logs and progress bars.

Exact resume: a checkpoint stores model, optimiser, scheduler, grad scaler, distillation projections,
epoch / step position and the Python, numpy and torch RNG states of every process. Samples are drawn
from per-(seed, epoch, index) RNGs and the sampler order is a function of (seed, epoch), so a resumed
run skips the micro-batches already consumed in the epoch and continues with exactly the same samples.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import shutil
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from spiketrack.atomic import atomic_write_text, clean_stale_temps
from spiketrack.config import ExperimentConfig, dump_config, to_dict
from spiketrack.distill.terms import DistillLoss
from spiketrack.errors import (
    CheckpointError,
    ConfigError,
    SpiketrackError,
    environment_error_message,
    output_error,
)
from spiketrack.models.checkpoint import load_checkpoint, load_state
from spiketrack.models.memory_check import check_memory
from spiketrack.outputs import check_output_dir_possible, prepare_output_dir
from spiketrack.threads import configure_threads
from spiketrack.train.checkpoint import CheckpointManager
from spiketrack.train.distributed import (
    DistInfo,
    all_gather_objects,
    all_reduce_mean,
    cleanup_distributed,
    convert_sync_batchnorm,
    setup_distributed,
)
from spiketrack.train.losses import LossInputs, TrackingLoss
from spiketrack.train.optim import build_optimizer
from spiketrack.train.resume_check import check_resume_config
from spiketrack.train.sampling import PairDataset

log = logging.getLogger(__name__)

BuildFn = Callable[[ExperimentConfig], nn.Module]


class NonFiniteLossError(SpiketrackError):
    """A loss term (or the gradient) became NaN or infinite; the message names it."""


@dataclass
class TrainResult:
    """What a finished (or stopped) run left behind."""

    run_dir: Path
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    step: int
    epoch: int
    metrics: dict[str, float] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------
# Batches -> model inputs
# ------------------------------------------------------------------------------------------------


def _to(x: Any, device: torch.device) -> Any:
    if isinstance(x, torch.Tensor):
        return x.to(device, non_blocking=True)
    if isinstance(x, dict):
        return {k: _to(v, device) for k, v in x.items()}
    return x


def run_model(model: nn.Module, batch: dict, n: int, return_features: bool | Collection[str] = False) -> dict:
    """Forward pass of any model on a collated batch, fed the inputs its ``input_spec`` names.

    Extra templates (``extra_template_bins`` [B, k-1, T_t, 2, St, St], ``data.num_templates``) are encoded too and
    merged with the template by ``model.encode_templates`` (in time order: extra templates, then the template), as
    in tracking: memory slots merged by the gate, or SpikeTrack's stack of template crops.
    """
    spec = model.input_spec  # the layout of the batch and of the model's inputs (spiketrack.data.inputs)
    template, search = spec.pairs(batch, n)
    extra = spec.extra_templates(batch, n)
    if not extra:
        return model(template, search, return_features=return_features)
    module = getattr(model, "module", model)  # DDP: the wrapped model's methods
    memory = module.encode_templates([*extra, template])
    return module.track(search, memory, return_features=return_features)


class LossModule(nn.Module):
    """Model (+ distillation projections) -> total loss; the unit DDP wraps.

    The frozen teacher is held outside the module tree so DDP neither syncs nor broadcasts it.
    """

    def __init__(
        self,
        model: nn.Module,
        cfg: ExperimentConfig,
        distill: DistillLoss | None = None,
        teacher: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.distill = distill
        self._teacher = [teacher] if teacher is not None else []
        self.cfg = cfg
        self.n = cfg.data.num_search
        self.tracking = TrackingLoss(cfg.train.loss)

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Returns (total loss, weighted terms, detached metrics) of one micro-batch."""
        # only the outputs the enabled distillation terms read (spiketrack.distill.terms)
        wanted = self.distill.outputs if self.distill is not None else frozenset()
        out = run_model(self.model, batch, self.n, return_features=wanted)
        mask = batch.get("box_mask")  # 0 = negative pair: no box loss (train/sampling.py)
        inputs = LossInputs(
            out, batch["heatmap"].flatten(0, 1), batch["boxes"].flatten(0, 1),
            None if mask is None else mask.flatten(0, 1), self.cfg.train.loss.box_at,
            run=lambda b, n: run_model(self.model, b, n), batch=batch,
        )
        terms, metrics = self.tracking(inputs)
        if self.distill is not None:
            teacher = self._teacher[0]
            with torch.no_grad():
                t_out = run_model(teacher, batch, self.n, return_features=wanted)
            terms.update(self.distill(out, t_out))
        total = torch.stack([v.float() for v in terms.values()]).sum()
        return total, terms, metrics


# ------------------------------------------------------------------------------------------------
# RNG state
# ------------------------------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU + CUDA) RNG states as plain data (loadable with weights_only)."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


# ------------------------------------------------------------------------------------------------
# The loop
# ------------------------------------------------------------------------------------------------


class Trainer:
    """Runs optimisation of ``model`` (and optional distillation) for ``cfg`` in ``run_dir``."""

    def __init__(
        self,
        cfg: ExperimentConfig,
        run_dir: Path,
        model: nn.Module,
        info: DistInfo,
        *,
        teacher: nn.Module | None = None,
        progress: bool = True,
        extra_state: dict[str, Any] | None = None,
    ) -> None:
        self.cfg, self.run_dir, self.info, self.progress = cfg, run_dir, info, progress
        self.extra_state = extra_state or {}
        tc = cfg.train
        if tc.batch_size < 1 or tc.accumulate < 1 or tc.epochs < 1:
            raise ConfigError("train.batch_size, train.accumulate and train.epochs must be >= 1")
        # one micro-batch runs batch_size x num_search (template, search) pairs: refuse what cannot fit
        check_memory(cfg, batch=tc.batch_size * cfg.data.num_search, training=True, device=info.device)
        self.device = info.device
        self.model = model.to(self.device)
        self.use_amp = bool(tc.amp and self.device.type == "cuda")
        self.amp_dtype = torch.float16 if tc.amp_dtype == "float16" else torch.bfloat16
        if cfg.model.kind == "student":  # a forced neuron backend that cannot run here: say so now, not mid-training
            from spiketrack.models.spiking.neurons import check_backend

            check_backend(cfg.model.neuron, self.device, self.amp_dtype if self.use_amp else None)
        if tc.sync_bn and info.distributed:
            self.model = convert_sync_batchnorm(self.model, self.device)
        self.kind = cfg.model.kind
        self.distill: DistillLoss | None = None
        if teacher is not None:
            teacher = teacher.to(self.device).eval()
            for p in teacher.parameters():
                p.requires_grad_(False)
            self.distill = self._make_distill_loss(teacher).to(self.device)
        self.teacher = teacher
        self.loss_module = LossModule(self.model, cfg, self.distill, teacher)
        self.ddp: DistributedDataParallel | None = None
        if info.distributed:
            self.ddp = DistributedDataParallel(
                self.loss_module,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True,
            )
        global_batch = tc.batch_size * tc.accumulate * info.world_size
        self.steps_per_epoch = tc.steps_per_epoch or max(1, cfg.data.samples_per_epoch // global_batch)
        self.total_steps = self.steps_per_epoch * tc.epochs
        extra = [self.distill] if self.distill is not None else []
        self.optimizer, self.scheduler = build_optimizer(self.model, extra, tc, self.steps_per_epoch, self.total_steps)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)
        self.dataset = PairDataset(
            cfg,
            inputs=[m.input_spec for m in (self.model, teacher) if m is not None],
            length=self.steps_per_epoch * global_batch,
            output_stride=getattr(self.model, "output_stride", None),
        )
        self.sampler = DistributedSampler(
            self.dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=tc.seed, drop_last=True
        )
        self.ckpt = CheckpointManager(run_dir, tc.keep_last)
        self.epoch = 0
        self.step_in_epoch = 0
        self.step = 0
        self.best = math.inf
        self.history: list[dict[str, float]] = []
        self._epoch_sums: dict[str, float] = {}  # running sums of the current epoch (saved for resume)
        self.writer = None

    # -- set-up helpers --------------------------------------------------------------------------------

    def _make_distill_loss(self, teacher: nn.Module) -> DistillLoss:
        """Distillation terms; layer pairs and widths come from both models' ``feature_info``."""
        cfg = self.cfg
        return DistillLoss.from_feature_info(
            cfg.distill, self.model.feature_info, teacher.feature_info, cfg.data.num_search,
            correlation=(getattr(self.model, "correlation_channels", None), getattr(teacher, "correlation_channels", None)),
        )

    # -- checkpoints -----------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        rngs = all_gather_objects(rng_state(), self.info)
        state = {
            "kind": self.kind,
            "config": to_dict(self.cfg),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "step": self.step,
            "world_size": self.info.world_size,
            "rng": rngs,
            "best": self.best,
            "history": self.history,
            "epoch_sums": dict(self._epoch_sums),
            **self.extra_state,
        }
        if self.distill is not None:
            state["align"] = self.distill.state_dict()
        return state

    def save(self, best: bool = False) -> Path | None:
        state = self.state()  # collective: every process takes part
        if not self.info.is_main:
            return None
        return self.ckpt.save(state, self.step, best=best)

    def restore(self, path: Path, state: dict[str, Any]) -> None:
        """Continue from a checkpoint of this run (all training state, RNG included)."""
        if state.get("kind") != self.kind:
            raise CheckpointError(f"{path}: field 'kind' is {state.get('kind')!r}, this run trains a {self.kind}")
        load_state(self.model, state["model"], path)
        if self.distill is not None:
            if "align" not in state:
                raise CheckpointError(f"{path}: field 'align' missing (not a distillation checkpoint)")
            load_state(self.distill, state["align"], path, "align")
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.scaler.load_state_dict(state["scaler"])
        except (KeyError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{path} [optimizer/scheduler/scaler]: cannot restore ({exc})") from exc
        self.epoch, self.step_in_epoch, self.step = int(state["epoch"]), int(state["step_in_epoch"]), int(state["step"])
        self.best = float(state.get("best", math.inf))
        self.history = list(state.get("history", []))
        self._epoch_sums = {k: float(v) for k, v in state.get("epoch_sums", {}).items()}
        rngs = state.get("rng", [])
        if int(state.get("world_size", 1)) == self.info.world_size and len(rngs) == self.info.world_size:
            set_rng_state(rngs[self.info.rank])
        else:
            log.warning("%s: saved with a different number of processes; RNG streams restart", path)
            seed_everything(self.cfg.train.seed + self.info.rank + self.step)

    # -- loop ------------------------------------------------------------------------------------------

    def _loader(self, epoch: int, skip_batches: int) -> DataLoader:
        self.dataset.set_epoch(epoch)
        self.sampler.set_epoch(epoch)
        indices = list(self.sampler)[skip_batches * self.cfg.train.batch_size :]
        nw = self.cfg.data.num_workers
        return DataLoader(
            self.dataset,
            batch_size=self.cfg.train.batch_size,
            sampler=indices,
            num_workers=nw,
            drop_last=True,
            pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(self.cfg.train.seed * 100003 + epoch),
            persistent_workers=False,
        )

    def _check_finite(self, terms: dict[str, torch.Tensor]) -> None:
        names = list(terms)
        bad = torch.stack([(~torch.isfinite(terms[k].detach().float())).float() for k in names])
        if self.info.distributed:
            bad = all_reduce_mean(bad, self.info)
        if bool((bad > 0).any()):
            which = [n for n, b in zip(names, bad.tolist(), strict=True) if b > 0]
            values = {n: float(terms[n].detach()) for n in which}
            raise NonFiniteLossError(
                f"{self.run_dir}: loss term(s) {', '.join(which)} became non-finite {values} at epoch {self.epoch}, "
                f"step {self.step}; lower train.lr, raise train.grad_clip or check the data "
                f"(last checkpoint: {self.ckpt.dir})"
            )

    def _optimizer_step(self, batches: list[dict]) -> dict[str, float]:
        """One optimiser step over ``accumulate`` micro-batches; returns the mean terms."""
        module = self.ddp if self.ddp is not None else self.loss_module
        self.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, float] = {}
        for i, batch in enumerate(batches):
            batch = _to(batch, self.device)
            sync = self.ddp is None or i == len(batches) - 1
            ctx = contextlib.nullcontext() if sync else self.ddp.no_sync()
            with ctx:
                with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
                    total, terms, metrics = module(batch)
                self._check_finite(terms)
                self.scaler.scale(total / len(batches)).backward()
            for k, v in {**terms, **metrics, "loss": total}.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) / len(batches)
        self.scaler.unscale_(self.optimizer)
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        if self.cfg.train.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.train.grad_clip)
            if not self.scaler.is_enabled() and not torch.isfinite(norm):
                raise NonFiniteLossError(
                    f"{self.run_dir}: gradient norm became non-finite at epoch {self.epoch}, step {self.step}"
                )
            sums["grad_norm"] = float(norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step += 1
        return sums

    def _open_writer(self) -> None:
        if not self.info.is_main or self.writer is not None:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # pragma: no cover - tensorboard is a dependency
            log.warning("tensorboard is not installed; no TensorBoard logs")
            return
        _quiet_tensorboard_thread()
        log_dir = str(self.run_dir / "tensorboard")
        self.writer = self._tensorboard(lambda: SummaryWriter(log_dir=log_dir, purge_step=self.step or None))

    def _tensorboard(self, call: Callable[[], Any]) -> Any:
        """Run one TensorBoard writer call and return its result.

        The event file is written by a background thread whose failure shows at the writer's next call. An
        environment error (disk full, no permission) ends the run as an ``OutputError`` naming the log folder (a
        full disk would fail the next checkpoint too); the writer is dropped first, so that closing it later
        raises nothing more. Other errors propagate unchanged.
        """
        try:
            return call()
        except OSError as exc:
            error = output_error(exc, self.run_dir / "tensorboard", "the TensorBoard log")
            if error is None:
                raise
            writer, self.writer = self.writer, None
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.close()
            raise error from None

    def _log(self, sums: dict[str, float], samples_per_s: float) -> None:
        writer = self.writer
        if writer is None:
            return

        def add() -> None:
            for k, v in sums.items():
                writer.add_scalar(f"train/{k}", v, self.step)
            for g in self.optimizer.param_groups:
                writer.add_scalar(f"lr/{g.get('name', 'group')}", g["lr"], self.step)
            writer.add_scalar("train/samples_per_s", samples_per_s, self.step)

        self._tensorboard(add)

    def fit(self, stop_after: int | None = None) -> TrainResult:
        """Train until ``train.epochs`` are done (or ``stop_after`` optimiser steps in total, then checkpoint)."""
        tc = self.cfg.train
        self.model.train()
        self._open_writer()
        last: Path | None = None
        samples_per_step = tc.batch_size * tc.accumulate * self.info.world_size
        try:
            while self.epoch < tc.epochs:
                skip = self.step_in_epoch * tc.accumulate
                loader = iter(self._loader(self.epoch, skip))
                bar = tqdm(
                    total=self.steps_per_epoch,
                    initial=self.step_in_epoch,
                    desc=f"{self.kind} epoch {self.epoch + 1}/{tc.epochs}",
                    disable=not (self.progress and self.info.is_main),
                    dynamic_ncols=True,
                )
                epoch_sums = dict(self._epoch_sums)
                with bar:
                    while self.step_in_epoch < self.steps_per_epoch:
                        t0 = time.perf_counter()
                        batches = [next(loader) for _ in range(tc.accumulate)]
                        sums = self._optimizer_step(batches)
                        self.step_in_epoch += 1
                        rate = samples_per_step / max(time.perf_counter() - t0, 1e-9)
                        for k, v in sums.items():
                            epoch_sums[k] = epoch_sums.get(k, 0.0) + v
                        self._epoch_sums = epoch_sums
                        bar.update(1)
                        bar.set_postfix(loss=f"{sums['loss']:.4f}", samples_s=f"{rate:.1f}")
                        if self.step % max(tc.log_every, 1) == 0 or self.step_in_epoch == self.steps_per_epoch:
                            self._log(sums, rate)
                        stop = stop_after is not None and self.step >= stop_after
                        if self.step_in_epoch < self.steps_per_epoch and (
                            stop or (tc.save_every and self.step % tc.save_every == 0)
                        ):
                            last = self.save() or last
                        if stop and self.step_in_epoch < self.steps_per_epoch:
                            return self._result(last)
                means = {k: v / self.steps_per_epoch for k, v in epoch_sums.items()}
                means = self._reduce(means)
                self.history.append({"epoch": self.epoch + 1, "step": self.step, **means})
                is_best = means["loss"] < self.best
                if is_best:
                    self.best = means["loss"]
                self.epoch += 1
                self.step_in_epoch = 0
                self._epoch_sums = {}
                last = self.save(best=is_best) or last
                self._write_history()
                if stop_after is not None and self.step >= stop_after:
                    break
        finally:
            if self.writer is not None:
                self._tensorboard(self.writer.flush)
        return self._result(last)

    def _reduce(self, means: dict[str, float]) -> dict[str, float]:
        if not self.info.distributed:
            return means
        keys = sorted(means)
        vals = all_reduce_mean(torch.tensor([means[k] for k in keys], dtype=torch.float64), self.info)
        return dict(zip(keys, vals.tolist(), strict=True))

    def _write_history(self) -> None:
        if self.info.is_main:
            lines = "".join(json.dumps(h) + "\n" for h in self.history)
            atomic_write_text(self.run_dir / "history.jsonl", lines)

    def _result(self, last: Path | None) -> TrainResult:
        files = self.ckpt.step_files()
        return TrainResult(
            run_dir=self.run_dir,
            last_checkpoint=last or (files[-1] if files else None),
            best_checkpoint=self.ckpt.best_path if self.ckpt.best_path.is_file() else None,
            step=self.step,
            epoch=self.epoch,
            metrics=dict(self.history[-1]) if self.history else {},
        )

    def close(self) -> None:
        if self.writer is not None:
            self._tensorboard(self.writer.close)
            self.writer = None


def _quiet_tensorboard_thread() -> None:
    """Keep TensorBoard's event-writer thread from printing a traceback when a write fails for an environment
    reason (disk full, ...): the writer raises the same error again at its next call in the training loop, where
    :meth:`Trainer._tensorboard` reports it in one line. Installed once; other thread errors are untouched."""
    import threading

    previous = threading.excepthook
    if getattr(previous, "spiketrack_tensorboard", False):
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        quiet = (
            type(args.thread).__module__.startswith("tensorboard.")
            and isinstance(args.exc_value, OSError)
            and environment_error_message(args.exc_value) is not None
        )
        if not quiet:
            previous(args)

    hook.spiketrack_tensorboard = True  # type: ignore[attr-defined]
    threading.excepthook = hook


# ------------------------------------------------------------------------------------------------
# Library entry points
# ------------------------------------------------------------------------------------------------


def _default_build(cfg: ExperimentConfig) -> nn.Module:
    from spiketrack.models import build_model

    return build_model(cfg)


def _check_run_dir(
    cfg: ExperimentConfig, out_dir: str | Path | None, resume: bool, allow_config_change: bool = False
) -> Path:
    """The run folder, checked without writing anything: it can be made, and holds no checkpoints unless resuming
    (then its config.yaml matches ``cfg``, :mod:`spiketrack.train.resume_check`)."""
    run_dir = Path(out_dir if out_dir is not None else cfg.train.out_dir)
    check_output_dir_possible(run_dir, "run folder")
    has_ckpts = bool(CheckpointManager(run_dir).step_files())
    if has_ckpts and not resume:
        raise ConfigError(
            f"{run_dir}: the run folder already holds checkpoints; pass --resume to continue it or --out for a new run"
        )
    if resume and has_ckpts:
        check_resume_config(run_dir, cfg, allow_change=allow_config_change)
    return run_dir


def _prepare_run_dir(cfg: ExperimentConfig, run_dir: Path, info: DistInfo) -> None:
    """Make the run folder (main process) and write its config.yaml; temporary files of killed runs go."""
    if info.is_main:
        prepare_output_dir(run_dir, "run folder")
        clean_stale_temps(run_dir)
        clean_stale_temps(run_dir / "checkpoints")
        dump_config(cfg, run_dir / "config.yaml")


@contextlib.contextmanager
def _removed_if_no_checkpoint(run_dir: Path, info: DistInfo) -> Iterator[None]:
    """A run that fails (or is interrupted) before its first checkpoint takes back what it wrote: the run folder
    when this run made it, else the files it added, so the corrected re-run starts in a clean folder."""
    existed = run_dir.exists()
    before = set(run_dir.iterdir()) if existed and run_dir.is_dir() else set()
    try:
        yield
    except BaseException:
        ckpts = CheckpointManager(run_dir)
        if info.is_main and not ckpts.step_files() and not ckpts.best_path.exists():
            made = [run_dir] if not existed else [p for p in run_dir.iterdir() if p not in before]
            for path in made:
                with contextlib.suppress(OSError):
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path)
                    else:
                        path.unlink(missing_ok=True)
        raise


def _run(
    cfg: ExperimentConfig,
    out_dir: str | Path | None,
    *,
    resume: bool,
    stop_after: int | None,
    progress: bool,
    build_model: BuildFn | None,
    teacher: nn.Module | None = None,
    extra_state: dict[str, Any] | None = None,
    allow_config_change: bool = False,
) -> TrainResult:
    info = setup_distributed()
    # the caller's torch threads and deterministic-algorithms mode, restored on return: a training run in a process
    # (a notebook, a test) must not change how later computations sum
    threads_before = torch.get_num_threads()
    deterministic_before = (torch.are_deterministic_algorithms_enabled(),
                            torch.is_deterministic_algorithms_warn_only_enabled())
    try:
        # everything that can refuse the run (model, data, distillation terms) is checked before the folder is made
        run_dir = _check_run_dir(cfg, out_dir, resume, allow_config_change)
        if cfg.train.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        seed_everything(cfg.train.seed)  # same initial weights on every process
        model = (build_model or _default_build)(cfg)
        seed_everything(cfg.train.seed + info.rank)  # per-process dropout / drop-path streams
        trainer = Trainer(
            cfg, run_dir, model, info, teacher=teacher, progress=progress, extra_state=extra_state,
        )
        with _removed_if_no_checkpoint(run_dir, info):
            _prepare_run_dir(cfg, run_dir, info)
            if info.device.type == "cpu":  # one compute thread per core left free by the loader workers
                log.info("torch threads: %d", configure_threads(cfg.data.num_workers))
            if resume:
                found = trainer.ckpt.latest()
                if found is not None:
                    trainer.restore(*found)
                    if info.is_main:
                        log.info("resuming %s from %s (epoch %d, step %d)", run_dir, found[0], trainer.epoch,
                                 trainer.step)
            try:
                return trainer.fit(stop_after=stop_after)
            finally:
                trainer.close()
    finally:
        torch.use_deterministic_algorithms(deterministic_before[0], warn_only=deterministic_before[1])
        if torch.get_num_threads() != threads_before:
            torch.set_num_threads(threads_before)
        cleanup_distributed()


def train(
    cfg: ExperimentConfig,
    out_dir: str | Path | None = None,
    *,
    resume: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
    build_model: BuildFn | None = None,
    allow_config_change: bool = False,
) -> TrainResult:
    """Train the teacher or student of ``cfg`` from scratch (or resume it) in ``out_dir``.

    ``out_dir`` defaults to ``cfg.train.out_dir``. ``resume=True`` continues from the newest checkpoint
    there (and starts fresh when there is none); ``stop_after`` ends the run after that many optimiser
    steps in total, with a checkpoint (for time-boxed jobs). ``build_model`` replaces
    :func:`spiketrack.models.build_model`. Under ``torchrun`` every process calls this. A resumed run refuses a
    config that differs from its ``config.yaml`` (:mod:`spiketrack.train.resume_check`) unless
    ``allow_config_change``.
    """
    return _run(cfg, out_dir, resume=resume, stop_after=stop_after, progress=progress, build_model=build_model,
                allow_config_change=allow_config_change)


def distill(
    cfg: ExperimentConfig,
    teacher_ckpt: str | Path,
    out_dir: str | Path | None = None,
    *,
    resume: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
    build_model: BuildFn | None = None,
    build_teacher: BuildFn | None = None,
    allow_config_change: bool = False,
) -> TrainResult:
    """Distil the student of ``cfg`` from the frozen teacher checkpoint ``teacher_ckpt``.

    The student trains on the tracking losses plus the enabled KD terms of ``cfg.distill``; the teacher's
    inputs (its modalities, from its checkpoint's config) are cropped from the same windows, flips and
    intensity jitter as the student's. Crop sizes of teacher and student must agree.
    """
    if cfg.model.kind != "student":
        raise ConfigError(f"model.kind: distillation trains a student, the config says {cfg.model.kind!r}")
    teacher, t_cfg = load_checkpoint(teacher_ckpt, build=build_teacher or _default_build)
    if t_cfg.model.kind != "teacher":
        raise CheckpointError(f"{teacher_ckpt}: holds a {t_cfg.model.kind}, expected a teacher")
    for key in ("template_size", "search_size"):
        if getattr(t_cfg.data, key) != getattr(cfg.data, key):
            raise ConfigError(
                f"data.{key}: the student uses {getattr(cfg.data, key)}, the teacher {teacher_ckpt} was trained with "
                f"{getattr(t_cfg.data, key)}; they must match"
            )
    extra = {"teacher": str(teacher_ckpt)}
    return _run(
        cfg,
        out_dir,
        resume=resume,
        stop_after=stop_after,
        progress=progress,
        build_model=build_model,
        teacher=teacher,
        extra_state=extra,
        allow_config_change=allow_config_change,
    )


__all__ = [
    "LossModule",
    "NonFiniteLossError",
    "TrainResult",
    "Trainer",
    "distill",
    "run_model",
    "train",
]
