"""Checkpoints that resume exactly: weights (safetensors), optimizer, LR scheduler, EMA, step,
RNG states and the resolved config, written atomically.

Layout of a checkpoint folder (``<run>/checkpoints/step_000123/``)::

    model_<name>.safetensors      weights of each model
    ema_<name>.safetensors        EMA weights of each model that has one
    training_state.pt             optimizer and LR-scheduler state dicts (tensors only;
                                  loaded with ``weights_only=True``)
    state.json                    step, epoch, EMA update counts, RNG states, extra values
    config.yaml                   the resolved config

The folder is written under a temporary name and renamed when complete, and ``latest`` (a
text file holding the folder name) is replaced atomically, so a stopped run never leaves a
half-written checkpoint behind.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from mdm.config import save_yaml
from mdm.model_folder import cpu_state_dict
from mdm.errors import UserError
from mdm.training.ema import EMA

LATEST = "latest"


def capture_rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU and every CUDA device) RNG states as JSON-friendly values."""
    state: dict[str, Any] = {
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
        "numpy": np.random.get_state(legacy=False),
        "torch": torch.get_rng_state().tolist(),
    }
    state["numpy"]["state"] = {"key": state["numpy"]["state"]["key"].tolist(), "pos": int(state["numpy"]["state"]["pos"])}
    if torch.cuda.is_available():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = dict(state["numpy"])
    numpy_state["state"] = {"key": np.array(numpy_state["state"]["key"], dtype=np.uint32),
                            "pos": numpy_state["state"]["pos"]}
    np.random.set_state(numpy_state)
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


@dataclass
class TrainingState:
    """What a loop needs to restore besides module weights."""

    step: int = 0
    epoch: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(
    directory: str | Path,
    *,
    models: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    schedulers: dict[str, Any],
    emas: dict[str, EMA],
    state: TrainingState,
    config: Any,
    keep_last: int = 2,
) -> Path:
    """Write ``directory/step_<step>/`` atomically, point ``latest`` at it, prune old ones.

    Args:
        directory: the run's checkpoint folder.
        models: unwrapped modules by name (``accelerator.unwrap_model``).
        optimizers, schedulers: by name; schedulers need ``state_dict()``.
        emas: EMA objects by model name.
        state: step, epoch and extra JSON-serialisable values (best metrics, ...).
        config: the resolved dataclass config.
        keep_last: how many ``step_*`` folders to keep (folders named in ``extra['keep']`` are kept too).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"step_{state.step:08d}"
    final = directory / name
    tmp = directory / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for key, model in models.items():
        save_file(cpu_state_dict(model), str(tmp / f"model_{key}.safetensors"))
    for key, ema in emas.items():
        save_file(cpu_state_dict(ema.model), str(tmp / f"ema_{key}.safetensors"))
    torch.save(
        {
            "optimizers": {k: v.state_dict() for k, v in optimizers.items()},
            "schedulers": {k: v.state_dict() for k, v in schedulers.items()},
        },
        tmp / "training_state.pt",
    )
    meta = {
        "step": state.step,
        "epoch": state.epoch,
        "extra": state.extra,
        "ema_updates": {k: ema.num_updates for k, ema in emas.items()},
        "rng": capture_rng_state(),
    }
    (tmp / "state.json").write_text(json.dumps(meta))
    save_yaml(config, tmp / "config.yaml")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    latest_tmp = directory / f".{LATEST}.tmp"
    latest_tmp.write_text(name)
    os.replace(latest_tmp, directory / LATEST)
    old = sorted(p for p in directory.glob("step_*") if p.is_dir())
    for path in old[:-keep_last] if keep_last > 0 else []:
        shutil.rmtree(path, ignore_errors=True)
    return final


def latest_checkpoint(directory: str | Path) -> Path:
    """The folder ``latest`` points to; UserError when there is none."""
    directory = Path(directory)
    pointer = directory / LATEST
    if not pointer.is_file():
        raise UserError(f"{directory}: no checkpoint to resume from (no '{LATEST}' file)")
    path = directory / pointer.read_text().strip()
    if not path.is_dir():
        raise UserError(f"{path}: checkpoint folder named by '{LATEST}' is missing")
    return path


def load_weights(path: str | Path, model: nn.Module, name: str, ema: bool = False) -> None:
    """Load ``model_<name>`` (or ``ema_<name>``) weights from a checkpoint folder into ``model``."""
    file = Path(path) / f"{'ema' if ema else 'model'}_{name}.safetensors"
    if not file.is_file():
        raise UserError(f"{file}: no such weights in the checkpoint")
    model.load_state_dict(load_file(str(file)))


def load_checkpoint(
    path: str | Path,
    *,
    models: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    schedulers: dict[str, Any],
    emas: dict[str, EMA],
    restore_rng: bool = True,
) -> TrainingState:
    """Restore everything :func:`save_checkpoint` wrote into the given objects."""
    path = Path(path)
    meta = json.loads((path / "state.json").read_text())
    for key, model in models.items():
        load_weights(path, model, key)
    for key, ema in emas.items():
        ema.load_state_dict(load_file(str(path / f"ema_{key}.safetensors")), meta["ema_updates"][key])
    training = torch.load(path / "training_state.pt", map_location="cpu", weights_only=True)
    for key, optimizer in optimizers.items():
        optimizer.load_state_dict(training["optimizers"][key])
    for key, scheduler in schedulers.items():
        scheduler.load_state_dict(training["schedulers"][key])
    if restore_rng:
        restore_rng_state(meta["rng"])
    return TrainingState(step=meta["step"], epoch=meta["epoch"], extra=meta["extra"])
