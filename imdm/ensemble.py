"""An ensemble of separately trained recognizers, one per input stream, fused by weighted scores.

The pyskl / CTR-GCN convention: joint, bone, joint-motion and bone-motion recognizers are
trained apart; their class probabilities are summed with weights. Here every stream weighs the same:
on NW-UCLA's within-training-view folds equal weights beat weights searched on the validation
split and pyskl's 2:2:1:1 (docs/results.md, "Recognition: four-stream ensembles"). Each member also
classifies every clip turned by :data:`TEST_TURNS` about the vertical axis and averages its
probabilities over the turns (also decided on those folds; the left-right mirror was not kept). An
ensemble folder::

    ensemble.yaml          EnsembleSpec: streams, member folders, weights, class names
    <code>/recognizer/     each member's recognizer folder (inside its run folder <code>/)
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader

from imdm.bundle import TrainedRecognizer
from mdm.config import from_dict, to_dict
from mdm.data.dataset import MotionDataset
from mdm.data.loader import ClipDataset, collate_clips
from mdm.data.transforms import rotation_about_axis
from mdm.errors import UserError
from mdm.model_folder import model_folder
from mdm.training.loop import check_mixed_precision

ENSEMBLE_FILE = "ensemble.yaml"
TEST_TURNS = (-20.0, 0.0, 20.0)
"""Degrees about the vertical axis at which a new ensemble's members classify each prepared clip."""


@dataclass
class EnsembleSpec:
    """What an ensemble folder holds besides its members.

    Attributes:
        streams: each member's stream code (``j``, ``b``, ``jm``, ``bm``).
        folders: each member's run folder, relative to the ensemble folder.
        weights: each member's weight (empty until the members are trained; 1 each, or what an
            earlier version chose on validation).
        class_names: ``K`` names, the same for every member.
        turns: degrees about the vertical axis at which each member classifies a prepared clip, its
            probabilities averaged over them (``[0]``, the clip alone, in folders written before turns).
        up_axis: the coordinate axis the turns are about (the skeleton's up axis).
    """

    streams: list[str] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    turns: list[float] = field(default_factory=lambda: [0.0])
    up_axis: int = 1


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities of logits ``[..., K]``."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def fuse_scores(probabilities: np.ndarray, weights: np.ndarray | list[float]) -> np.ndarray:
    """Weighted mean ``[N, K]`` of the members' class probabilities ``[S, N, K]``."""
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != probabilities.shape[:1] or weights.min() < 0 or weights.sum() <= 0:
        raise ValueError(f"need {probabilities.shape[0]} non-negative weights, not all zero; got {weights.tolist()}")
    return np.tensordot(weights / weights.sum(), probabilities, axes=1)


def turn_rotations(turns: list[float], up_axis: int) -> torch.Tensor:
    """float32 ``[V, 3, 3]``: the rotation by each of ``turns`` (degrees) about axis ``up_axis``."""
    return torch.from_numpy(np.stack([rotation_about_axis(np.deg2rad(t), up_axis) for t in turns])).float()


def turned_probabilities(logits: Callable[[torch.Tensor], torch.Tensor], motion: torch.Tensor,
                         rotations: torch.Tensor) -> torch.Tensor:
    """``[B, K]``: the class probabilities of prepared clips ``[B, ..., J, 3]`` by a model's ``logits`` (prepared
    clips to ``[B, K]``) averaged over ``rotations`` ``[V, 3, 3]`` (every turned copy of the batch goes through the
    model in one pass)."""
    views = torch.cat([motion @ rotation.T.to(motion) for rotation in rotations])
    probabilities = logits(views).float().softmax(-1)
    return probabilities.reshape(len(rotations), -1, probabilities.shape[-1]).mean(0)


