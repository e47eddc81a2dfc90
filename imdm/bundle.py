"""A trained recognizer as one object: model, input pipeline, class names; saved as a folder.

    recognizer.safetensors    weights (the EMA copy when the run kept one)
    recognizer.yaml           RecognizerConfig, clip pipeline (evaluation settings), class
                              names, skeleton, source
    class_texts.safetensors   the class-text embeddings ``[K, E]`` it was aligned with (when it was)
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
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

logger = logging.getLogger("imdm.bundle")


def inference_autocast(device: torch.device, mixed_precision: str) -> torch.autocast:
    """The autocast context in which a recognizer classifies in ``mixed_precision`` (``no``, ``bf16`` or ``fp16``,
    as in training) on ``device``; autocast is per thread, so each thread that runs a model enters its own."""
    check_mixed_precision(mixed_precision)
    dtype = torch.float16 if mixed_precision == "fp16" else torch.bfloat16
    return torch.autocast(device.type, dtype=dtype, enabled=mixed_precision != "no")


class RecognizerLogits(torch.nn.Module):
    """A recognizer's logits ``[B, K]`` alone: the output a TorchScript trace can carry."""

    def __init__(self, model: Recognizer) -> None:
        super().__init__()
        self.model = model

    def forward(self, motion: torch.Tensor) -> torch.Tensor:
        return self.model(motion).logits


def frozen_logits(model: Recognizer, example: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model``'s logits as a TorchScript graph traced on the prepared clips ``example`` and frozen (the weights
    folded in), for float32 inference of clips shaped like ``example`` (any batch size); the eager model where
    TorchScript is missing or the trace fails.

    The graph runs its operators without Python between them and without holding the GIL: one stream classifies
    1.3 times faster at batch 1 on two CPU cores, and an ensemble's members really run side by side (1.5 times
    faster; docs/results.md, "Recognition: four-stream ensembles"). TorchScript is deprecated in favour of
    ``torch.export`` and ``torch.compile``, but an exported program runs its operators from Python as the eager
    model does, and compiling takes tens of seconds a model, too long for a command that classifies a few clips.
    """
    eager = RecognizerLogits(model).eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the input checks, fixed for a clip shape
            return torch.jit.freeze(torch.jit.trace(eager, example, check_trace=False))
    except (AttributeError, RuntimeError) as error:
        logger.warning("classifying with the eager model: TorchScript tracing failed (%s)", error)
        return eager


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
        self.graphs: dict[tuple[int, ...], Callable[[torch.Tensor], torch.Tensor]] = {}
        """Frozen logits graphs (:func:`frozen_logits`) by clip shape (the input's shape after the batch axis), each
        traced at the first float32 batch of its shape on a CPU."""

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
    def logits(self, motion: torch.Tensor, mixed_precision: str = "no") -> torch.Tensor:
        """Float32 logits ``[B, K]`` of prepared clips ``[B, T, J, C]`` or ``[B, M, T, J, C]`` on this recognizer's
        device, the model running in ``mixed_precision`` (:func:`inference_autocast`); in float32 on a CPU through
        a frozen graph (:func:`frozen_logits`, the same logits, faster)."""
        if mixed_precision != "no" or self.device.type != "cpu" or not isinstance(self.model, Recognizer):
            with inference_autocast(self.device, mixed_precision):
                return self.model(motion).logits.float()
        shape = tuple(motion.shape[1:])
        if shape not in self.graphs:  # tracing runs the model once, its input checks included
            self.graphs[shape] = frozen_logits(self.model, motion)
        return self.graphs[shape](motion)

    @torch.no_grad()
    def predict(self, dataset: MotionDataset, batch_size: int = 64, mixed_precision: str = "no") -> np.ndarray:
        """Class probabilities ``[N, K]`` (float32) of every clip, through the evaluation pipeline; the model runs
        in ``mixed_precision`` (:meth:`logits`)."""
        self.check_dataset(dataset)
        loader = DataLoader(ClipDataset(dataset, self.spec.pipeline, train=False), batch_size=batch_size,
                            collate_fn=collate_clips)
        probabilities = [self.logits(batch["motion"].to(self.device), mixed_precision).softmax(-1).cpu()
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
