"""The documents stay true to the code: the options reference is current, commands in the docs use
flags and settings that exist, the results read by task, and nothing points outside the repository."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from imdm.models.recognizer import RecognizerConfig
from imdm.training.cotrain import CoTrainConfig
from mdm.cli import dotted_override, parse_key_value
from mdm.config import merge
from mdm.errors import ConfigError
from mdm.evaluation.train import EvaluatorTrainConfig
from mdm.models.denoiser import DenoiserConfig
from mdm.training.mdm_trainer import MDMTrainConfig

REPO = Path(__file__).resolve().parents[1]
GUIDES = ("README.md", "CONTRIBUTING.md", "docs/architecture.md", "datasets/README.md", "benchmarks/README.md")
"""Documents whose commands must run as written (their flags are parsed here)."""
RESULTS = REPO / "docs" / "results.md"
REMOVED_SECTION = "## Options removed after their measurement"
"""The part of the results whose commands ran at an older commit, on options since removed."""
SETTINGS = {"mdm_imdm_cotrain.py": CoTrainConfig, "mdm_imdm_cotrain_with_mix_dataset.py": CoTrainConfig,
            "train_ensemble.py": CoTrainConfig, "zero_shot.py": CoTrainConfig,
            "mdm_train.py": MDMTrainConfig, "train_evaluator.py": EvaluatorTrainConfig}
"""The config class whose keys a script's ``--set`` takes."""
COMMAND = re.compile(r"python3? ((?:run|benchmarks)/[\w/]+\.py)([^`|\n]*)")


class Parsed(Exception):
    """Raised in place of running a script once its flags are parsed."""

    def __init__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace | None) -> None:
        super().__init__()
        self.parser, self.namespace = parser, namespace


def commands(text: str) -> list[tuple[str, list[str]]]:
    """``(script, arguments)`` of every ``python run/...`` or ``python benchmarks/...`` command in ``text``
    (continued lines joined; optional ``[--flag ...]`` parts taken as given)."""
    found = []
    for script, rest in COMMAND.findall(re.sub(r"\\\n\s*", " ", text)):
        rest = re.split(r"\s(?:#|&&|>|;)", rest)[0]
        found.append((script, [a.strip("[]") for a in shlex.split(rest) if a not in ("...", "[", "]")]))
    return found


