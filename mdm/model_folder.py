"""Trained models saved as folders: safetensors weights beside a YAML spec, and a model card.

The recognizer, the generator and the evaluator each save themselves this way, so a folder can
be loaded without the training config, and a run folder holding the model's subfolder can be
passed in its place. A name written ``hf:owner/name`` is a Hugging Face Hub repository holding such
a folder, fetched into the Hub's cache (:func:`model_folder`): only when named so, and never with
``HF_HUB_OFFLINE=1`` (then only the cache is read).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from mdm.config import from_dict, to_dict
from mdm.errors import DataFormatError, UserError

SpecT = TypeVar("SpecT")


def cpu_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state as contiguous CPU tensors, shared storage cloned (as safetensors needs)."""
    return {name: tensor.detach().to("cpu").contiguous().clone() for name, tensor in model.state_dict().items()}


def save_model_folder(directory: str | Path, spec: Any, spec_file: str, modules: dict[str, nn.Module]) -> Path:
    """Write ``spec`` (a dataclass) as YAML and each module's weights to ``directory/<file name>``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for file_name, module in modules.items():
        save_file(cpu_state_dict(module), str(directory / file_name))
    (directory / spec_file).write_text(yaml.safe_dump(to_dict(spec), sort_keys=False))
    return directory


HUB_PREFIX = "hf:"


def model_folder(name: str | Path) -> Path:
    """The local folder ``name``, or for ``hf:owner/name`` the Hub repository's files (downloaded once, cached).

    Raises:
        UserError: a Hub repository that could not be fetched (offline and not cached included).
    """
    if not str(name).startswith(HUB_PREFIX):
        return Path(name)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    repo_id = str(name)[len(HUB_PREFIX):]
    try:
        return Path(snapshot_download(repo_id=repo_id))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as error:
        raise UserError(f"{name}: not fetched from the Hugging Face Hub "
                        f"({type(error).__name__}: {str(error).splitlines()[0]})") from None


def read_model_folder(directory: str | Path, subfolder: str, spec_class: type[SpecT], spec_file: str,
                      written_by: str) -> tuple[Path, SpecT]:
    """The model folder (``directory``, ``directory/subfolder``, or a Hub repository holding either) and its spec.

    Raises:
        UserError: neither holds ``spec_file``; the message names the script that writes such folders.
    """
    directory = model_folder(directory)
    if (directory / subfolder).is_dir():
        directory = directory / subfolder
    path = directory / spec_file
    if not path.is_file():
        article = "an" if subfolder[0] in "aeiou" else "a"
        raise UserError(f"{directory}: not {article} {subfolder} folder (no {spec_file}); pass a run folder written by "
                        f"{written_by}")
    return directory, from_dict(spec_class, yaml.safe_load(path.read_text()), where=str(path))


def read_safetensors(file: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; a truncated or damaged file is a DataFormatError naming it."""
    try:
        return load_file(str(file))
    except (SafetensorError, OSError) as error:
        raise DataFormatError(file, f"not a readable safetensors file (truncated or damaged?): {error}") from None


def load_module_weights(module: nn.Module, file: Path) -> None:
    """Load a safetensors file into ``module``; a damaged file or weights of another architecture are a UserError."""
    if not file.is_file():
        raise UserError(f"{file}: missing from the model folder")
    weights = read_safetensors(file)
    try:
        module.load_state_dict(weights)
    except RuntimeError as error:
        raise UserError(f"{file}: the weights do not fit this version's model (written by an older version?): "
                        f"{str(error).splitlines()[0]}") from None


def write_model_card(directory: str | Path, title: str, facts: dict[str, str], usage: list[str]) -> Path:
    """Write ``directory/README.md``: a model card with ``title``, a table of ``facts`` (what it was trained
    on, how well it does) and ``usage`` commands."""
    lines = [f"# {title}", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in facts.items()]
    lines += ["", "Use:", "", "```", *usage, "```", ""]
    path = Path(directory) / "README.md"
    path.write_text("\n".join(lines))
    return path

