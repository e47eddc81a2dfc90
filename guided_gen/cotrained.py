"""A finished co-training run as the source of guided generation: its models, config and training clips."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from guided_gen.guidance import ExemplarBank
from imdm.bundle import TrainedRecognizer
from imdm.training.cotrain import CoTrainConfig
from mdm.config import from_dict, load_yaml
from mdm.data.dataset import MotionDataset
from mdm.data.sources import load_training_data
from mdm.errors import UserError
from mdm.generator import MotionGenerator


@dataclass
class CoTrainedRun:
    """The generator, recognizer and config of a run folder written by ``mdm_imdm_cotrain.py``.

    Attributes:
        directory: the run folder.
        config: its ``config.yaml``.
        generator: the kept generator (``generator/``).
        recognizer: the kept recognizer (``recognizer/``).
        feature_stages: the recognizer stages whose features the generator was trained with, in order.
    """

    directory: Path
    config: CoTrainConfig
    generator: MotionGenerator
    recognizer: TrainedRecognizer
    feature_stages: list[int]

    @classmethod
    def load(cls, directory: str | Path, device: torch.device | str = "cpu") -> CoTrainedRun:
        """Load a run folder; a folder that is not a finished co-training run is a UserError."""
        directory = Path(directory)
        config_file = directory / "config.yaml"
        if not config_file.is_file():
            raise UserError(f"--run {directory}: not a co-training run folder (no config.yaml)")
        for part in ("generator", "recognizer"):
            if not (directory / part).is_dir():
                raise UserError(f"--run {directory}: has no {part}/ (was the run trained with a generator "
                                "and finished at least one epoch?)")
        config = from_dict(CoTrainConfig, load_yaml(config_file), str(config_file))
        generator = MotionGenerator.load(directory / "generator", device=device)
        recognizer = TrainedRecognizer.load(directory / "recognizer", device=device)
        num_stages = len(recognizer.model.feature_dims)
        stages = config.generator.feature_stages
        stages = list(range(num_stages)) if stages is None else [s % num_stages for s in stages]
        dims = [recognizer.model.feature_dims[s] for s in stages]
        if list(generator.spec.denoiser.feature_dims) != dims:
            raise UserError(f"--run {directory}: the generator takes features of widths "
                            f"{generator.spec.denoiser.feature_dims}, but recognizer stages {stages} give {dims}")
        return cls(directory, config, generator, recognizer, stages)

    def training_clips(self) -> MotionDataset:
        """The run's real training clips (its ``train`` split; validation and test left out)."""
        return load_training_data(self.config.data).split_subset("train")

    def exemplar_bank(self, train_set: MotionDataset, batch_size: int = 64) -> ExemplarBank:
        """Recognizer features of ``train_set`` at the stages the generator was trained with."""
        return ExemplarBank.from_dataset(self.recognizer, train_set, self.feature_stages, batch_size)