def load_script(script: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script as a module (registered, as dataclasses defined in it need)."""
    spec = importlib.util.spec_from_file_location(f"doc_{Path(script).stem}", REPO / script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def parse(script: str, argv: list[str], monkeypatch: pytest.MonkeyPatch, *, check_values: bool) -> Parsed:
    """The script's parser and (with ``check_values``) its parsed flags, without running the script."""
    original = argparse.ArgumentParser.parse_args

    def parse_only(parser: argparse.ArgumentParser, args: list[str] | None = None, namespace: object = None) -> None:
        raise Parsed(parser, original(parser, args, namespace) if check_values else None)

    with monkeypatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", parse_only)
        patch.chdir(REPO)
        patch.syspath_prepend(str(REPO))
        with pytest.raises(Parsed) as parsed:
            load_script(script, patch).main(argv)
    return parsed.value


def check_settings(script: str, argv: list[str]) -> None:
    """Every ``--set KEY=VALUE`` of ``argv`` names a setting of the script's config (ConfigError if not)."""
    config_class = SETTINGS.get(Path(script).name)
    if config_class is None:
        return
    for flag, value in zip(argv, argv[1:]):
        if flag != "--set":
            continue
        key, parsed = parse_key_value(value, "--set")
        section, _, field = key.rpartition(".")
        if section in ("recognizer.overrides", "generator.overrides", "denoiser_overrides", "model_overrides"):
            model = RecognizerConfig if section == "recognizer.overrides" else DenoiserConfig
            if field not in {f.name for f in dataclasses.fields(model)}:
                raise ConfigError(f"{script}: --set {key}: no such architecture field")
            continue
        merge(config_class(), dotted_override(key, parsed), f"{script} --set")


@pytest.mark.parametrize("document", GUIDES)
def test_commands_in_the_guides_parse_as_written(document: str, monkeypatch: pytest.MonkeyPatch) -> None:
    found = commands((REPO / document).read_text())
    assert found or document == "CONTRIBUTING.md"
    for script, argv in found:
        assert (REPO / script).is_file(), f"{document}: {script} does not exist"
        parse(script, argv, monkeypatch, check_values=True)
        check_settings(script, argv)


def test_commands_in_the_results_use_flags_and_settings_that_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    text = RESULTS.read_text().split(REMOVED_SECTION)[0]
    for script, argv in commands(text):
        assert (REPO / script).is_file(), f"results: {script} does not exist"
        parser = parse(script, [], monkeypatch, check_values=False).parser
        for flag in (a.split("=")[0] for a in argv if a.startswith("--")):
            assert flag in parser._option_string_actions, f"results: {script} has no flag {flag}"
        check_settings(script, argv)


def test_the_config_reference_is_current() -> None:
    result = subprocess.run([sys.executable, "run/make_config_reference.py", "--check"], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_results_open_with_findings_and_read_by_task() -> None:
    text = RESULTS.read_text()
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    assert headings[0] == "Findings" and REMOVED_SECTION[3:] in headings
    assert not re.search(r"\b(session|issue)s?\b", text, flags=re.I), "results name work periods or issues"


def test_nothing_points_outside_the_repository() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    outside = re.compile("|".join(("DESIGN" + r"\.md", "PROTOCOL" + r"\.md", "DATA_FORMAT" + r"\.md",
                                   r"\.\./" + "shared", "shared/" + "data")))
    offenders = [name for name in tracked if name.endswith((".py", ".md", ".yaml", ".toml"))
                 and outside.search((REPO / name).read_text(errors="replace"))]
    assert not offenders


def readme_section(title: str) -> str:
    """The text of one ``### title`` section of the README."""
    text = (REPO / "README.md").read_text()
    start = text.index(f"### {title}\n")
    end = text.find("\n## ", start)
    following = text.find("\n### ", start + 1)
    return text[start:min(i for i in (end, following) if i != -1)]


@pytest.mark.slow
def test_the_readme_recipes_on_the_procedural_data_run_at_the_tiny_preset(tmp_path: Path) -> None:
    """The README's recipes that need no downloaded data, run as written from a fresh folder, training
    scripts at the tiny preset for three epochs."""
    (tmp_path / "datasets").symlink_to(REPO / "datasets")  # the built-in data's cache, as in a checkout

    def run(script: str, argv: list[str]) -> None:
        if Path(script).name in SETTINGS:
            argv = argv + ["--preset", "tiny", "--set", "epochs=3"]
        if Path(script).name == "mdm_guided_generation.py":  # a 3-epoch tiny recognizer is confident of no clip
            argv = argv + ["--min-confidence", "0"]
        result = subprocess.run([sys.executable, str(REPO / script), *argv], cwd=tmp_path, capture_output=True,
                                text=True)
        assert result.returncode == 0, f"{script} {' '.join(argv)}\n{result.stderr[-3000:]}"

    run("run/mdm_imdm_cotrain.py", ["--output-dir", "outputs/mdm_imdm_cotrain/procedural-cpu-seed0",
                                    "--set", "render_samples=false"])
    for title in ("Recognize clips", "Stream ensembles", "Generate, render, evaluate", "Retrain with synthetic clips"):
        found = commands(readme_section(title))
        assert found, title
        for script, argv in found:
            run(script, argv)
    assert (tmp_path / "outputs/samples.mp4").stat().st_size > 0
    mixed = sorted((tmp_path / "outputs").glob("mdm_imdm_cotrain_with_mix_dataset/*/metrics.json"))
    assert len(mixed) == 2
    assert (tmp_path / "outputs/train_ensemble/procedural-cpu-seed0/ensemble.yaml").is_file()
