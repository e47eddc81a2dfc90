"""ONNX export of a trained recognizer or stream ensemble, checked against PyTorch with onnxruntime.

The graph maps prepared clips, the evaluation pipeline's output (float32 ``[B, T, J, 3]``, or
``[B, M, T, J, 3]`` with several persons), to class probabilities ``[B, K]``: the softmax of the
recognizer's logits or, for an ensemble, the members' probabilities (each averaged over the ensemble's
turns of the clip) averaged with its weights. The
batch size is free. The clip pipeline (resampling, centring, view normalisation) stays in Python:
:func:`prepared_clips` gives the graph's input, and the JSON written beside the ``.onnx`` holds the
pipeline settings, the input shape and the class names a deployment needs.

``torch.onnx.export`` (the ``torch.export`` based exporter, which needs ``onnxscript``) writes the
graph; ``onnxruntime`` runs it for the parity check.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader

from imdm.bundle import TrainedRecognizer
from imdm.ensemble import TrainedEnsemble, turn_rotations, turned_probabilities
from mdm.config import to_dict
from mdm.data.dataset import MotionDataset
from mdm.data.loader import ClipDataset, collate_clips
from mdm.data.transforms import ClipPipelineConfig
from mdm.errors import ConfigError, UserError

logger = logging.getLogger("imdm.onnx")
PARITY_TOLERANCE = 1e-4
"""Largest absolute difference of probabilities between onnxruntime and PyTorch that passes."""
OPSET = 18


class ProbabilityGraph(nn.Module):
    """Class probabilities ``[B, K]`` of prepared clips: the weighted mean of the members' softmaxes, each
    averaged over the turns ``rotations`` ``[V, 3, 3]`` of the clip (:func:`imdm.ensemble.turned_probabilities`)."""

    def __init__(self, members: list[nn.Module], weights: list[float], rotations: torch.Tensor) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        total = float(sum(weights))
        self.register_buffer("weights", torch.tensor([w / total for w in weights], dtype=torch.float32))
        self.register_buffer("rotations", rotations.float())

    def forward(self, motion: torch.Tensor) -> torch.Tensor:
        probabilities = [turned_probabilities(lambda views, m=member: m(views).logits, motion, self.rotations)
                         for member in self.members]
        return (torch.stack(probabilities, 0) * self.weights[:, None, None]).sum(0)


def graph_of(classifier: TrainedRecognizer | TrainedEnsemble) -> tuple[ProbabilityGraph, ClipPipelineConfig]:
    """The probability graph of a recognizer or ensemble (on the CPU) and the pipeline its input goes through."""
    if isinstance(classifier, TrainedEnsemble):
        pipelines = {yaml.safe_dump(to_dict(m.spec.pipeline)) for m in classifier.members}
        if len(pipelines) != 1:
            raise UserError("the ensemble's members prepare clips differently; export them one by one")
        members = [m.model.cpu().eval() for m in classifier.members]
        rotations = turn_rotations(classifier.spec.turns, classifier.spec.up_axis)
        graph = ProbabilityGraph(members, list(classifier.spec.weights), rotations)
        return graph.eval(), classifier.members[0].spec.pipeline
    return ProbabilityGraph([classifier.model.cpu().eval()], [1.0], torch.eye(3)[None]).eval(), classifier.spec.pipeline


def prepared_clips(dataset: MotionDataset, pipeline: ClipPipelineConfig, batch_size: int = 64) -> np.ndarray:
    """Float32 ``[N, T, J, 3]`` (or ``[N, M, T, J, 3]``): every clip through the evaluation pipeline."""
    loader = DataLoader(ClipDataset(dataset, pipeline, train=False), batch_size=batch_size, collate_fn=collate_clips)
    return torch.cat([batch["motion"] for batch in loader]).numpy()


def require_onnx_packages() -> None:
    """ConfigError naming what to install unless onnx, onnxscript and onnxruntime are importable."""
    missing = [name for name in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"ONNX export needs {', '.join(missing)}: pip install onnx onnxscript onnxruntime")


def export_onnx(classifier: TrainedRecognizer | TrainedEnsemble, path: str | Path,
                example: np.ndarray) -> Path:
    """Write the probability graph as ``path`` (``.onnx``, weights inside: one file) and its description as
    ``path`` with ``.json``.

    Args:
        example: prepared clips ``[B, ...]`` fixing every dimension but the batch.
    """
    require_onnx_packages()
    path = Path(path)
    graph, pipeline = graph_of(classifier)
    batch = torch.export.Dim("batch", min=1, max=4096)
    partial = path.with_name(f".{path.name}.partial")
    torch.onnx.export(graph, (torch.as_tensor(example[:2]),), str(partial), dynamo=True, opset_version=OPSET,
                      input_names=["motion"], output_names=["probabilities"], external_data=False,
                      dynamic_shapes={"motion": {0: batch}}, verbose=False)
    os.replace(partial, path)
    description = {"input": {"name": "motion", "shape": ["batch", *example.shape[1:]], "dtype": "float32"},
                   "output": {"name": "probabilities", "shape": ["batch", len(classifier.class_names)]},
                   "class_names": list(classifier.class_names), "pipeline": to_dict(pipeline), "opset": OPSET}
    path.with_suffix(".json").write_text(json.dumps(description, indent=2))
    return path


def onnx_probabilities(path: str | Path, clips: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """``[N, K]`` probabilities of prepared clips ``[N, ...]`` from the ONNX graph under onnxruntime (CPU)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {"motion": clips[i:i + batch_size]})[0]
                           for i in range(0, len(clips), batch_size)])


@torch.no_grad()
def torch_probabilities(classifier: TrainedRecognizer | TrainedEnsemble, clips: np.ndarray,
                        batch_size: int = 64) -> np.ndarray:
    """``[N, K]`` probabilities of prepared clips from the PyTorch graph (CPU, float32)."""
    graph, _ = graph_of(classifier)
    return np.concatenate([graph(torch.as_tensor(clips[i:i + batch_size])).numpy()
                           for i in range(0, len(clips), batch_size)])
