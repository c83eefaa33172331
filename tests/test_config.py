from pathlib import Path

import pytest

from spiketrack.config import ExperimentConfig, dump_config, load_config, parse_override
from spiketrack.errors import ConfigError


def test_defaults_and_yaml_override(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("name: demo\ntrain:\n  epochs: 3\n  lr: 1\nmodel:\n  neuron:\n    levels: 4\n")
    cfg = load_config(path)
    assert isinstance(cfg, ExperimentConfig)
    assert cfg.name == "demo" and cfg.train.epochs == 3
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)  # ints are accepted for floats
    assert cfg.model.neuron.levels == 4
    assert cfg.train.batch_size == ExperimentConfig().train.batch_size


def test_unknown_key_names_key_and_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match=r"c\.yaml.*'train\.epoch'"):
        load_config(path)


def test_wrong_type_names_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: three\n")
    with pytest.raises(ConfigError, match=r"'train\.epochs'.*integer"):
        load_config(path)
    path.write_text("train:\n  amp: 1\n")
    with pytest.raises(ConfigError, match=r"'train\.amp'.*true or false"):
        load_config(path)
    path.write_text("model:\n  kind: teachr\n")
    with pytest.raises(ConfigError, match=r"'model\.kind'.*one of"):
        load_config(path)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="not found: /no/such.yaml"):
        load_config("/no/such.yaml")


def test_overrides_any_key() -> None:
    cfg = load_config(None, ["train.epochs=7", "data.datasets=[{root: a, weight: 2}]", "model.pretrained=null",
                             "distill.fourier.enabled=true", "model.overrides={depth: 2}"])
    assert cfg.train.epochs == 7
    assert cfg.data.datasets[0].root == "a" and cfg.data.datasets[0].weight == 2.0
    assert cfg.model.pretrained is None
    assert cfg.distill.fourier.enabled is True
    assert cfg.model.overrides == {"depth": 2}
    with pytest.raises(ConfigError, match="'train.nope'"):
        load_config(None, ["train.nope=1"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("train.epochs")


def test_dump_roundtrip(tmp_path: Path) -> None:
    cfg = load_config(None, ["train.epochs=5", "tracking.asr=false"])
    dump_config(cfg, tmp_path / "out.yaml")
    assert load_config(tmp_path / "out.yaml") == cfg


def test_shipped_configs_load() -> None:
    root = Path(__file__).resolve().parents[1] / "configs"
    files = sorted(root.glob("*.yaml"))
    for path in files:
        load_config(path)


def test_yaml_numbers_follow_yaml_1_2(tmp_path: Path) -> None:
    # YAML 1.1 (PyYAML's default) reads 10:10 as the sexagesimal 610 and 1e-3 as a string
    key, value = parse_override("x=10:10")
    assert value == "10:10"
    assert parse_override("x=1e-3")[1] == 0.001
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 1e-3\n")
    assert load_config(path).train.lr == 0.001


def test_removed_data_timesteps_points_to_model_timesteps(tmp_path: Path) -> None:
    p = tmp_path / "old.yaml"
    p.write_text("data:\n  timesteps: 2\nmodel:\n  timesteps: 2\n")
    with pytest.raises(ConfigError, match=r"old.yaml.*'data.timesteps' was removed.*'model.timesteps'"):
        load_config(p)
    with pytest.raises(ConfigError, match="model.timesteps"):
        load_config(None, ["data.timesteps=4"])
    assert not hasattr(load_config(None).data, "timesteps")
