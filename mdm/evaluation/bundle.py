"""A trained evaluator as one object: ST-GCN, input pipeline, class names, where its data lives.

Saved as a folder (``<run>/evaluator/``)::

    evaluator.safetensors     weights (the EMA copy the run selected on validation)
    evaluator.yaml            STGCNConfig, clip pipeline (evaluation settings), the data config
                              it was trained on (the real reference clips), class names, skeleton
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mdm.data.dataset import MotionDataset
from mdm.data.sources import DataConfig
from mdm.data.transforms import ClipPipelineConfig
from mdm.errors import UserError
from mdm.evaluation.stgcn import STGCN, STGCNConfig
from mdm.model_folder import load_module_weights, read_model_folder, save_model_folder
from mdm.training.loop import make_eval_loader

SPEC_FILE = "evaluator.yaml"
WEIGHTS_FILE = "evaluator.safetensors"


@dataclass
class EvaluatorSpec:
    """Everything besides weights that a saved evaluator needs."""

    model: STGCNConfig
    pipeline: ClipPipelineConfig
    data: DataConfig
    class_names: list[str] = field(default_factory=list)
    joint_names: list[str] = field(default_factory=list)
    skeleton_name: str = "custom"
    source: str = ""


@dataclass
class FeatureSet:
    """Evaluator outputs of a set of clips.

    Attributes:
        features: float64 ``[N, D]`` feature-layer outputs.
        scores: float32 ``[N, K]`` logits.
        labels: int64 ``[N]`` class of each clip, in the evaluator's class order.
    """

    features: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: np.ndarray) -> FeatureSet:
        """The rows at ``indices``."""
        return FeatureSet(self.features[indices], self.scores[indices], self.labels[indices])


class TrainedEvaluator:
    """Features and predictions of the evaluator ST-GCN for clips of its skeleton and classes."""

    def __init__(self, spec: EvaluatorSpec, model: STGCN) -> None:
        self.spec = spec
        self.model = model.eval()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def matching_labels(self, dataset: MotionDataset, name: str) -> np.ndarray:
        """The labels of ``dataset`` in the evaluator's class order, after checking it fits.

        Args:
            dataset: clips to evaluate; ``name`` (a file path) is named in error messages.

        Raises:
            UserError: other skeleton, several persons, or a class name the evaluator does not know.
        """
        parents = tuple(self.spec.model.parents)
        skeleton = dataset.skeleton
        if skeleton.parents != parents:
            raise UserError(f"{name}: skeleton {skeleton.name} ({skeleton.num_joints} joints) does not match the "
                            f"evaluator's {self.spec.skeleton_name} ({len(parents)} joints, parents {list(parents)})")
        if dataset.is_multi_person:
            raise UserError(f"{name}: clips of {dataset.num_persons} persons; the evaluator judges one-person clips")
        unknown = [c for c in dataset.class_names if c not in self.spec.class_names]
        if unknown:
            raise UserError(f"{name}: class name(s) {unknown} unknown to the evaluator; its classes: "
                            f"{', '.join(self.spec.class_names)}")
        order = np.array([self.spec.class_names.index(c) for c in dataset.class_names], dtype=np.int64)
        return order[dataset.labels]

    @torch.no_grad()
    def feature_set(self, dataset: MotionDataset, name: str, batch_size: int = 64) -> FeatureSet:
        """Features and logits of every clip of ``dataset`` through the evaluation pipeline."""
        labels = self.matching_labels(dataset, name)
        features, scores = [], []
        for batch in make_eval_loader(dataset, self.spec.pipeline, batch_size):
            output = self.model(batch["motion"].to(self.device))
            features.append(output.features.double().cpu())
            scores.append(output.logits.float().cpu())
        dim, classes = self.spec.model.feature_dim, len(self.spec.class_names)
        return FeatureSet(
            features=torch.cat(features).numpy() if features else np.zeros((0, dim)),
            scores=torch.cat(scores).numpy() if scores else np.zeros((0, classes), np.float32),
            labels=labels,
        )

    def save(self, directory: str | Path) -> Path:
        """Write the evaluator folder (see the module docstring)."""
        return save_model_folder(directory, self.spec, SPEC_FILE, {WEIGHTS_FILE: self.model})

    @classmethod
    def load(cls, directory: str | Path, device: torch.device | str = "cpu") -> TrainedEvaluator:
        """Load a folder written by :meth:`save`, or a run folder holding ``evaluator/``."""
        directory, spec = read_model_folder(directory, "evaluator", EvaluatorSpec, SPEC_FILE, "train_evaluator.py")
        model = STGCN(spec.model)
        load_module_weights(model, directory / WEIGHTS_FILE)
        return cls(spec, model.to(device))
