"""The installed commands: every one declared in pyproject.toml is a run/ script's program."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]


def test_every_command_has_a_run_script_that_wraps_the_same_program() -> None:
    assert {"imdm-cotrain", "imdm-generate", "imdm-mix", "imdm-recognize", "imdm-render", "imdm-convert",
            "imdm-evaluate"} <= set(SCRIPTS)
    for command, target in SCRIPTS.items():
        module_name, function = target.split(":")
        script = REPO / "run" / f"{module_name.rsplit('.', 1)[1]}.py"
        assert script.is_file(), command
        assert f"from {module_name} import main" in script.read_text(), command
        assert callable(getattr(importlib.import_module(module_name), function)), command


@pytest.mark.parametrize("command", sorted(SCRIPTS))
def test_every_command_prints_its_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    module = importlib.import_module(SCRIPTS[command].split(":")[0])
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0 and "usage:" in capsys.readouterr().out
