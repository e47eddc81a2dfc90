"""MotionDenoiser: shapes, padding, feature injection, guidance, presets."""

from __future__ import annotations

import pytest
import torch

from mdm.errors import ConfigError
from mdm.models import MotionDenoiser, count_parameters, denoiser_preset

JOINTS, CHANNELS, CLASSES, FRAMES = 20, 3, 10, 60


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Tiny models run fastest on one thread; on a busy shared CPU two threads wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_model(seed: int = 0, **overrides) -> MotionDenoiser:
    torch.manual_seed(seed)
    config = denoiser_preset("tiny", num_joints=JOINTS, num_channels=CHANNELS, num_classes=CLASSES, **overrides)
    return MotionDenoiser(config)


def make_inputs(batch: int = 4, frames: int = FRAMES, seed: int = 1) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    x_t = torch.randn(batch, frames, JOINTS, CHANNELS, generator=generator)
    timesteps = torch.randint(0, 1000, (batch,), generator=generator)
    labels = torch.randint(0, CLASSES, (batch,), generator=generator)
    return x_t, timesteps, labels


def randomise_adapters(model: MotionDenoiser, seed: int = 2) -> None:
    """Give the zero-initialised last projections non-zero weights, as after training."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for adapter in model.adapters:
            last = adapter.net[-1]
            last.weight.copy_(torch.randn(last.weight.shape, generator=generator) * 0.1)


def test_output_shape_and_gradients() -> None:
    model = make_model()
    x_t, timesteps, labels = make_inputs()
    out = model(x_t, timesteps, labels)
    assert out.shape == x_t.shape
    out.square().mean().backward()
    assert model.input_proj.weight.grad is not None and model.input_proj.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("positional_encoding", ["sinusoidal", "learned"])
def test_padded_frames_do_not_affect_valid_outputs(norm_first: bool, positional_encoding: str) -> None:
    model = make_model(norm_first=norm_first, positional_encoding=positional_encoding).eval()
    x_t, timesteps, labels = make_inputs()
    lengths = torch.tensor([60, 45, 30, 1])
    mask = torch.arange(FRAMES)[None, :] < lengths[:, None]
    changed = torch.where(mask[..., None, None], x_t, torch.randn_like(x_t) * 100)
    for grad_enabled in (True, False):
        with torch.set_grad_enabled(grad_enabled):
            out = model(x_t, timesteps, labels, mask=mask)
            out_changed = model(changed, timesteps, labels, mask=mask)
        assert torch.allclose(out[mask], out_changed[mask], atol=1e-5)
    # Without the mask the padded frames do leak into the valid ones.
    with torch.no_grad():
        assert not torch.allclose(model(x_t, timesteps, labels)[mask], model(changed, timesteps, labels)[mask])


def test_untrained_adapters_change_nothing() -> None:
    model = make_model(feature_dims=[64, 128], feature_layers=[0, 1]).eval()
    x_t, timesteps, labels = make_inputs()
    features = [torch.randn(4, 16, 64), torch.randn(4, 8, 128)]
    with torch.no_grad():
        plain = model(x_t, timesteps, labels)
        injected = model(x_t, timesteps, labels, features=features)
        assert torch.equal(plain, injected)
        randomise_adapters(model)
        assert not torch.allclose(plain, model(x_t, timesteps, labels, features=features))


def test_features_of_other_lengths_and_widths_reach_their_layers() -> None:
    model = make_model(feature_dims=[64, 128], feature_layers=[1, 1])
    randomise_adapters(model)
    x_t, timesteps, labels = make_inputs()
    features = [torch.randn(4, 16, 64, requires_grad=True), torch.randn(4, 8, 128, requires_grad=True)]
    out = model(x_t, timesteps, labels, features=features, force_uncond=False)
    assert out.shape == x_t.shape
    out.square().mean().backward()
    for feature in features:
        assert feature.grad is not None and feature.grad.abs().sum() > 0
    adapted = model.adapters[0](torch.randn(4, 16, 64), FRAMES)
    assert adapted.shape == (4, FRAMES, model.config.d_model)


def test_interpolation_keeps_a_constant_feature_constant() -> None:
    model = make_model(feature_dims=[8], feature_layers=[0])
    randomise_adapters(model)
    feature = torch.randn(2, 1, 8).expand(2, 5, 8)
    adapted = model.adapters[0](feature, 17)
    assert torch.allclose(adapted, adapted[:, :1].expand_as(adapted), atol=1e-6)


def test_wrong_feature_count_or_width_is_refused() -> None:
    model = make_model(feature_dims=[64, 128], feature_layers=[0, 1])
    x_t, timesteps, labels = make_inputs()
    with pytest.raises(ValueError, match="feature 1 must be"):
        model(x_t, timesteps, labels, features=[torch.randn(4, 16, 64), torch.randn(4, 8, 64)])
    with pytest.raises(ValueError, match="2 injected features, got 1"):
        model(x_t, timesteps, labels, features=[torch.randn(4, 16, 64)])


def test_wrong_motion_shape_is_refused() -> None:
    model = make_model()
    _, timesteps, labels = make_inputs()
    with pytest.raises(ValueError, match=r"x_t \[B, T, 20, 3\]"):
        model(torch.randn(4, FRAMES, 24, 6), timesteps, labels)
    with pytest.raises(ValueError, match="max_frames"):
        model(torch.randn(4, 500, JOINTS, CHANNELS), timesteps, labels)


def test_guidance_scale_one_is_conditional_and_zero_is_unconditional() -> None:
    model = make_model(feature_dims=[32], feature_layers=[1]).eval()
    randomise_adapters(model)
    x_t, timesteps, labels = make_inputs()
    mask = torch.ones(4, FRAMES, dtype=torch.bool)
    mask[1, 40:] = False
    features = [torch.randn(4, 10, 32)]
    with torch.no_grad():
        cond = model(x_t, timesteps, labels, mask=mask, features=features)
        uncond = model(x_t, timesteps, labels, mask=mask, features=features, force_uncond=True)
        assert not torch.allclose(cond, uncond)
        assert torch.allclose(model.forward_with_cfg(x_t, timesteps, labels, 1.0, mask=mask, features=features),
                              cond, atol=1e-5)
        assert torch.allclose(model.forward_with_cfg(x_t, timesteps, labels, 0.0, mask=mask, features=features),
                              uncond, atol=1e-5)
        guided = model.forward_with_cfg(x_t, timesteps, labels, 2.5, mask=mask, features=features)
        assert torch.allclose(guided, uncond + 2.5 * (cond - uncond), atol=1e-4)


def test_style_guidance_acts_on_each_condition_apart() -> None:
    model = make_model(num_styles=3).eval()
    x_t, timesteps, labels = make_inputs()
    styles = torch.tensor([0, 2, 1, 0])
    with torch.no_grad():
        both = model(x_t, timesteps, labels, styles=styles)
        class_only = model(x_t, timesteps, labels)
        neither = model(x_t, timesteps, labels, styles=styles, force_uncond=True)
        assert not torch.allclose(both, class_only) and not torch.allclose(class_only, neither)
        assert torch.allclose(model.forward_with_cfg(x_t, timesteps, labels, 1.0, styles=styles), both, atol=1e-5)
        assert torch.allclose(model.forward_with_cfg(x_t, timesteps, labels, 1.0, styles=styles,
                                                     style_guidance_scale=0.0), class_only, atol=1e-5)
        guided = model.forward_with_cfg(x_t, timesteps, labels, 2.0, styles=styles, style_guidance_scale=3.0)
        expected = neither + 2.0 * (class_only - neither) + 3.0 * (both - class_only)
        assert torch.allclose(guided, expected, atol=1e-4)
        assert torch.allclose(model.forward_with_cfg(x_t, timesteps, labels, 2.0),
                              neither + 2.0 * (class_only - neither), atol=1e-4)


def test_style_dropout_is_drawn_apart_from_the_class_dropout() -> None:
    model = make_model(num_styles=3, dropout=0.0, cond_drop_prob=0.5, style_drop_prob=0.5)
    x_t, timesteps, labels = make_inputs(batch=64)
    styles = torch.randint(0, 3, (64,))
    torch.manual_seed(5)
    with torch.no_grad():
        trained = model.train()(x_t, timesteps, labels, styles=styles)
        model.eval()
        combinations = [model._denoise(x_t, timesteps, labels, torch.full((64,), null_class), None, None, None,
                                       styles, torch.full((64,), null_style))
                        for null_class in (False, True) for null_style in (False, True)]
    matches = torch.stack([(trained - reference).abs().flatten(1).amax(1) < 1e-4 for reference in combinations])
    assert bool((matches.sum(0) == 1).all())
    assert bool(matches.any(1).all())  # all four (class, style) x (kept, null) combinations occur


def test_styles_are_refused_by_a_model_without_a_style_condition() -> None:
    model = make_model()
    x_t, timesteps, labels = make_inputs()
    with pytest.raises(ValueError, match="without a style condition"):
        model(x_t, timesteps, labels, styles=torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="without a style condition"):
        model.forward_with_cfg(x_t, timesteps, labels, 2.0, styles=torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ConfigError, match="num_styles"):
        make_model(num_styles=-1)


def test_force_uncond_per_sample() -> None:
    model = make_model().eval()
    x_t, timesteps, labels = make_inputs()
    which = torch.tensor([True, False, True, False])
    with torch.no_grad():
        mixed = model(x_t, timesteps, labels, force_uncond=which)
        cond = model(x_t, timesteps, labels)
        uncond = model(x_t, timesteps, labels, force_uncond=True)
    assert torch.allclose(mixed[which], uncond[which], atol=1e-5)
    assert torch.allclose(mixed[~which], cond[~which], atol=1e-5)


def per_sample_match(out: torch.Tensor, first: torch.Tensor, second: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Which samples of ``out`` equal ``first`` / ``second``: two bool ``[B]``."""
    def close(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return ((a - b).abs().flatten(1).amax(1) < 1e-4)
    return close(out, first), close(out, second)


def test_condition_dropout_in_training_uses_the_null_class_per_sample() -> None:
    model = make_model(dropout=0.0, cond_drop_prob=0.5)
    x_t, timesteps, labels = make_inputs(batch=64, frames=12)
    torch.manual_seed(3)
    with torch.no_grad():
        trained = model.train()(x_t, timesteps, labels)
        cond = model.eval()(x_t, timesteps, labels)
        uncond = model(x_t, timesteps, labels, force_uncond=True)
    is_cond, is_uncond = per_sample_match(trained, cond, uncond)
    assert torch.all(is_cond ^ is_uncond)
    assert 10 < int(is_uncond.sum()) < 54


def test_feature_dropout_in_training_drops_whole_samples() -> None:
    model = make_model(dropout=0.0, cond_drop_prob=0.0, feature_drop_prob=0.5, feature_dims=[16], feature_layers=[0])
    randomise_adapters(model)
    x_t, timesteps, labels = make_inputs(batch=64, frames=12)
    features = [torch.randn(64, 6, 16)]
    torch.manual_seed(4)
    with torch.no_grad():
        trained = model.train()(x_t, timesteps, labels, features=features)
        with_features = model.eval()(x_t, timesteps, labels, features=features)
        without = model(x_t, timesteps, labels)
    kept, dropped = per_sample_match(trained, with_features, without)
    assert torch.all(kept ^ dropped)
    assert 10 < int(dropped.sum()) < 54


def test_paper_preset_matches_published_size() -> None:
    config = denoiser_preset("paper", num_joints=24, num_channels=6, num_classes=12)
    model = MotionDenoiser(config)
    d, ff, frame = 512, 1024, 24 * 6
    per_layer = (3 * d * d + 3 * d) + (d * d + d) + (d * ff + ff) + (ff * d + d) + 2 * 2 * d
    expected = (8 * per_layer + 2 * (d * d + d) + 13 * d + (frame * d + d) + (d * frame + frame))
    assert count_parameters(model) == expected == 17_502_352
    assert (config.num_layers, config.d_model, config.num_heads, config.ff_dim) == (8, 512, 4, 1024)


def test_preset_refusals() -> None:
    with pytest.raises(ConfigError, match="unknown denoiser preset"):
        denoiser_preset("huge", num_joints=20, num_channels=3, num_classes=10)
    with pytest.raises(ConfigError, match="needs num_classes"):
        denoiser_preset("cpu", num_joints=20, num_channels=3)
    with pytest.raises(ConfigError, match="unknown key"):
        denoiser_preset("cpu", num_joints=20, num_channels=3, num_classes=10, d_modle=128)
    with pytest.raises(ConfigError, match="feature_layers"):
        denoiser_preset("tiny", num_joints=20, num_channels=3, num_classes=10, feature_dims=[8], feature_layers=[2])
    with pytest.raises(ConfigError, match="feature_dims has 2 entries"):
        denoiser_preset("tiny", num_joints=20, num_channels=3, num_classes=10, feature_dims=[8, 8],
                        feature_layers=[0])
    with pytest.raises(ConfigError, match="divisible"):
        denoiser_preset("tiny", num_joints=20, num_channels=3, num_classes=10, num_heads=3)
