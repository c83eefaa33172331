"""train.sync_bn: batch norm over the global batch of a 2-process gloo job equals one process on the whole batch."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp
from torch import nn
from trainsynth import tiny_config

from spiketrack.models import build_model
from spiketrack.train.distributed import (
    DistributedBatchNorm,
    cleanup_distributed,
    convert_sync_batchnorm,
    setup_distributed,
)
from spiketrack.train.trainer import Trainer, seed_everything


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 1, 1))


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 2, 5, 5, generator=g) * 2 + 1
    return x, torch.randn(6, 1, 5, 5, generator=g)


def _step(net: nn.Module, x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
    x = x.clone().requires_grad_()
    y = net(x)
    (y * w).sum().backward()
    grads = {n: p.grad.clone() for n, p in net.named_parameters()}
    return y.detach(), x.grad, {**grads, "running_mean": net[1].running_mean.clone(),
                                "running_var": net[1].running_var.clone()}


def _worker(rank: int, port: int, root: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    info = setup_distributed("cpu")
    try:
        net = convert_sync_batchnorm(_net(), torch.device("cpu"))
        x, w = _batch()
        y, gx, state = _step(net, x[rank * 3:(rank + 1) * 3], w[rank * 3:(rank + 1) * 3])
        # the trainer converts the student's BN layers when train.sync_bn is set
        cfg = tiny_config(Path(root), "student", **{"train.steps_per_epoch": 1, "train.batch_size": 2,
                                                     "train.sync_bn": True})
        seed_everything(0)
        trainer = Trainer(cfg, Path(out) / "run", build_model(cfg), info, progress=False)
        norms = [type(m) for m in trainer.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        trainer._optimizer_step([next(iter(trainer._loader(0, 0)))])
        bn = next(m for m in trainer.model.modules() if isinstance(m, DistributedBatchNorm))
        torch.save({"y": y, "gx": gx, "state": state, "norms": {t.__name__ for t in norms},
                    "trainer_running_mean": bn.running_mean.clone()}, Path(out) / f"rank{rank}.pt")
    finally:
        cleanup_distributed()


def test_sync_bn_two_gloo_processes_equal_one_process_on_the_whole_batch(square_dataset: Path, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_worker, args=(port, str(square_dataset), str(tmp_path)), nprocs=2, join=True,
                       start_method="fork")
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    x, w = _batch()
    y, gx, state = _step(_net(), x, w)  # one process, plain BatchNorm2d, the whole batch of 6
    torch.testing.assert_close(torch.cat([ranks[0]["y"], ranks[1]["y"]]), y, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.cat([ranks[0]["gx"], ranks[1]["gx"]]), gx, rtol=1e-4, atol=1e-5)
    for key in ("running_mean", "running_var"):
        torch.testing.assert_close(ranks[0]["state"][key], state[key], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ranks[1]["state"][key], state[key], rtol=1e-5, atol=1e-6)
    # parameter gradients: each rank holds its share; their sum is the whole batch's gradient (DDP averages)
    for name in ("0.weight", "1.weight", "1.bias", "3.weight"):
        torch.testing.assert_close(ranks[0]["state"][name] + ranks[1]["state"][name], state[name], rtol=1e-4, atol=1e-5)
    assert ranks[0]["norms"] == {"DistributedBatchNorm"}
    # after one real training step both processes hold the same BN running statistics (no rank-0-only state)
    torch.testing.assert_close(ranks[0]["trainer_running_mean"], ranks[1]["trainer_running_mean"])


def test_conversion_keeps_parameters_and_state_dict_keys() -> None:
    net = _net()
    keys = set(net.state_dict())
    weight = net[1].weight
    out = convert_sync_batchnorm(net, torch.device("cpu"))
    assert isinstance(out[1], DistributedBatchNorm) and out[1].weight is weight
    assert set(out.state_dict()) == keys
    x, w = _batch()
    torch.testing.assert_close(_step(out, x, w)[0], _step(_net(), x, w)[0])  # one process: a plain batch norm
