"""What produced a results folder, so that resuming never mixes two trackers' results.

``spiketrack track`` skips sequences that are already finished in its ``--out`` folder. That is how an
interrupted run resumes, but it would silently keep old results when the folder is reused with another
checkpoint or other settings. The runner therefore writes ``track_run.json`` (the tracker — checkpoint path
and SHA-256, an in-process model, or a non-learned tracker's name and settings — and every setting that changes
the boxes: the model, the input crops and the tracking options) and refuses, naming the differing keys, to add results made otherwise.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from torch import nn

from spiketrack.atomic import atomic_write_text
from spiketrack.config import ExperimentConfig, to_dict
from spiketrack.errors import ConfigError
from spiketrack.models.checkpoint import model_settings
from spiketrack.tracking.trackers import non_learned

IDENTITY_FILE = "track_run.json"

# data keys that shape the tracker's inputs (the others only concern training pairs)
_INPUT_KEYS = ("template_size", "search_size", "template_factor", "search_factor", "voxel_bins")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_identity(cfg: ExperimentConfig, tracker: Any) -> dict[str, Any]:
    """Flat ``{key: value}`` identity of a tracking run (see the module docstring); ``tracker`` as
    :func:`spiketrack.tracking.runner.track_dataset` takes it."""
    fixed = non_learned(tracker)
    if fixed is not None:
        return json.loads(json.dumps({"tracker": fixed.name, **fixed.settings(cfg)}))
    if isinstance(tracker, nn.Module):
        ident: dict[str, Any] = {"tracker": f"in-process {type(tracker).__name__}"}
    else:
        path = Path(tracker)
        ident = {"tracker": str(path.resolve()), "tracker sha256": _sha256(path) if path.is_file() else None}
    data = to_dict(cfg.data)
    ident.update({f"data.{k}": data[k] for k in _INPUT_KEYS})
    ident.update({f"model.{k}": v for k, v in model_settings(cfg).items()})
    ident.update({f"tracking.{k}": v for k, v in to_dict(cfg.tracking).items()})
    return json.loads(json.dumps(ident))  # plain JSON values, as they read back from the file


def holds_results(out: Path) -> bool:
    """Whether ``out`` holds a finished sequence (``<name>.txt`` beside its ``<name>_time.txt``)."""
    return any(t.with_name(t.name[: -len("_time.txt")] + ".txt").is_file() for t in Path(out).glob("*_time.txt"))


def claim_results_dir(out: Path, identity: dict[str, Any]) -> bool:
    """Record ``identity`` in ``out``, or raise ConfigError if ``out`` holds results made by another run.

    A claim under which no sequence was finished (a run that failed or was killed before its first result)
    binds nothing and is replaced. Returns True when this call wrote the claim (see :func:`released_on_failure`).
    """
    path = out / IDENTITY_FILE
    if path.is_file() and not holds_results(out):
        path.unlink(missing_ok=True)
    if path.is_file():
        try:
            before = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: unreadable ({exc}); delete it if the results folder is yours") from exc
        diff = sorted(k for k in before.keys() | identity.keys() if before.get(k) != identity.get(k))
        if diff:
            listed = "; ".join(f"{k}: then {before.get(k)!r}, now {identity.get(k)!r}" for k in diff[:6])
            more = f" (+{len(diff) - 6} more)" if len(diff) > 6 else ""
            raise ConfigError(
                f"{out}: holds results of another tracking run ({listed}{more}); finished sequences would be "
                "kept from it. Use another --out, or delete the folder to track again"
            )
        return False
    atomic_write_text(path, json.dumps(identity, indent=1))
    return True


@contextmanager
def released_on_failure(out: Path, claimed: bool, made: bool = False) -> Iterator[None]:
    """Remove the claim written by :func:`claim_results_dir` when the run fails before finishing a sequence,
    so a failed run (refused checkpoint, bad file) leaves nothing that blocks the corrected re-run; ``made``: the
    run made the folder ``out``, which goes too when nothing is left in it."""
    try:
        yield
    except BaseException:
        if claimed and not holds_results(out):
            (Path(out) / IDENTITY_FILE).unlink(missing_ok=True)
        if made:
            with contextlib.suppress(OSError):
                Path(out).rmdir()  # only when empty
        raise


__all__ = ["IDENTITY_FILE", "claim_results_dir", "holds_results", "released_on_failure", "run_identity"]
