"""Typed configs: YAML mappings become dataclasses; unknown keys and wrong types are refused."""

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from imdm.training.cotrain import CoTrainConfig
from mdm.cli import parse_key_value
from mdm.config import from_dict, load_yaml, merge, save_yaml, to_dict
from mdm.errors import ConfigError


@dataclass
class Optim:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass
class Run:
    name: str = "run"
    steps: int = 10
    amp: bool = False
    layers: list[int] = field(default_factory=list)
    note: str | None = None
    optim: Optim = field(default_factory=Optim)


def test_nested_values_are_converted() -> None:
    config = from_dict(Run, {"steps": 5, "optim": {"lr": 1, "betas": [0.5, 0.6]}, "layers": [1, 2]})
    assert config.steps == 5 and config.optim.lr == 1.0 and isinstance(config.optim.lr, float)
    assert config.optim.betas == (0.5, 0.6) and config.layers == [1, 2]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"stepz": 5}, "unknown key"),
        ({"optim": {"learning_rate": 1.0}}, r"config\.optim: unknown key"),
        ({"steps": "many"}, "expected an integer"),
        ({"steps": True}, "expected an integer"),
        ({"amp": "yes"}, "expected true or false"),
        ({"optim": 3}, "expected a mapping"),
        ({"optim": {"lr": "fast"}}, "expected a number"),
        ({"optim": {"lr": "1e-"}}, "expected a number"),
    ],
)
def test_bad_values_are_refused_with_their_key(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_dict(Run, values)


def test_exponent_numbers_that_yaml_1_1_reads_as_strings_are_floats(tmp_path: Path) -> None:
    (tmp_path / "run.yaml").write_text("name: '1e-4'\noptim: {lr: 2e-3, betas: [9e-1, 1E+0]}\n")
    config = from_dict(Run, load_yaml(tmp_path / "run.yaml"))
    assert config.optim.lr == 0.002 and config.optim.betas == (0.9, 1.0)
    assert config.name == "1e-4"  # quoted: a string field keeps the text
    # Untyped settings (e.g. recognizer.overrides) get the number too; words stay words.
    assert parse_key_value("recognizer.overrides.dropout=1e-1", "--set") == ("recognizer.overrides.dropout", 0.1)
    assert parse_key_value("tag=e5", "--set") == ("tag", "e5")
    key, value = parse_key_value("optim.lr=5e-4", "--set")
    assert merge(Run(), {"optim": {"lr": value}}).optim.lr == 0.0005


def test_merge_overrides_only_named_keys_and_yaml_round_trips(tmp_path: Path) -> None:
    base = Run(name="a", optim=Optim(lr=0.1))
    merged = merge(base, {"optim": {"betas": [0.1, 0.2]}})
    assert merged.optim.lr == 0.1 and merged.optim.betas == (0.1, 0.2) and merged.name == "a"
    save_yaml(merged, tmp_path / "run.yaml")
    assert from_dict(Run, load_yaml(tmp_path / "run.yaml")) == merged
    assert to_dict(merged)["optim"]["betas"] == [0.1, 0.2]


def test_load_yaml_refuses_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_yaml(tmp_path / "list.yaml")


def test_merge_leaves_the_base_config_untouched() -> None:
    base = merge(CoTrainConfig(), {"recognizer": {"overrides": {"joint_stages": 2}}})
    merged = merge(base, {"recognizer": {"overrides": {"streams": ["bone"]}}})
    assert merged.recognizer.overrides == {"joint_stages": 2, "streams": ["bone"]}
    assert base.recognizer.overrides == {"joint_stages": 2}
