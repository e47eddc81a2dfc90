"""The pieces a co-training run is built from, apart from the loop that trains them.

* :class:`TrainingSplits`: the training, validation and test clips of a dataset, the performance of
  each training clip (for ``view_pairs``) and per-clip loss weights (for mixed datasets).
* :func:`build_recognizer`: the recognizer and the spec saved with it.
* :class:`GeneratorPart`: the diffusion model conditioned on the recognizer's features, with its
  noise process, normalisation and loss, and the spec saved with it.
* :func:`run_text_embeddings`: the class-text embeddings of a run, computed once.
* :func:`pooled_features`: a recognizer's pooled features of every clip of a dataset.

A new training signal (a loss on the recognizer's features, another model trained alongside) is
built here as a part of its own and added to :class:`imdm.training.cotrain.CoTrainer`'s list of
parts; the loop itself does not change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader

from imdm.bundle import TEXT_EMBEDDINGS_FILE, RecognizerSpec
from imdm.models.recognizer import Recognizer, recognizer_preset
from imdm.text_alignment import class_text_embeddings, fine_text_embeddings
from mdm.data.dataset import MotionDataset, single_person
from mdm.data.loader import ClipDataset, collate_clips
from mdm.data.sources import DataConfig
from mdm.data.splits import performance_groups
from mdm.data.transforms import ClipPipelineConfig
from mdm.errors import ConfigError
from mdm.generator import DiffusionConfig, GeneratorSpec, generator_spec_for
from mdm.losses import DiffusionLossWeights
from mdm.models.denoiser import MotionDenoiser, denoiser_preset
from mdm.representation import PositionRepresentation
from mdm.text import ClassText, TextEncoder, class_texts
from mdm.training.objective import DiffusionObjective, fit_feature_stats

logger = logging.getLogger("imdm.cotrain")


@dataclass
class TrainingSplits:
    """The clips of one co-training run.

    Attributes:
        train: the clips trained on (the train split; with ``train_on_validation`` the validation split too).
        val: the validation split.
        test: the test split (read once, at the end).
        groups: int64 ``[N_train]`` performance of each training clip when batches keep the views of one
            performance together (``view_pairs``), else None.
        weights: float32 ``[N_train]`` weight of each training clip's cross-entropy, or None (all 1).
    """

    train: MotionDataset
    val: MotionDataset
    test: MotionDataset
    groups: torch.Tensor | None
    weights: torch.Tensor | None

    @classmethod
    def carve(cls, dataset: MotionDataset, *, train_on_validation: bool, view_pairs: bool,
              sample_weights: np.ndarray | None = None) -> TrainingSplits:
        """Split ``dataset`` by its ``split`` field.

        Args:
            dataset: clips with ``train``/``val``/``test`` splits.
            train_on_validation: train on the validation clips as well (the final refit).
            view_pairs: record each training clip's performance; ConfigError when no two training
                clips show one performance.
            sample_weights: float ``[N]`` per-clip cross-entropy weights aligned with ``dataset``, or None.
        """
        in_training = np.isin(dataset.split, ("train", "val") if train_on_validation else ("train",))
        train = dataset.subset(np.flatnonzero(in_training))
        val = dataset.split_subset("val")
        if train_on_validation:
            logger.warning("train_on_validation: the %d validation clips are trained on, so validation figures "
                           "are not held out", len(val))
        groups = None
        if view_pairs:
            groups = torch.as_tensor(performance_groups(train.clip_ids))
            paired = int((torch.bincount(groups)[groups] > 1).sum())
            if paired == 0:
                raise ConfigError("view_pairs: no two training clips show one performance "
                                  "(clip ids that differ only by a view tag such as _v01)")
            logger.info("view pairs: %d of %d training clips share their performance with another view",
                        paired, len(groups))
        weights = (None if sample_weights is None else
                   torch.as_tensor(np.asarray(sample_weights, np.float32)[in_training]))
        return cls(train=train, val=val, test=dataset.split_subset("test"), groups=groups, weights=weights)


def build_recognizer(dataset: MotionDataset, pipeline: ClipPipelineConfig, preset: str,
                     overrides: dict[str, object]) -> tuple[Recognizer, RecognizerSpec]:
    """A new recognizer shaped for ``dataset`` (joints, classes, persons, skeleton) and ``pipeline``'s
    frame count, and the spec its folder is saved with."""
    skeleton = dataset.skeleton
    config = recognizer_preset(
        preset, **{"num_joints": skeleton.num_joints, "in_channels": 3, "num_classes": dataset.num_classes,
                   "num_frames": pipeline.num_frames, "num_persons": dataset.num_persons,
                   "parents": tuple(skeleton.parents), **overrides})
    spec = RecognizerSpec(model=config, pipeline=pipeline, class_names=list(dataset.class_names),
                          joint_names=list(skeleton.joint_names), skeleton_name=skeleton.name, source=dataset.source)
    return Recognizer(config), spec


def run_text_embeddings(dataset: MotionDataset, data: DataConfig, output_dir: Path, *,
                        write: bool) -> dict[str, torch.Tensor]:
    """Float32 ``[K, E]`` embeddings of the class texts (``data.texts``, else the dataset's own) by kind:
    ``coarse`` (:func:`class_text_embeddings`) and ``fine`` (:func:`fine_text_embeddings`). Read from
    ``output_dir``'s ``class_texts.safetensors`` when a run there already computed them, else encoded
    (offline) and, with ``write``, saved there (``coarse`` under the key ``embeddings``, as model folders
    keep it)."""
    path = output_dir / TEXT_EMBEDDINGS_FILE
    if path.is_file():
        saved = load_file(str(path))
        if "fine" in saved and saved["embeddings"].shape[0] == dataset.num_classes:
            return {"coarse": saved["embeddings"], "fine": saved["fine"]}
    embeddings = encode_class_texts(class_texts(list(dataset.class_names), data.texts, data.name), TextEncoder())
    if write:
        save_text_embeddings(embeddings, output_dir)
    return embeddings


def encode_class_texts(texts: list[ClassText], encoder: TextEncoder) -> dict[str, torch.Tensor]:
    """``{"coarse": [K, E], "fine": [K, E]}`` embeddings of ``texts`` (:func:`class_text_embeddings`,
    :func:`fine_text_embeddings`)."""
    return {"coarse": class_text_embeddings(texts, encoder), "fine": fine_text_embeddings(texts, encoder)}


def save_text_embeddings(embeddings: dict[str, torch.Tensor], output_dir: Path) -> None:
    """Write :func:`encode_class_texts`'s embeddings as ``output_dir``'s ``class_texts.safetensors``, which
    :func:`run_text_embeddings` then reads instead of encoding."""
    output_dir.mkdir(parents=True, exist_ok=True)
    save_file({"embeddings": embeddings["coarse"].contiguous(), "fine": embeddings["fine"].contiguous()},
              str(output_dir / TEXT_EMBEDDINGS_FILE))


@torch.no_grad()
def pooled_features(model: Recognizer, dataset: MotionDataset, pipeline: ClipPipelineConfig, batch_size: int,
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """Float32 ``[N, D]``: the last stage's pooled feature of every clip (evaluation pipeline, in order)."""
    model.eval()
    loader = DataLoader(ClipDataset(dataset, pipeline, train=False), batch_size=batch_size, collate_fn=collate_clips)
    parts = [model(batch["motion"].to(device)).pooled[-1].float() for batch in loader]
    return torch.cat(parts) if parts else torch.zeros(0, model.feature_dims[-1])


class GeneratorPart:
    """The diffusion model co-trained with the recognizer, conditioned on the recognizer's features.

    Args:
        train_set: the training clips (their first person; statistics of the features are fitted on them).
        pipeline: the clip pipeline, as the recognizer's.
        feature_dims: width of each of the recognizer's stages (``Recognizer.feature_dims``).
        preset: denoiser preset; ``overrides`` replace some of its fields.
        diffusion: the noise process.
        loss: weights of the diffusion loss's terms.
        feature_stages: which recognizer stages condition the denoiser (all when None); they are
            injected into evenly spaced denoiser layers.
        detach_features: stop the diffusion loss's gradient from reaching the recognizer.
    """

    def __init__(self, train_set: MotionDataset, pipeline: ClipPipelineConfig, feature_dims: list[int], *,
                 preset: str, overrides: dict[str, object], diffusion: DiffusionConfig, loss: DiffusionLossWeights,
                 feature_stages: list[int] | None, detach_features: bool) -> None:
        data = single_person(train_set)
        representation = PositionRepresentation(data.skeleton)
        stats = fit_feature_stats(data, pipeline, representation)
        self.feature_stages = feature_stages if feature_stages is not None else list(range(len(feature_dims)))
        self.detach_features = detach_features
        shape = dict(num_joints=representation.num_slots, num_channels=3, num_classes=data.num_classes)
        num_layers = denoiser_preset(preset, **shape, **overrides).num_layers
        layers = [min(num_layers - 1, i * num_layers // len(self.feature_stages))
                  for i in range(len(self.feature_stages))]
        config = denoiser_preset(preset, **shape, **{"feature_dims": [feature_dims[s] for s in self.feature_stages],
                                                     "feature_layers": layers, **overrides})
        self.denoiser = MotionDenoiser(config)
        self.spec: GeneratorSpec = generator_spec_for(data, config, diffusion, pipeline)
        self.objective = DiffusionObjective(diffusion.make_scheduler(), representation, stats, loss)

    def conditioning(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        """The recognizer's per-stage features ``[B, T_i, D_i]`` that condition the denoiser."""
        chosen = [features[s] for s in self.feature_stages]
        return [f.detach() for f in chosen] if self.detach_features else chosen

    def loss(self, denoiser: torch.nn.Module, motion: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor,
             features: list[torch.Tensor], generator: torch.Generator | None = None) -> torch.Tensor:
        """Denoising loss of ``denoiser`` on clips ``[B, T, J, 3]`` or ``[B, M, T, J, 3]`` (first person),
        conditioned on the action and the recognizer's ``features``."""
        person = motion if motion.dim() == 4 else motion[:, 0]
        loss, _ = self.objective(denoiser, self.objective.features(person), mask, labels,
                                 features=self.conditioning(features), generator=generator)
        return loss
