"""Compute threads leave a core to each loader worker and honour OMP_NUM_THREADS."""

from __future__ import annotations

import pytest

from spiketrack import threads


@pytest.mark.parametrize(("cores", "workers", "expected"), [(2, 1, 1), (2, 0, 2), (8, 2, 6), (1, 3, 1), (4, 4, 1)])
def test_threads_are_the_cores_left_by_the_loader_workers(monkeypatch: pytest.MonkeyPatch, cores: int, workers: int,
                                                          expected: int) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(range(cores)))
    assert threads.compute_threads(workers) == expected


def test_explicit_omp_num_threads_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.compute_threads(1) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "not-a-number")
    assert threads.compute_threads(1) == 3  # ignored: 4 cores - 1 worker


def test_configure_sets_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    try:
        assert threads.configure_threads(0) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
