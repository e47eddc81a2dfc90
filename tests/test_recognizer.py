"""The I-MDM recognizer: shapes, persons, joint mixing, streams, no dead parameters, fitting."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from imdm.bundle import RecognizerSpec, TrainedRecognizer
from imdm.models.recognizer import (
    PRESETS,
    Recognizer,
    RecognizerConfig,
    TemporalConv,
    recognizer_preset,
)
from imdm.training.building import build_recognizer
from mdm.config import from_dict, to_dict
from mdm.data.archive import read_archive
from mdm.data.transforms import recognition_pipeline
from mdm.errors import ConfigError, UserError
from mdm.model_folder import model_folder
from mdm.models import count_parameters
from mdm.skeleton import load_skeleton
from toy_data import toy_archive

REPO = Path(__file__).resolve().parents[1]

TINY = PRESETS["tiny"]


def make_model(seed: int = 0, **overrides: object) -> Recognizer:
    torch.manual_seed(seed)
    return Recognizer(dataclasses.replace(TINY, **overrides))


def clips(batch: int, config: RecognizerConfig = TINY, persons: int | None = None, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    shape = (config.num_frames, config.num_joints, config.in_channels)
    return torch.randn((batch,) + ((persons,) if persons else ()) + shape, generator=generator)


def test_output_shapes_one_person() -> None:
    model = make_model().eval()
    out = model(clips(3))
    assert out.logits.shape == (3, TINY.num_classes)
    assert [f.shape for f in out.features] == [
        (3, frames, dim) for frames, dim in zip(model.feature_frames, model.feature_dims)
    ]
    assert [p.shape for p in out.pooled] == [(3, dim) for dim in model.feature_dims]
    assert model.feature_frames == (8, 8)
    assert torch.allclose(out.pooled[0], out.features[0].mean(dim=1))


def test_temporal_patch_one_keeps_every_frame() -> None:
    model = make_model(temporal_patch=1).eval()
    out = model(clips(2))
    assert model.feature_frames == (16, 16)
    assert [f.shape[1] for f in out.features] == [16, 16]


def test_config_round_trips_through_plain_dicts() -> None:
    config = recognizer_preset("default", num_classes=12)
    plain = to_dict(config)
    assert isinstance(plain["widths"], list)
    assert from_dict(RecognizerConfig, plain) == config


def test_default_and_paper_feature_layout() -> None:
    assert PRESETS["default"].feature_frames[-1] < PRESETS["default"].feature_frames[0]
    assert PRESETS["paper"].widths[1:] == (512, 1024, 1024, 1024)
    assert PRESETS["paper"].feature_frames[1:] == (64, 32, 16, 8)


def test_several_persons_shapes_and_symmetric_pooling() -> None:
    model = make_model(num_persons=2).eval()
    x = clips(4, model.config, persons=2)
    with torch.no_grad():
        out = model(x)
        swapped = model(x.flip(1))
    assert out.logits.shape == (4, TINY.num_classes)
    assert [f.shape[0] for f in out.features] == [4, 4]
    assert torch.allclose(out.logits, swapped.logits, atol=1e-5)
    for a, b in zip(out.features, swapped.features):
        assert torch.allclose(a, b, atol=1e-5)


def test_absent_person_is_ignored() -> None:
    model = make_model(num_persons=2).eval()
    x = clips(2, model.config)
    with_absent = torch.stack([x, torch.zeros_like(x)], dim=1)
    with torch.no_grad():
        alone, padded = model(x), model(with_absent)
    assert torch.allclose(alone.logits, padded.logits, atol=1e-5)


def test_wrong_input_shape_is_refused() -> None:
    model = make_model()
    with pytest.raises(ValueError, match="does not match"):
        model(torch.zeros(2, TINY.num_frames + 2, TINY.num_joints, 3))
    with pytest.raises(ValueError, match="does not match"):
        model(torch.zeros(2, 3, TINY.num_frames, TINY.num_joints, 3))
    with pytest.raises(ValueError, match=r"\[B, T, J, C\]"):
        model(torch.zeros(TINY.num_frames, TINY.num_joints, 3))


def joint_tokens(model: Recognizer, x: torch.Tensor) -> torch.Tensor:
    """Output ``[N, T, J, C]`` of the first (joint) stage, before any pooling."""
    captured = []
    handle = model.stages[0].register_forward_hook(lambda module, args, output: captured.append(output))
    with torch.no_grad():
        model(x)
    handle.remove()
    return captured[0]


@pytest.mark.parametrize("frames", [8, 9])
def test_strided_temporal_conv_is_the_strided_convolution(frames: int) -> None:
    torch.manual_seed(0)
    layer = TemporalConv(6, 5, stride=2)
    tokens = torch.randn(2, frames, 3, 6)
    expected = F.conv2d(tokens.permute(0, 3, 1, 2), layer.conv.weight, layer.conv.bias, stride=(2, 1), padding=(2, 0),
                        groups=6).permute(0, 2, 3, 1)
    assert torch.allclose(layer(tokens), expected, atol=1e-6)
    assert torch.allclose(layer(tokens[:, :, 0]), expected[:, :, 0], atol=1e-6)


def test_graph_mixing_moves_information_across_joints() -> None:
    model = make_model(streams=("joint", "motion")).eval()
    x = clips(1)
    moved = x.clone()
    moved[:, :, 3] += 1.0  # the head only
    base, changed = joint_tokens(model, x), joint_tokens(model, moved)
    difference = (changed - base).abs().amax(dim=(0, 1, 3))
    assert difference.shape == (TINY.num_joints,)
    assert (difference[torch.arange(TINY.num_joints) != 3] > 1e-4).all()

    with torch.no_grad():
        for module in model.modules():
            if hasattr(module, "adjacency"):
                module.adjacency.copy_(torch.eye(TINY.num_joints).expand_as(module.adjacency))
    base, changed = joint_tokens(model, x), joint_tokens(model, moved)
    difference = (changed - base).abs().amax(dim=(0, 1, 3))
    assert difference[3] > 1e-4
    assert torch.allclose(difference[torch.arange(TINY.num_joints) != 3], torch.zeros(TINY.num_joints - 1))


def test_output_depends_on_adjacency() -> None:
    model = make_model().eval()
    x = clips(2)
    with torch.no_grad():
        before = model(x).logits
        model.stages[0][0].mixer.adjacency.mul_(0.5)
        after = model(x).logits
    assert not torch.allclose(before, after, atol=1e-4)


def test_initial_adjacency_follows_the_skeleton() -> None:
    model = make_model()
    adjacency = model.stages[0][0].mixer.adjacency.detach()
    parents = TINY.parents
    assert torch.equal(adjacency[0], torch.eye(len(parents)))
    assert adjacency[1, 5, parents[5]] == 1.0 and adjacency[1, 5].sum() == 1.0
    assert adjacency[1, 0].sum() == 0.0  # the root has no parent
    children_of_shoulder_center = [j for j, p in enumerate(parents) if p == 2]
    assert torch.allclose(adjacency[2, 2, children_of_shoulder_center], torch.full((3,), 1 / 3))
    assert torch.allclose(adjacency[3].sum(dim=1), torch.ones(len(parents)))


def test_every_parameter_gets_a_gradient() -> None:
    model = make_model(dropout=0.1, drop_path=0.1, num_persons=2).train()
    out = model(clips(4, model.config, persons=2))
    loss = F.cross_entropy(out.logits, torch.arange(4) % TINY.num_classes)
    loss = loss + sum(feature.square().mean() for feature in out.features)
    loss.backward()
    dead = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert dead == []


def test_config_refusals() -> None:
    with pytest.raises(ConfigError, match="parents"):
        RecognizerConfig(parents=(-1, 0))
    with pytest.raises(ConfigError, match="streams"):
        RecognizerConfig(streams=("joint", "velocity"))
    with pytest.raises(ConfigError, match="one entry per stage"):
        RecognizerConfig(widths=(64, 128), depths=(1,), ff=(128, 256))
    with pytest.raises(ConfigError, match="heads"):
        RecognizerConfig(widths=(64, 250, 256), heads=4)
    with pytest.raises(ConfigError, match="temporal_patch"):
        RecognizerConfig(num_frames=51)
    with pytest.raises(ConfigError, match="unknown recognizer option"):
        recognizer_preset("tiny", width=3)
    with pytest.raises(ConfigError, match="unknown recognizer preset"):
        recognizer_preset("huge")


def test_other_skeleton_from_parents() -> None:
    skeleton = load_skeleton("smpl_24")
    config = recognizer_preset("tiny", num_joints=skeleton.num_joints, parents=skeleton.parents, in_channels=6)
    out = Recognizer(config).eval()(torch.randn(2, config.num_frames, 24, 6))
    assert out.logits.shape == (2, config.num_classes)


def test_tiny_recognizer_fits_a_tiny_problem() -> None:
    """Two classes: the right hand waves up and down, or the left hand does; the loss must fall."""
    torch.manual_seed(0)
    model = Recognizer(dataclasses.replace(TINY, num_classes=2)).train()
    generator = torch.Generator().manual_seed(1)
    labels = torch.arange(16) % 2
    x = 0.05 * torch.randn(16, TINY.num_frames, TINY.num_joints, 3, generator=generator)
    wave = torch.sin(torch.linspace(0, 6.28, TINY.num_frames))[None, :]
    hands = torch.where(labels[:, None] == 0, 11, 7)  # hand_right, hand_left
    x[torch.arange(16)[:, None], torch.arange(TINY.num_frames)[None, :], hands, 1] += wave
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = F.cross_entropy(model(x).logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
    model.eval()
    with torch.no_grad():
        assert (model(x).logits.argmax(dim=1) == labels).all()


def test_paper_preset_size() -> None:
    count = count_parameters(Recognizer(PRESETS["paper"]))
    print(f"paper preset: {count / 1e6:.2f} M parameters")
    assert 25e6 < count < 60e6  # published 51.4 M with wider down-sampling convolutions


def test_a_truncated_weights_file_ends_recognize_with_one_message_naming_it(tmp_path: Path) -> None:
    archive = toy_archive(tmp_path / "toy.npz", clips_per_class=2)
    model, spec = build_recognizer(read_archive(archive), recognition_pipeline(), "tiny", {})
    folder = TrainedRecognizer(spec, model).save(tmp_path / "recognizer")
    weights = next(folder.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])
    result = subprocess.run([sys.executable, str(REPO / "run" / "recognize.py"), str(archive), "--checkpoint",
                             str(folder)], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and str(weights) in lines[0] and "truncated" in lines[0]


def test_recognize_classifies_one_split_in_bf16_close_to_float32(tmp_path: Path) -> None:
    archive = toy_archive(tmp_path / "toy.npz", clips_per_class=4)
    dataset = read_archive(archive)
    torch.manual_seed(0)
    model, spec = build_recognizer(dataset, recognition_pipeline(), "tiny", {})
    folder = TrainedRecognizer(spec, model.eval()).save(tmp_path / "recognizer")
    recognizer = TrainedRecognizer.load(folder)
    exact, bf16 = recognizer.predict(dataset), recognizer.predict(dataset, mixed_precision="bf16")
    assert bf16.dtype == np.float32 and np.allclose(bf16.sum(1), 1, atol=1e-5)
    assert np.allclose(bf16, exact, atol=0.05) and not np.allclose(bf16, exact, atol=1e-6)  # it ran in bf16
    with pytest.raises(ConfigError, match="mixed_precision"):
        recognizer.predict(dataset, mixed_precision="int8")
    command = [sys.executable, str(REPO / "run" / "recognize.py"), str(archive), "--checkpoint", str(folder), "--json"]
    rows = json.loads(subprocess.run(command + ["--split", "test", "--mixed-precision", "bf16"], capture_output=True,
                                     text=True, check=True, timeout=120).stdout)
    test = dataset.split_subset("test")
    assert [row["clip_id"] for row in rows] == list(test.clip_ids) and len(rows) < len(dataset.labels)
    confidence = [row["predictions"][0]["confidence"] for row in rows]
    assert np.allclose(confidence, recognizer.predict(test, mixed_precision="bf16").max(1), atol=1e-6)


def test_text_space_needs_a_recognizer_trained_with_alignment(tmp_path: Path) -> None:
    archive = toy_archive(tmp_path / "toy.npz", clips_per_class=2)
    model, spec = build_recognizer(read_archive(archive), recognition_pipeline(), "tiny", {})
    folder = TrainedRecognizer(spec, model).save(tmp_path / "recognizer")
    with pytest.raises(UserError, match="without skeleton-text alignment"):
        TrainedRecognizer.load(folder).text_space(read_archive(archive))


def test_hub_names_are_explicit_and_an_offline_miss_is_one_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert model_folder("outputs/run") == Path("outputs/run")  # a path with a slash stays a local path
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(UserError, match="hf:someone/missing: not fetched from the Hugging Face Hub"):
        TrainedRecognizer.load("hf:someone/missing")


def test_float32_classification_runs_a_frozen_graph_with_the_eager_logits_and_falls_back_to_eager(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    config = dataclasses.replace(TINY, num_persons=2)
    torch.manual_seed(0)
    recognizer = TrainedRecognizer(RecognizerSpec(config, recognition_pipeline()), Recognizer(config))
    one_person, two_persons = torch.randn(3, 16, 20, 3), torch.randn(5, 2, 16, 20, 3)
    two_persons[1, 1] = 0  # an absent second person
    with torch.no_grad():
        for motion in (one_person, one_person[:1], two_persons, two_persons[:, :1]):
            assert torch.allclose(recognizer.logits(motion), recognizer.model(motion).logits, atol=1e-5)
    # traced once per clip shape, then reused at any batch size; a clip of another shape is refused as by the model
    assert sorted(recognizer.graphs) == [(1, 16, 20, 3), (2, 16, 20, 3), (16, 20, 3)]
    assert isinstance(recognizer.graphs[(16, 20, 3)], torch.jit.ScriptModule)
    with pytest.raises(ValueError, match="does not match"):
        recognizer.logits(torch.randn(2, 12, 20, 3))
    assert not torch.allclose(recognizer.logits(one_person, "bf16"), recognizer.logits(one_person), atol=1e-6)

    def no_tracing(*args: object, **kwargs: object) -> None:
        raise RuntimeError("tracing is not supported here")

    monkeypatch.setattr(torch.jit, "trace", no_tracing)
    eager = TrainedRecognizer(RecognizerSpec(config, recognition_pipeline()), recognizer.model)
    assert torch.allclose(eager.logits(one_person), recognizer.logits(one_person), atol=1e-5)
    assert "classifying with the eager model" in caplog.text
    assert not isinstance(eager.graphs[(16, 20, 3)], torch.jit.ScriptModule)
