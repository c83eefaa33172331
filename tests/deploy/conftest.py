"""Fixtures of the deploy tests."""

from __future__ import annotations

import pytest
from deploy_helpers import lif_student as _lif_student
from torch import nn


@pytest.fixture
def lif_student() -> nn.Module:
    """The binary-LIF quickstart student with firing BN statistics (eval mode)."""
    return _lif_student()
