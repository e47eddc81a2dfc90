"""ONNX export: the graph gives PyTorch's probabilities for any batch size, for a recognizer and an ensemble."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from toy_data import toy_archive

from imdm.bundle import TrainedRecognizer
from imdm.ensemble import EnsembleSpec, TrainedEnsemble
from imdm.onnx_export import export_onnx, graph_of, onnx_probabilities, prepared_clips, torch_probabilities
from imdm.training.building import build_recognizer
from mdm.data.archive import read_archive
from mdm.data.transforms import recognition_pipeline

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
REPO = Path(__file__).resolve().parents[1]


def recognizer(dataset: object, seed: int, streams: list[str] | None = None) -> TrainedRecognizer:
    torch.manual_seed(seed)
    overrides = {} if streams is None else {"streams": streams}
    model, spec = build_recognizer(dataset, replace(recognition_pipeline(), num_frames=16), "tiny", overrides)
    return TrainedRecognizer(spec, model)


def test_a_recognizer_and_an_ensemble_export_with_pytorch_probabilities(tmp_path: Path) -> None:
    dataset = read_archive(toy_archive(tmp_path / "toy.npz", clips_per_class=4))
    single = recognizer(dataset, 0)
    clips = prepared_clips(dataset, single.spec.pipeline)
    assert clips.shape == (len(dataset), 16, 20, 3)
    path = export_onnx(single, tmp_path / "single.onnx", clips)
    for batch in (1, 5):
        onnx = onnx_probabilities(path, clips, batch_size=batch)
        np.testing.assert_allclose(onnx, torch_probabilities(single, clips), atol=1e-5)
    assert np.allclose(onnx.sum(1), 1, atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".npz") == ["single.json", "single.onnx"]
    description = json.loads(path.with_suffix(".json").read_text())
    assert description["class_names"] == single.class_names and description["input"]["shape"][1:] == [16, 20, 3]

    members = [recognizer(dataset, 1, ["joint"]), recognizer(dataset, 2, ["bone"])]
    spec = EnsembleSpec(streams=["j", "b"], folders=["j", "b"], weights=[2.0, 1.0], class_names=single.class_names,
                        turns=[-20.0, 0.0, 20.0])
    ensemble = TrainedEnsemble(spec, members)
    path = export_onnx(ensemble, tmp_path / "ensemble.onnx", clips)
    np.testing.assert_allclose(onnx_probabilities(path, clips), ensemble.predict(dataset), atol=1e-5)
    assert graph_of(ensemble)[0].weights.tolist() == pytest.approx([2 / 3, 1 / 3])
    alone = TrainedEnsemble(replace(spec, turns=[0.0]), members).predict(dataset)
    assert not np.allclose(alone, ensemble.predict(dataset), atol=1e-5)  # the turns are in the graph


def test_the_command_checks_parity_and_refuses_a_bad_name(tmp_path: Path) -> None:
    archive = toy_archive(tmp_path / "toy.npz", clips_per_class=3)
    folder = recognizer(read_archive(archive), 0).save(tmp_path / "recognizer")
    command = [sys.executable, str(REPO / "run/export_onnx.py"), "--checkpoint", str(folder), "--clips", str(archive)]
    result = subprocess.run(command + ["--out", str(tmp_path / "model.onnx")], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "largest difference from PyTorch" in result.stdout and (tmp_path / "model.json").is_file()
    bad = subprocess.run(command + ["--out", str(tmp_path / "model.bin")], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        f"error: --out {tmp_path / 'model.bin'}: the file name must end in .onnx"]
