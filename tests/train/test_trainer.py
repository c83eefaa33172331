"""The trainer: the loss goes down, exact resume, DDP gradients, NaN guard, CLI train/distill."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn
from trainsynth import tiny_config

from spiketrack.cli import main
from spiketrack.config import dump_config
from spiketrack.models import build_model
from spiketrack.models.checkpoint import load_checkpoint, read_checkpoint
from spiketrack.train.distributed import cleanup_distributed, setup_distributed
from spiketrack.train.trainer import NonFiniteLossError, Trainer, seed_everything, train


def _history(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]


def test_short_run_lowers_training_loss(square_dataset: Path, tmp_path: Path) -> None:
    cfg = tiny_config(
        square_dataset,
        "teacher",
        **{"train.epochs": 3, "train.steps_per_epoch": 5, "train.batch_size": 4, "train.lr": 0.002,
           "train.schedule": "step"},
    )
    result = train(cfg, tmp_path / "run", progress=False)
    losses = [h["loss"] for h in _history(result.run_dir)]
    assert len(losses) == 3 and result.step == 15
    assert losses[-1] < 0.9 * losses[0]
    assert (result.run_dir / "config.yaml").is_file()
    assert any((result.run_dir / "tensorboard").iterdir())
    model, cfg2 = load_checkpoint(result.last_checkpoint)
    assert cfg2.model.kind == "teacher" and not model.training


def test_training_leaves_threads_and_deterministic_mode_as_it_found_them(
    square_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run sets torch's threads (spiketrack.threads) and, with train.deterministic, its deterministic mode for
    itself only: the caller's are restored."""
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the run's own thread count differs from the caller's (1)
    cfg = tiny_config(square_dataset, "teacher", **{"train.epochs": 1, "train.steps_per_epoch": 1,
                                                     "train.batch_size": 2, "train.deterministic": True})
    before = torch.get_num_threads()
    assert not torch.are_deterministic_algorithms_enabled() and before != 3
    train(cfg, tmp_path / "run", progress=False)
    assert not torch.are_deterministic_algorithms_enabled() and torch.get_num_threads() == before
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        train(cfg, tmp_path / "run2", progress=False)
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


def test_resume_is_exact(square_dataset: Path, tmp_path: Path) -> None:
    """2 steps, stop, --resume to the end == the same run straight (drop-path RNG, accumulation, epochs)."""
    cfg = tiny_config(
        square_dataset,
        "teacher",
        **{"train.epochs": 2, "train.steps_per_epoch": 3, "train.accumulate": 2, "train.warmup_epochs": 0.5,
           "model.overrides": "{dim: 32, depth: 2, heads: 2, head_channels: 16, drop_path: 0.2}"},
    )
    straight = train(cfg, tmp_path / "straight", progress=False)
    first = train(cfg, tmp_path / "resumed", progress=False, stop_after=2)
    assert first.step == 2 and first.epoch == 0
    resumed = train(cfg, tmp_path / "resumed", progress=False, resume=True)
    assert resumed.step == straight.step == 6
    a = read_checkpoint(straight.last_checkpoint)
    b = read_checkpoint(resumed.last_checkpoint)
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert torch.equal(a["rng"][0]["torch"], b["rng"][0]["torch"])
    assert _history(straight.run_dir) == _history(resumed.run_dir)


def test_fresh_run_refuses_folder_with_checkpoints(square_dataset: Path, tmp_path: Path) -> None:
    cfg = tiny_config(square_dataset, "teacher", **{"train.steps_per_epoch": 1})
    train(cfg, tmp_path / "run", progress=False)
    from spiketrack.errors import ConfigError

    with pytest.raises(ConfigError, match="--resume"):
        train(cfg, tmp_path / "run", progress=False)


