"""A trained recognizer as one object: model, input pipeline, class names; saved as a folder.

    recognizer.safetensors    weights (the EMA copy when the run kept one)
    recognizer.yaml           RecognizerConfig, clip pipeline (evaluation settings), class
                              names, skeleton, source
    class_texts.safetensors   the class-text embeddings ``[K, E]`` it was aligned with (when it was)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch.utils.data import DataLoader

from imdm.models.recognizer import Recognizer, RecognizerConfig
from mdm.data.dataset import MotionDataset
from mdm.data.loader import ClipDataset, collate_clips
from mdm.data.transforms import ClipPipelineConfig
from mdm.errors import UserError
from mdm.model_folder import cpu_state_dict, load_module_weights, read_model_folder, read_safetensors, save_model_folder
from mdm.training.loop import check_mixed_precision

SPEC_FILE = "recognizer.yaml"
WEIGHTS_FILE = "recognizer.safetensors"
TEXT_EMBEDDINGS_FILE = "class_texts.safetensors"
TEXT_PROJECTION_FILE = "text_projection.safetensors"
"""The alignment head's projection of pooled features into the text space, where the recognizer
was trained with skeleton–text alignment (what text–motion retrieval needs)."""


def inference_autocast(device: torch.device, mixed_precision: str) -> torch.autocast:
    """The autocast context in which a recognizer classifies in ``mixed_precision`` (``no``, ``bf16`` or ``fp16``,
    as in training) on ``device``; autocast is per thread, so each thread that runs a model enters its own."""
    check_mixed_precision(mixed_precision)
    dtype = torch.float16 if mixed_precision == "fp16" else torch.bfloat16
    return torch.autocast(device.type, dtype=dtype, enabled=mixed_precision != "no")


@dataclass
class RecognizerSpec:
    """Everything besides weights that a saved recognizer needs."""

    model: RecognizerConfig
    pipeline: ClipPipelineConfig
    class_names: list[str] = field(default_factory=list)
    joint_names: list[str] = field(default_factory=list)
    skeleton_name: str = "custom"
    source: str = ""


class TrainedRecognizer:
    """Classifies motion clips of the skeleton it was trained on."""

    def __init__(self, spec: RecognizerSpec, model: Recognizer, text_embeddings: torch.Tensor | None = None,
                 text_projection: torch.nn.Linear | None = None) -> None:
        self.spec = spec
        self.model = model.eval()
        self.text_embeddings = text_embeddings
        self.text_projection = text_projection

    @property
    def class_names(self) -> list[str]:
        return self.spec.class_names

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def check_dataset(self, dataset: MotionDataset) -> None:
        """UserError unless ``dataset`` has this recognizer's skeleton (joint count and tree)."""
        parents = tuple(self.spec.model.parents)
        if dataset.skeleton.parents != parents:
            raise UserError(f"{dataset.source}: skeleton {dataset.skeleton.name} ({dataset.skeleton.num_joints} joints) "
                            f"does not match the recognizer's {self.spec.skeleton_name} ({len(parents)} joints)")

    @torch.no_grad()
    def predict(self, dataset: MotionDataset, batch_size: int = 64, mixed_precision: str = "no") -> np.ndarray:
        """Class probabilities ``[N, K]`` (float32) of every clip, through the evaluation pipeline; the model runs
        in ``mixed_precision`` (:func:`inference_autocast`)."""
        self.check_dataset(dataset)
        loader = DataLoader(ClipDataset(dataset, self.spec.pipeline, train=False), batch_size=batch_size,
                            collate_fn=collate_clips)
        with inference_autocast(self.device, mixed_precision):
            probabilities = [self.model(batch["motion"].to(self.device)).logits.float().softmax(-1).cpu()
                             for batch in loader]
        return torch.cat(probabilities).numpy() if probabilities else np.zeros((0, len(self.spec.class_names)))

    @torch.no_grad()
    def text_space(self, dataset: MotionDataset, batch_size: int = 64) -> torch.Tensor:
        """Float32 ``[N, E]``: every clip's pooled feature projected into the text space, unit length.

        Raises:
            UserError: the recognizer was trained without skeleton–text alignment.
        """
        if self.text_projection is None:
            raise UserError("this recognizer was trained without skeleton-text alignment (no "
                            f"{TEXT_PROJECTION_FILE}); train with --set recognizer.text_weight=0.5")
        self.check_dataset(dataset)
        loader = DataLoader(ClipDataset(dataset, self.spec.pipeline, train=False), batch_size=batch_size,
                            collate_fn=collate_clips)
        parts = [self.text_projection(self.model(batch["motion"].to(self.device)).pooled[-1].float()).cpu()
                 for batch in loader]
        projected = torch.cat(parts) if parts else torch.zeros(0, self.text_projection.out_features)
        return torch.nn.functional.normalize(projected, dim=-1)

    def save(self, directory: str | Path) -> Path:
        directory = save_model_folder(directory, self.spec, SPEC_FILE, {WEIGHTS_FILE: self.model})
        if self.text_embeddings is not None:
            save_file({"embeddings": self.text_embeddings.detach().cpu().contiguous()},
                      str(directory / TEXT_EMBEDDINGS_FILE))
        if self.text_projection is not None:
            save_file(cpu_state_dict(self.text_projection), str(directory / TEXT_PROJECTION_FILE))
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: torch.device | str = "cpu") -> TrainedRecognizer:
        """Load a folder written by :meth:`save`, or a run folder holding ``recognizer/``."""
        directory, spec = read_model_folder(directory, "recognizer", RecognizerSpec, SPEC_FILE,
                                            "mdm_imdm_cotrain.py")
        model = Recognizer(spec.model)
        load_module_weights(model, directory / WEIGHTS_FILE)
        texts = directory / TEXT_EMBEDDINGS_FILE
        embeddings = read_safetensors(texts)["embeddings"] if texts.is_file() else None
        projection = None
        if (directory / TEXT_PROJECTION_FILE).is_file():
            weight = read_safetensors(directory / TEXT_PROJECTION_FILE)["weight"]
            projection = torch.nn.Linear(weight.shape[1], weight.shape[0])
            load_module_weights(projection, directory / TEXT_PROJECTION_FILE)
            projection = projection.to(device).eval()
        return cls(spec, model.to(device), embeddings, projection)
