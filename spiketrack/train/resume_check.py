"""What ``--resume`` may change: a resumed run continues the config it started with.

Resuming with other settings would silently mix two experiments in one run folder (and overwrite its
``config.yaml``), so :func:`check_resume_config` compares the new config with the run folder's ``config.yaml``
and refuses, naming every differing key. Keys in :data:`SAFE_ON_RESUME` only extend the run or change how it
is logged and loaded, never what one optimiser step computes, and may change; so may the options of a section
switched off in both configs (``distill.fourier.mode`` while ``distill.fourier.enabled`` is false). ``allow_change=True``
(``--resume-changed-config``) accepts any change, on the user's responsibility.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spiketrack.config import ExperimentConfig, from_dict, load_yaml, to_dict, upgrade_stored_config
from spiketrack.errors import ConfigError

# train.epochs: train longer (the schedule is rebuilt for the new length); the rest: logging, checkpoint
# cadence and retention, data-loading workers and memory, the output folder.
SAFE_ON_RESUME = frozenset(
    {"train.epochs", "train.log_every", "train.save_every", "train.keep_last", "train.out_dir",
     "train.preload_mb", "data.num_workers"}
)


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: data}


def _off_in_both(key: str, a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether ``key`` is a setting of a section switched off (``<section>.enabled`` false) in both configs: a
    disabled loss term's options (``distill.fourier.mode``) change nothing a step computes."""
    section = key.rpartition(".")[0]
    flag = f"{section}.enabled"
    return bool(section) and key != flag and a.get(flag) is False and b.get(flag) is False


def config_differences(before: ExperimentConfig, now: ExperimentConfig) -> list[str]:
    """Dotted keys whose values differ, sorted."""
    a, b = _flat(to_dict(before)), _flat(to_dict(now))
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def check_resume_config(run_dir: str | Path, cfg: ExperimentConfig, allow_change: bool = False) -> None:
    """ConfigError naming the differing keys when ``cfg`` differs from ``run_dir/config.yaml`` beyond
    :data:`SAFE_ON_RESUME` (nothing to check when the folder has no config.yaml)."""
    path = Path(run_dir) / "config.yaml"
    if allow_change or not path.is_file():
        return
    try:  # the run's own dump: an earlier spiketrack's layout is upgraded, not refused
        before = from_dict(ExperimentConfig, upgrade_stored_config(load_yaml(path)), source=str(path))
    except ConfigError as exc:
        raise ConfigError(
            f"{path}: the run's config cannot be read ({exc}); pass --resume-changed-config to resume anyway"
        ) from None
    a, b = _flat(to_dict(before)), _flat(to_dict(cfg))
    diff = [k for k in config_differences(before, cfg) if k not in SAFE_ON_RESUME and not _off_in_both(k, a, b)]
    if diff:
        listed = "; ".join(f"{k}: run {a.get(k)!r}, now {b.get(k)!r}" for k in diff[:8])
        more = f" (+{len(diff) - 8} more)" if len(diff) > 8 else ""
        raise ConfigError(
            f"{path}: --resume with a changed config ({listed}{more}). Resume with the run's config "
            f"(only {', '.join(sorted(SAFE_ON_RESUME))} may change), start a new run with --out, or pass "
            "--resume-changed-config to continue with the new settings"
        )


__all__ = ["SAFE_ON_RESUME", "check_resume_config", "config_differences"]
