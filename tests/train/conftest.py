"""Fixtures of the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from trainsynth import make_dataset


@pytest.fixture(scope="session")
def square_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three small sequence files (64x64, 12 frames, one absent frame) with a train.txt list."""
    return make_dataset(tmp_path_factory.mktemp("squares"))