class TrainedEnsemble:
    """Classifies clips with every member and fuses their probabilities by the saved weights."""

    def __init__(self, spec: EnsembleSpec, members: list[TrainedRecognizer]) -> None:
        if not spec.weights:
            raise UserError("the ensemble has no weights yet: its training has not finished")
        self.spec = spec
        self.members = members

    @property
    def class_names(self) -> list[str]:
        return self.spec.class_names

    def member_probabilities(self, dataset: MotionDataset, batch_size: int = 64,
                             mixed_precision: str = "no") -> np.ndarray:
        """Each member's class probabilities ``[S, N, K]``, averaged over the turns, the members running in
        ``mixed_precision`` (:meth:`imdm.bundle.TrainedRecognizer.logits`); members that share a clip pipeline share
        its batches.

        On a CPU the members of a batch run side by side, one worker thread each up to the intra-op thread
        count, the threads shared out among the workers: a member alone at batch 1 barely uses a second core
        (docs/results.md, inference latency)."""
        check_mixed_precision(mixed_precision)
        groups: dict[str, list[int]] = {}
        for index, member in enumerate(self.members):
            member.check_dataset(dataset)
            groups.setdefault(yaml.safe_dump(to_dict(member.spec.pipeline)), []).append(index)
        rotations = turn_rotations(self.spec.turns, self.spec.up_axis)
        probabilities = np.zeros((len(self.members), len(dataset.labels), len(self.class_names)))
        threads = torch.get_num_threads()
        on_cpu = all(member.device.type == "cpu" for member in self.members)
        workers = min(threads, len(self.members)) if on_cpu else 1

        @torch.no_grad()
        def member_batch(index: int, motion: torch.Tensor) -> np.ndarray:
            member = self.members[index]
            return turned_probabilities(lambda views: member.logits(views, mixed_precision), motion.to(member.device),
                                        rotations).cpu().numpy()

        try:
            with ThreadPoolExecutor(workers, initializer=torch.set_num_threads,
                                    initargs=(max(1, threads // workers),)) as pool:
                for indices in groups.values():
                    pipeline = self.members[indices[0]].spec.pipeline
                    loader = DataLoader(ClipDataset(dataset, pipeline, train=False), batch_size=batch_size,
                                        collate_fn=collate_clips)
                    start = 0
                    for batch in loader:
                        motion = batch["motion"]
                        for index, turned in zip(indices, pool.map(member_batch, indices, [motion] * len(indices))):
                            probabilities[index, start:start + len(turned)] = turned
                        start += len(motion)
        finally:
            torch.set_num_threads(threads)  # the workers' setting is also the default of threads started later
        return probabilities

    def predict(self, dataset: MotionDataset, batch_size: int = 64, mixed_precision: str = "no") -> np.ndarray:
        """Fused class probabilities ``[N, K]``, the members running in ``mixed_precision``."""
        return fuse_scores(self.member_probabilities(dataset, batch_size, mixed_precision), self.spec.weights)

    @classmethod
    def load(cls, directory: str | Path, device: torch.device | str = "cpu") -> TrainedEnsemble:
        """Load an ensemble folder written by ``run/train_ensemble.py``."""
        return cls.load_members(read_ensemble_spec(directory), directory, device)

    @classmethod
    def load_members(cls, spec: EnsembleSpec, directory: str | Path,
                     device: torch.device | str = "cpu") -> TrainedEnsemble:
        """The ensemble of ``spec`` with its members loaded from their folders inside ``directory``."""
        members = [TrainedRecognizer.load(Path(directory) / folder, device=device) for folder in spec.folders]
        return cls(spec, members)


def is_ensemble_folder(directory: str | Path) -> bool:
    return (Path(directory) / ENSEMBLE_FILE).is_file()


def write_ensemble_spec(spec: EnsembleSpec, directory: str | Path) -> None:
    (Path(directory) / ENSEMBLE_FILE).write_text(yaml.safe_dump(to_dict(spec), sort_keys=False))


def read_ensemble_spec(directory: str | Path) -> EnsembleSpec:
    path = Path(directory) / ENSEMBLE_FILE
    if not path.is_file():
        raise UserError(f"{directory}: not an ensemble folder (no {ENSEMBLE_FILE})")
    values = yaml.safe_load(path.read_text())
    if isinstance(values, dict):
        values.pop("chosen_on", None)  # written by versions that chose the weights on validation; the weights stay
    return from_dict(EnsembleSpec, values, where=str(path))


def load_classifier(directory: str | Path, device: torch.device | str = "cpu") -> TrainedRecognizer | TrainedEnsemble:
    """An ensemble folder as a :class:`TrainedEnsemble`, any other as a :class:`TrainedRecognizer` (``hf:owner/name``
    for a Hugging Face Hub repository holding either, :func:`mdm.model_folder.model_folder`)."""
    directory = model_folder(directory)
    if is_ensemble_folder(directory):
        return TrainedEnsemble.load(directory, device=device)
    return TrainedRecognizer.load(directory, device=device)
