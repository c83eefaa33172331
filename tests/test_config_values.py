"""Every config value is checked when the config is read (issue 30): type, range, allowed set, booleans.

The walk below derives bad values for every key from its annotation (type + :class:`spiketrack.config.Check`),
so a key added to any section, nested ones included, is walked too. Each bad value goes through the CLI
(``spiketrack train``, which would create a run folder): exit code 2, one line naming the key and where it came
from, no traceback, nothing written.
"""

from __future__ import annotations

import dataclasses
import math
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import pytest

from spiketrack.cli import main
from spiketrack.config import Check, ExperimentConfig, field_checks, from_dict, load_config, to_dict
from spiketrack.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "quickstart_student.yaml"
# sections whose value checks live with their feature (test-time tuning validates its own keys): walked for
# types only, not required to declare ranges here
RANGE_EXEMPT_SECTIONS = ("tracking.ttt.",)


def _leaves(cls: type, prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted key, annotation with its Check metadata) of every non-section field of dataclass ``cls``."""
    hints = get_type_hints(cls, include_extras=True)
    out: list[tuple[str, Any]] = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        base, _ = field_checks(tp)
        if dataclasses.is_dataclass(base):
            out += _leaves(base, f"{prefix}{f.name}.")
        else:
            out.append((f"{prefix}{f.name}", tp))
    return out


def _optional_inner(tp: Any) -> Any:
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _out_of_range(check: Check, integer: bool) -> list[str]:
    step = 1 if integer else 0.5
    values = []
    for bound, delta in ((check.ge, -step), (check.gt, 0), (check.le, step), (check.lt, 0)):
        if bound is not None:
            v = bound + delta
            v = int(v) if integer and float(v).is_integer() else v
            if v not in check.also and check.problem(v) is not None:
                values.append(str(v))
    return values


def bad_values(tp: Any) -> list[str]:
    """YAML texts that the annotation ``tp`` must refuse."""
    tp = _optional_inner(tp)
    base, checks = field_checks(tp)
    if get_origin(base) is Literal:
        return ["not-a-choice", "3"]
    if base is bool:
        return ["yes", "3", ".nan", "'true'"]
    if base is int:
        out = ["x", "1.5", "true", "[1]"]
        for c in checks:
            out += _out_of_range(c, integer=True)
        return out
    if base is float:
        out = ["x", ".nan", ".inf", "true"]
        for c in checks:
            out += _out_of_range(c, integer=False)
        return out
    if base is str:
        return ["5", "[a]"] + (["''"] if any(c.non_empty for c in checks) else [])
    if get_origin(base) is list:
        (item,) = get_args(base)
        out = ["x", "{a: 1}"] + (["[]"] if any(c.min_items for c in checks) else [])
        item_base, _ = field_checks(item)
        if dataclasses.is_dataclass(item_base):
            for key, sub in _leaves(item_base):
                out += [f"[{{{key}: {v}}}]" for v in bad_values(sub)[:2]]
        else:
            out += [f"[{v}]" for v in bad_values(item)[:2]]
        return out
    if get_origin(base) is dict:
        return ["x", "[1, 2]"]
    raise AssertionError(f"no bad values for {tp!r}")  # a new kind of field: teach this walk about it


CASES = [(key, value) for key, tp in _leaves(ExperimentConfig) for value in bad_values(tp)]


def test_the_walk_covers_every_key_and_nested_sections() -> None:
    keys = {k for k, _ in CASES}
    assert {"name", "train.epochs", "model.neuron.tau", "distill.fourier.weight", "tracking.ttt.lr",
            "train.loss.box_at", "data.datasets", "energy.memory"} <= keys
    assert len(keys) == len(_leaves(ExperimentConfig))


def test_every_number_declares_its_range() -> None:
    missing = []
    for key, tp in _leaves(ExperimentConfig):
        inner = _optional_inner(tp)
        base, checks = field_checks(inner)
        if get_origin(base) is list:
            base, checks = field_checks(get_args(base)[0])
        if base in (int, float) and not checks and not key.startswith(RANGE_EXEMPT_SECTIONS):
            missing.append(key)
    assert not missing, f"number keys without a Check (add Annotated[..., Check(...)] in config.py): {missing}"


def test_defaults_pass_their_own_checks() -> None:
    assert from_dict(ExperimentConfig, to_dict(ExperimentConfig())) == ExperimentConfig()


@pytest.mark.parametrize("key, value", CASES, ids=[f"{k}={v}" for k, v in CASES])
def test_bad_value_is_one_line_and_nothing_is_written(tmp_path, capsys, key, value) -> None:
    out = tmp_path / "run"
    rc = main(["train", str(CONFIG), "--set", f"{key}={value}", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f"--set {key}={value}" in lines[0] and "error" in lines[0], lines[0]
    assert f"key '{key}" in lines[0], lines[0]
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("key, value", [("train.epochs", "0"), ("model.neuron.tau", "0.5"), ("train.amp", "yes"),
                                        ("tracking.asr_m", "-3"), ("distill.response.temperature", "0")])
def test_bad_value_in_a_file_names_the_file(tmp_path, key, value) -> None:
    *sections, leaf = key.split(".")
    text = "".join(f"{'  ' * i}{s}:\n" for i, s in enumerate(sections)) + f"{'  ' * len(sections)}{leaf}: {value}\n"
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and f"'{key}'" in str(info.value)


def test_yaml_booleans_are_true_and_false_only() -> None:
    cfg = load_config(None, ["train.amp=false", "tracking.asr=True", "name=yes"])
    assert cfg.train.amp is False and cfg.tracking.asr is True and cfg.name == "yes"  # 'yes' is a string


def test_range_messages_say_what_is_allowed() -> None:
    with pytest.raises(ConfigError, match=r"'tracking.max_scale_change': expected a value >= 1 or 0, got 0.5"):
        load_config(None, ["tracking.max_scale_change=0.5"])
    with pytest.raises(ConfigError, match=r"'model.template_timesteps': expected a value >= 1 \(or null\), got 0"):
        load_config(None, ["model.template_timesteps=0"])
    with pytest.raises(ConfigError, match=r"'data.negative_prob': expected a value in \[0, 1\], got 1.5"):
        load_config(None, ["data.negative_prob=1.5"])
    assert math.isclose(load_config(None, ["data.negative_prob=1"]).data.negative_prob, 1.0)
