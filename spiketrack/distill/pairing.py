"""Which teacher layer each distilled student layer is compared with.

``distill.feature_layers`` names student layers (indices into the student's ``feature_info``; negative counts from
the end). ``distill.layer_pairing``:

- ``index`` (default): the teacher layer with the same index — the last layer with the last (``-1``), but block
  ``i`` of a 4-block student with block ``i`` of a 12-layer teacher, whatever the depths.
- ``relative_depth``: student block ``i`` of ``Ns`` with teacher layer ``round((i + 1) * Nt / Ns) - 1`` (same
  fraction of the depth; halves round up), so the last student block always meets the last teacher layer.
"""

from __future__ import annotations

import math

from spiketrack.errors import ConfigError


def _resolve(i: int, n: int, who: str) -> int:
    if not -n <= i < n:
        raise ConfigError(f"distill.feature_layers: layer {i} out of range for the {who} ({n} layers)")
    return i % n


def relative_depth_layer(i: int, ns: int, nt: int) -> int:
    """Teacher layer of student block ``i`` (0-based, negative from the end) of ``ns`` blocks, for ``nt`` layers."""
    i = _resolve(i, ns, "student")
    return max(0, math.floor((i + 1) * nt / ns + 0.5) - 1)


def teacher_layers(student_layers: list[int], ns: int, nt: int, pairing: str) -> list[int]:
    """Teacher layer indices paired with ``student_layers`` for ``ns`` student and ``nt`` teacher layers."""
    if pairing == "index":
        return list(student_layers)
    if pairing == "relative_depth":
        return [relative_depth_layer(i, ns, nt) for i in student_layers]
    raise ConfigError(f"distill.layer_pairing: expected 'index' or 'relative_depth', got {pairing!r}")


__all__ = ["relative_depth_layer", "teacher_layers"]
