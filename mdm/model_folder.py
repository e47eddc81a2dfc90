"""Trained models saved as folders: safetensors weights beside a YAML spec.

The recognizer, the generator and the evaluator each save themselves this way, so a folder can
be loaded without the training config, and a run folder holding the model's subfolder can be
passed in its place.
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


def read_model_folder(directory: str | Path, subfolder: str, spec_class: type[SpecT], spec_file: str,
                      written_by: str) -> tuple[Path, SpecT]:
    """The model folder (``directory`` or ``directory/subfolder``) and its spec.

    Raises:
        UserError: neither holds ``spec_file``; the message names the script that writes such folders.
    """
    directory = Path(directory)
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
