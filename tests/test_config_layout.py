"""The loss sections of the config: one section per term, moved flat keys name their new key, presets, and the
upgrade of configs stored by earlier versions (checkpoints, run folders)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from spiketrack.cli import main
from spiketrack.config import (
    DISTILL_PRESETS,
    MOVED_KEYS,
    ExperimentConfig,
    dump_config,
    from_dict,
    load_config,
    to_dict,
    upgrade_stored_config,
)
from spiketrack.errors import CheckpointError, ConfigError
from spiketrack.models.checkpoint import checkpoint_config
from spiketrack.train.resume_check import check_resume_config

# the distill and train.loss sections as an earlier spiketrack dumped them (flat options, weights as numbers)
OLD_DISTILL = {
    "similarity": {"enabled": True, "weight": 1.0},
    "feature": {"enabled": True, "weight": 2.0},
    "feature_layers": [1, -1],
    "response": {"enabled": True, "weight": 1.0},
    "fourier": {"enabled": True, "weight": 1.0},
    "temperature": 1.5,
    "similarity_source": "attentions",
    "layer_pairing": "relative_depth",
    "spatial_align": "ot",
    "ot_cost": "position",
    "ot_epsilon": 0.05,
    "ot_iters": 20,
    "temporal": {"enabled": True, "weight": 0.5},
    "temporal_layer": 0,
    "fourier_mode": "amplitude",
    "correlation": {"enabled": False, "weight": 1.0},
}
OLD_LOSS = {"focal": 1.0, "giou": 2.0, "l1": 5.0, "box_at": "target", "template_swap": 0.0}


@pytest.mark.parametrize("old", sorted(MOVED_KEYS))
def test_each_moved_flat_key_names_its_new_key(tmp_path: Path, old: str) -> None:
    section, name = old.split(".")
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump({section: {name: OLD_DISTILL[name]}}))
    new = MOVED_KEYS[old]
    with pytest.raises(ConfigError, match=rf"old\.yaml: key '{old}' moved .*'{new[0]}'"):
        load_config(path)
    with pytest.raises(ConfigError, match=rf"--set {old}=.*'{new[0]}'"):
        load_config(None, [f"{old}={OLD_DISTILL[name]}"])


def test_a_loss_weight_given_as_a_number_names_the_weight_key(tmp_path: Path) -> None:
    path = tmp_path / "old.yaml"
    path.write_text("train:\n  loss:\n    template_swap: 0.5\n")
    with pytest.raises(ConfigError, match=r"'train\.loss\.template_swap'.*set 'train\.loss\.template_swap\.weight'"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"set 'distill\.feature\.weight'"):
        load_config(None, ["distill.feature=2.0"])


def test_the_cli_refuses_an_old_key_in_one_line_with_exit_code_2(tmp_path: Path, capsys) -> None:
    path = tmp_path / "old.yaml"
    path.write_text("distill:\n  fourier_mode: hdetrack_v2\n")
    assert main(["train", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'distill.fourier.mode'" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_sections_nest_the_options_of_their_term(tmp_path: Path) -> None:
    path = tmp_path / "new.yaml"
    path.write_text(
        "distill:\n  feature: {layers: [1], align: ot, ot_epsilon: 0.05}\n  fourier: {enabled: true, mode: amplitude}\n"
        "train:\n  loss:\n    giou: {weight: 3.0}\n    template_swap: {enabled: true}\n"
    )
    cfg = load_config(path)
    assert (cfg.distill.feature.layers, cfg.distill.feature.align, cfg.distill.feature.ot_epsilon) == ([1], "ot", 0.05)
    assert cfg.distill.similarity.layers == [-1]  # each term keeps its own layers
    assert cfg.distill.fourier.enabled and cfg.distill.fourier.mode == "amplitude"
    assert (cfg.train.loss.giou.weight, cfg.train.loss.giou.enabled, cfg.train.loss.l1.weight) == (3.0, True, 5.0)
    assert cfg.train.loss.template_swap.enabled and cfg.train.loss.template_swap.weight == 1.0
    dump_config(cfg, tmp_path / "dump.yaml")
    assert load_config(tmp_path / "dump.yaml") == cfg


def test_a_preset_sets_its_terms_and_the_files_own_keys_win(tmp_path: Path) -> None:
    cfg = load_config(None, ["distill.preset=hdetrack"])
    d = cfg.distill
    assert (d.similarity.weight, d.similarity.source, d.similarity.distance) == (0.7, "attentions", "row_l2")
    assert (d.feature.weight, d.feature.projection) == (1.0, False)
    assert (d.response.weight, d.response.loss, d.response.temperature) == (0.7, "focal", 2.0)
    assert not (d.fourier.enabled or d.temporal.enabled or d.correlation.enabled)
    path = tmp_path / "c.yaml"
    path.write_text("distill:\n  preset: hdetrack\n  response: {weight: 0.5}\n  temporal: {enabled: true}\n")
    mixed = load_config(path).distill
    assert (mixed.response.weight, mixed.response.loss, mixed.temporal.enabled) == (0.5, "focal", True)
    # a dump holds the preset and every value it set: it loads back to the same config
    dump_config(load_config(path), tmp_path / "dump.yaml")
    assert load_config(tmp_path / "dump.yaml") == load_config(path)
    with pytest.raises(ConfigError, match=r"'distill\.preset'.*\['hdetrack'\].*'hdetrak'"):
        load_config(None, ["distill.preset=hdetrak"])
    assert set(DISTILL_PRESETS) == {"hdetrack"}


def test_configs_stored_by_an_earlier_version_are_upgraded_not_refused(tmp_path: Path) -> None:
    stored = to_dict(ExperimentConfig())
    stored["distill"], stored["train"]["loss"] = dict(OLD_DISTILL), dict(OLD_LOSS)
    cfg = from_dict(ExperimentConfig, upgrade_stored_config(stored))
    d = cfg.distill
    assert d.feature.layers == [1, -1] and d.similarity.layers == [1, -1]
    assert (d.response.temperature, d.fourier.temperature) == (1.5, 1.5)
    assert (d.similarity.source, d.layer_pairing, d.feature.align, d.feature.ot_cost) == (
        "attentions", "relative_depth", "ot", "position")
    assert (d.feature.ot_epsilon, d.feature.ot_iters, d.feature.weight) == (0.05, 20, 2.0)
    assert (d.temporal.layer, d.temporal.weight) == (0, 0.5)
    assert d.fourier.mode == "amplitude"  # an old run keeps its mode (today's default is hdetrack_v2)
    loss = cfg.train.loss
    assert (loss.focal.weight, loss.giou.weight, loss.l1.weight, loss.box_at) == (1.0, 2.0, 5.0, "target")
    assert not loss.template_swap.enabled  # weight 0 meant off
    stored["train"]["loss"]["template_swap"] = 0.25
    swap = from_dict(ExperimentConfig, upgrade_stored_config(stored)).train.loss.template_swap
    assert swap.enabled and swap.weight == 0.25
    # today's layout passes unchanged
    assert upgrade_stored_config(to_dict(cfg)) == to_dict(cfg)
    # a checkpoint of an earlier version rebuilds its config; its run folder resumes with the upgraded config
    assert checkpoint_config({"config": stored}) == from_dict(ExperimentConfig, upgrade_stored_config(stored))
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(stored))
    check_resume_config(run, checkpoint_config({"config": stored}))
    with pytest.raises(ConfigError, match=r"--resume with a changed config.*distill\.feature\.align"):
        check_resume_config(run, load_config(None))  # today's defaults differ from the old run's settings
    # a run whose Fourier term was off resumes under today's default mode (a disabled term's options change nothing)
    quiet = to_dict(load_config(None))
    quiet["distill"] = {k: v for k, v in OLD_DISTILL.items() if k not in ("feature_layers", "similarity_source",
                        "spatial_align", "ot_cost", "ot_epsilon", "ot_iters", "temperature", "layer_pairing",
                        "temporal", "temporal_layer")} | {"fourier": {"enabled": False, "weight": 1.0},
                                                          "feature": {"enabled": True, "weight": 1.0}}
    quiet["train"]["loss"] = {**OLD_LOSS, "box_at": "argmax"}
    (run / "config.yaml").write_text(yaml.safe_dump(quiet))
    assert upgrade_stored_config(quiet)["distill"]["fourier"]["mode"] == "amplitude"
    check_resume_config(run, load_config(None))
    with pytest.raises(ConfigError, match=r"distill\.fourier\.enabled"):
        check_resume_config(run, load_config(None, ["distill.fourier.enabled=true", "data.num_search=2"]))
    with pytest.raises(CheckpointError, match="stored config"):
        checkpoint_config({"config": {"distill": {"nope": 1}}})
