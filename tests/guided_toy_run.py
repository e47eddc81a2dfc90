"""A tiny finished co-training run on the toy archive, shared by the guided-generation tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from imdm.training.cotrain import CoTrainConfig, CoTrainer
from mdm.config import merge
from toy_data import toy_archive


def toy_run_config(archive: Path, epochs: int = 4) -> CoTrainConfig:
    """Tiny recognizer and generator on ``archive``, 16 frames, batch 8."""
    return merge(CoTrainConfig(), {
        "data": {"name": "archive", "root": str(archive)},
        "pipeline": {"num_frames": 16},
        "recognizer": {"preset": "tiny", "label_smoothing": 0.0, "optim": {"lr": 1e-2, "warmup_steps": 2}},
        "generator": {"preset": "tiny", "optim": {"lr": 1e-3, "warmup_steps": 2}},
        "batch_size": 8, "epochs": epochs, "log_every": 2, "render_samples": False,
    })


def toy_run(factory: pytest.TempPathFactory, epochs: int = 4) -> Path:
    """The run folder, trained once per test session (a toy archive of 3 classes x 12 clips).

    Training stops after ``epochs`` of a longer schedule, so the kept models and config are
    written but the test evaluation and its reports (not needed here) are skipped.
    """
    folder = factory.getbasetemp() / "guided_toy_run"
    run = folder / "run"
    if not (run / "done").is_file():
        folder.mkdir(exist_ok=True)
        archive = toy_archive(folder / "toy.npz", clips_per_class=12)
        trainer = CoTrainer(toy_run_config(archive, epochs + 1), run, progress=False)
        trainer.fit(stop_at_step=epochs * len(trainer.sampler))
        (run / "done").touch()
    return run


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from several threads, and lose much when the CPU is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
