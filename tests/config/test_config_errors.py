"""A wrong key, type or value fails at load with the key path, the value and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from podium.config import ConfigError, apply_overrides, load_config


def _error(raw: dict, overrides: list[str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(raw=raw, overrides=overrides)
    return str(info.value)


def test_valid_config_loads(tiny_config):
    config = load_config(raw=tiny_config)
    assert config.heads["mask"].classes == 3
    assert config.model.encoder_weights is None


@pytest.mark.parametrize(
    ("override", "expect"),
    [
        ("trainer.max_epoch=3", ["trainer.max_epoch", "unknown key", "max_epochs"]),
        ("trainer.max_epochs=zero", ["trainer.max_epochs", "'zero'"]),
        ("trainer.max_epochs=0", ["trainer.max_epochs", "greater than or equal to 1"]),
        ("trainer.monitor_mode=maximum", ["trainer.monitor_mode", "'min' or 'max'", "'maximum'"]),
        ("model.arch=Unett", ["model.arch", "'Unet'", "Valid:"]),
        ("model.encoder_name=resnet19", ["model.encoder_name", "resnet18"]),
        ("heads.mask.activation=relu", ["heads.mask.activation", "softmax", "sigmoid"]),
        ("heads.mask.klasses=3", ["heads.mask.klasses", "classes"]),
        ("data.format=cityscapes", ["data", "folder", "aeroscapes"]),
        ("data.trian={}", ["data.trian", "Allowed", "train"]),
        ("optimizer.name=adamx", ["optimizer", "adamw", "Valid"]),
        ("heads.mask.loss.0.name=dyce", ["heads.mask.loss", "dice"]),
        ("heads.mask.loss.0.smooth_factr=0.1", ["heads.mask.loss", "smooth_factr", "Accepted"]),
        ("heads.mask.metrics=[iou,mIoU]", ["heads.mask.metrics", "'mIoU'", "iou"]),
    ],
)
def test_bad_value_names_path_value_and_choices(tiny_config, override, expect):
    message = _error(tiny_config, [override])
    for fragment in expect:
        assert fragment in message, f"{fragment!r} not in:\n{message}"


def test_bad_augmentation_name_and_argument(tiny_config):
    tiny_config["augmentation"]["train"] = [{"__class_fullname__": "HorizontalFlp", "p": 0.5}]
    assert "HorizontalFlip" in _error(tiny_config)
    tiny_config["augmentation"]["train"] = [{"__class_fullname__": "HorizontalFlip", "pp": 0.5}]
    assert "'pp'" in _error(tiny_config)


def test_normalize_in_augmentation_is_refused(tiny_config):
    tiny_config["augmentation"]["train"] = [{"__class_fullname__": "Normalize"}]
    assert "data.mean" in _error(tiny_config)


def test_overrides_parse_yaml_values_not_code():
    raw = {"a": {"b": 1, "c": [1, 2]}}
    apply_overrides(raw, ["a.b=2.5", "a.c.1=7", "a.d=[x, y]", "a.e=__import__('os')"])
    assert raw == {"a": {"b": 2.5, "c": [1, 7], "d": ["x", "y"], "e": "__import__('os')"}}


def test_missing_file_and_bad_yaml(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_every_shipped_config_validates():
    configs = sorted(Path(__file__).resolve().parents[2].glob("configs/*.yaml"))
    assert configs, "configs/ should ship at least one YAML"
    for path in configs:
        raw = yaml.safe_load(path.read_text())
        load_config(raw=raw)  # raises with the path on any problem


def test_load_config_leaves_the_callers_dict_alone(tiny_config):
    before = yaml.safe_dump(tiny_config)
    load_config(raw=tiny_config, overrides=["trainer.max_epochs=7", "init.freeze_encoder=true"])
    assert yaml.safe_dump(tiny_config) == before
