"""Which teacher layer each distilled student layer is compared with.

A term's ``layers`` (``distill.similarity.layers``, ``distill.feature.layers``, ``distill.temporal.layer``) name
student layers (indices into the student's ``feature_info``; negative counts from the end). ``distill.layer_pairing``:

- ``index`` (default): the teacher layer with the same index — the last layer with the last (``-1``), but block
  ``i`` of a 4-block student with block ``i`` of a 12-layer teacher, whatever the depths.
- ``relative_depth``: student block ``i`` of ``Ns`` with teacher layer ``round((i + 1) * Nt / Ns) - 1`` (same
  fraction of the depth; halves round up), so the last student block always meets the last teacher layer.
"""

from __future__ import annotations

import math

from spiketrack.errors import ConfigError


def check_layer(i: int, n: int, who: str, key: str = "distill.feature.layers") -> int:
    """Layer index ``i`` of a model with ``n`` layers, made non-negative; ConfigError naming ``key`` if out of range."""
    if not -n <= i < n:
        raise ConfigError(f"{key}: layer {i} out of range for the {who} ({n} layers)")
    return i % n


def relative_depth_layer(i: int, ns: int, nt: int, key: str = "distill.feature.layers") -> int:
    """Teacher layer of student block ``i`` (0-based, negative from the end) of ``ns`` blocks, for ``nt`` layers."""
    i = check_layer(i, ns, "student", key)
    return max(0, math.floor((i + 1) * nt / ns + 0.5) - 1)


def teacher_layers(
    student_layers: list[int], ns: int, nt: int, pairing: str, key: str = "distill.feature.layers"
) -> list[int]:
    """Teacher layer indices paired with ``student_layers`` for ``ns`` student and ``nt`` teacher layers
    (``key`` names the setting in errors)."""
    if pairing == "index":
        return list(student_layers)
    if pairing == "relative_depth":
        return [relative_depth_layer(i, ns, nt, key) for i in student_layers]
    raise ConfigError(f"distill.layer_pairing: expected 'index' or 'relative_depth', got {pairing!r}")


__all__ = ["check_layer", "relative_depth_layer", "teacher_layers"]
