"""Every config key is read somewhere in the package: a key nothing reads is a setting that silently does nothing."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from typing import get_type_hints

from spiketrack.config import ExperimentConfig

PACKAGE = Path(__file__).resolve().parents[1] / "spiketrack"
EXEMPT: set[str] = set()  # keys that may be defined but not read (none today)


def _leaf_keys(cls: type, prefix: str = "") -> list[str]:
    """Dotted keys of every non-section field of dataclass ``cls``, e.g. ``tracking.asr_m``."""
    hints = get_type_hints(cls)
    keys = []
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        tp = hints[f.name]
        keys += _leaf_keys(tp, f"{key}.") if dataclasses.is_dataclass(tp) else [key]
    return keys


def _attributes_read() -> set[str]:
    """Names of every attribute the package reads (``x.name`` in a load context), config.py excepted."""
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "config.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                names.add(node.attr)
    return names


def test_every_config_key_is_read_by_the_package() -> None:
    # By leaf name only (``asr_m``), not by section: a name shared by two sections (``timesteps``, ``weight``)
    # passes when either is read. Keys must be read as attributes (``cfg.tracking.asr_m``), not by getattr.
    read = _attributes_read()
    dead = [k for k in _leaf_keys(ExperimentConfig) if k.rsplit(".", 1)[-1] not in read and k not in EXEMPT]
    assert not dead, f"config keys that nothing in spiketrack/ reads (remove them or use them): {dead}"


def test_the_walk_finds_nested_keys() -> None:
    keys = _leaf_keys(ExperimentConfig)
    assert {"tracking.asr_m", "model.neuron.levels", "train.loss.box_at", "distill.fourier.weight"} <= set(keys)