class _NaNScore(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.input_spec = model.input_spec  # the wrapped model's inputs (model protocol)

    def forward(self, template, search, return_features=False):  # noqa: ANN001
        out = self.model(template, search, return_features)
        out["score_map"] = out["score_map"] * float("nan")
        return out


def test_nan_guard_names_the_term(square_dataset: Path, tmp_path: Path) -> None:
    cfg = tiny_config(square_dataset, "teacher", **{"train.steps_per_epoch": 2})
    with pytest.raises(NonFiniteLossError, match="focal"):
        train(cfg, tmp_path / "run", progress=False, build_model=lambda c: _NaNScore(build_model(c)))


# ------------------------------------------------------------------ DDP


def _grads(root: Path, run_dir: Path, batch_size: int) -> tuple[dict[str, torch.Tensor], list[int]]:
    """Gradients of the first batch through the trainer's own (DDP-wrapped) loss module."""
    info = setup_distributed("cpu")
    cfg = tiny_config(root, "teacher", **{"train.steps_per_epoch": 1, "train.batch_size": batch_size})
    seed_everything(0)
    model = build_model(cfg)
    for m in model.modules():  # per-process BatchNorm statistics would differ from the combined batch's
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    trainer = Trainer(cfg, run_dir, model, info, progress=False)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    batch = next(iter(trainer._loader(0, 0)))
    module = trainer.ddp if trainer.ddp is not None else trainer.loss_module
    total, _, _ = module(batch)
    total.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return grads, batch["index"].tolist()


def _ddp_worker(rank: int, world: int, port: int, root: str, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    try:
        grads, idx = _grads(Path(root), Path(out) / "run", batch_size=2)
        torch.save({"grads": grads, "index": idx}, Path(out) / f"rank{rank}.pt")
    finally:
        cleanup_distributed()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_processes_match_one_process_on_combined_batch(square_dataset: Path, tmp_path: Path) -> None:
    # fork: the children inherit the imported modules (spawn would re-import torch, timm, ... per process)
    mp.start_processes(
        _ddp_worker, args=(2, _free_port(), str(square_dataset), str(tmp_path)), nprocs=2, join=True, start_method="fork"
    )
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    single, idx = _grads(square_dataset, tmp_path / "single", batch_size=4)
    assert sorted(ranks[0]["index"] + ranks[1]["index"]) == sorted(idx)
    assert set(ranks[0]["grads"]) == set(single)
    for name, g in single.items():
        assert torch.equal(ranks[0]["grads"][name], ranks[1]["grads"][name]), name
        assert torch.allclose(ranks[0]["grads"][name], g, rtol=1e-4, atol=1e-6), name


# ------------------------------------------------------------------ CLI


def test_cli_train_then_distill(square_dataset: Path, tmp_path: Path) -> None:
    t_yaml, s_yaml = tmp_path / "teacher.yaml", tmp_path / "student.yaml"
    dump_config(tiny_config(square_dataset, "teacher", **{"train.steps_per_epoch": 2}), t_yaml)
    dump_config(tiny_config(square_dataset, "student", **{"train.steps_per_epoch": 2}), s_yaml)
    assert main(["train", str(t_yaml), "--out", str(tmp_path / "t"), "--no-progress"]) == 0
    teacher = tmp_path / "t" / "checkpoints" / "ckpt-00000002.pt"
    assert teacher.is_file()
    rc = main(
        ["distill", str(s_yaml), "--teacher", str(teacher), "--out", str(tmp_path / "s"), "--no-progress",
         "--set", "data.num_search=2", "--set", "distill.fourier.enabled=true"]
    )
    assert rc == 0
    state = read_checkpoint(tmp_path / "s" / "checkpoints" / "ckpt-00000002.pt")
    assert state["kind"] == "student" and "align" in state
    logged = _history(tmp_path / "s")[0]
    assert {"kd_similarity", "kd_feature", "kd_response", "kd_fourier", "focal", "giou", "l1"} <= set(logged)
    model, cfg = load_checkpoint(tmp_path / "s" / "checkpoints" / "best.pt")
    assert cfg.model.kind == "student"
    # user errors come back as exit code 2, not tracebacks
    assert main(["distill", str(s_yaml), "--teacher", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "x")]) == 2
    assert main(["train", str(t_yaml), "--out", str(tmp_path / "t")]) == 2


def test_distill_with_correlation_kd_trains_the_student_correlation_towards_the_teachers(
    square_dataset: Path, tmp_path: Path
) -> None:
    """Both models correlate (xcorr): the correlation term is logged and its projection saved with the run."""
    t_cfg = tiny_config(square_dataset, "teacher", **{"train.steps_per_epoch": 2})
    t_cfg.model.overrides["xcorr"] = True
    s_cfg = tiny_config(square_dataset, "student", **{"train.steps_per_epoch": 2})
    s_cfg.model.overrides["xcorr"] = True
    t_yaml, s_yaml = tmp_path / "teacher.yaml", tmp_path / "student.yaml"
    dump_config(t_cfg, t_yaml)
    dump_config(s_cfg, s_yaml)
    assert main(["train", str(t_yaml), "--out", str(tmp_path / "t"), "--no-progress"]) == 0
    teacher = tmp_path / "t" / "checkpoints" / "ckpt-00000002.pt"
    rc = main(["distill", str(s_yaml), "--teacher", str(teacher), "--out", str(tmp_path / "s"), "--no-progress",
               "--set", "distill.correlation.enabled=true"])
    assert rc == 0
    logged = _history(tmp_path / "s")[0]
    assert "kd_correlation" in logged and logged["kd_correlation"] > 0
    state = read_checkpoint(tmp_path / "s" / "checkpoints" / "ckpt-00000002.pt")
    proj = state["align"]["terms.correlation.align.proj.0.weight"]
    assert tuple(proj.shape) == (32, 48)  # teacher dim x the student's last block width
    # a student without the correlation head cannot be distilled this way: a clear error, exit code 2
    s_cfg.model.overrides["xcorr"] = False
    dump_config(s_cfg, s_yaml)
    assert main(["distill", str(s_yaml), "--teacher", str(teacher), "--out", str(tmp_path / "s2"), "--no-progress",
                 "--set", "distill.correlation.enabled=true"]) == 2


def test_full_disk_under_tensorboard_ends_the_run_in_one_line(
    square_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The event file's writer thread hits ENOSPC mid-run: exit code 2, one line naming the log folder (issue 16)."""
    import errno
    import threading

    from tensorboard.summary.writer.record_writer import RecordWriter

    real_write = RecordWriter.write
    calls = []

    def write(self, data: bytes) -> None:
        calls.append(len(data))
        if len(calls) > 3:  # the file header and a few scalars go through, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(self, data)

    thread_errors = []
    monkeypatch.setattr(RecordWriter, "write", write)
    monkeypatch.setattr(threading, "excepthook", thread_errors.append)  # what the writer thread would print
    yaml = tmp_path / "student.yaml"
    dump_config(tiny_config(square_dataset, "student", **{"train.steps_per_epoch": 3}), yaml)
    run = tmp_path / "run"
    rc = main(["train", str(yaml), "--out", str(run), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert str(run / "tensorboard") in err and "no space left" in err and "TensorBoard" in err, err
    assert thread_errors == [] and len(calls) > 3
