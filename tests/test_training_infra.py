"""Checkpoints resume exactly, EMA averages, CSV logs survive a resume."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mdm.errors import UserError
from mdm.training.checkpoint import TrainingState, latest_checkpoint, load_checkpoint, save_checkpoint
from mdm.training.ema import EMA
from mdm.training.logs import CSVLogger, plot_curves


def _make(seed: int) -> tuple[nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler, EMA]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.2), nn.Linear(8, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)
    return model, optimizer, scheduler, EMA(model, decay=0.9, warmup_steps=0)


def _train(model, optimizer, scheduler, ema, steps: int) -> None:
    for _ in range(steps):
        x = torch.randn(16, 4)
        loss = (model(x) - x.sum(1, keepdim=True)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        ema.update(model)


def test_half_run_plus_resume_equals_straight_run(tmp_path: Path) -> None:
    straight = _make(0)
    torch.manual_seed(1)
    _train(*straight, steps=10)

    first = _make(0)
    torch.manual_seed(1)
    _train(*first, steps=5)
    model, optimizer, scheduler, ema = first
    save_checkpoint(tmp_path, models={"net": model}, optimizers={"net": optimizer}, schedulers={"net": scheduler},
                    emas={"net": ema}, state=TrainingState(step=5, extra={"best": 0.5}), config={"a": 1})
    torch.manual_seed(12345)  # whatever happens after the save must not matter

    resumed = _make(7)
    model2, optimizer2, scheduler2, ema2 = resumed
    state = load_checkpoint(latest_checkpoint(tmp_path), models={"net": model2}, optimizers={"net": optimizer2},
                            schedulers={"net": scheduler2}, emas={"net": ema2})
    assert state.step == 5 and state.extra == {"best": 0.5}
    _train(*resumed, steps=5)
    for a, b in zip(straight[0].state_dict().values(), model2.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(straight[3].state_dict().values(), ema2.state_dict().values()):
        assert torch.equal(a, b)
    assert straight[2].get_last_lr() == scheduler2.get_last_lr()


def test_checkpoints_are_pruned_and_latest_is_atomic(tmp_path: Path) -> None:
    model, optimizer, scheduler, ema = _make(0)
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, models={"m": model}, optimizers={}, schedulers={}, emas={},
                        state=TrainingState(step=step), config={}, keep_last=2)
    assert sorted(p.name for p in tmp_path.glob("step_*")) == ["step_00000002", "step_00000003"]
    assert latest_checkpoint(tmp_path).name == "step_00000003"
    assert not list(tmp_path.glob(".*tmp"))
    with pytest.raises(UserError, match="no checkpoint"):
        latest_checkpoint(tmp_path / "empty")


def test_ema_tracks_a_constant_model_and_lags_a_moving_one() -> None:
    model = nn.Linear(3, 1)
    ema = EMA(model, decay=0.5, warmup_steps=0)
    with torch.no_grad():
        start = model.weight.clone()
        model.weight.add_(1.0)
    ema.update(model)
    assert torch.allclose(ema.model.weight, start + 0.5)
    for _ in range(30):
        ema.update(model)
    assert torch.allclose(ema.model.weight, model.weight, atol=1e-6)
    assert not any(p.requires_grad for p in ema.model.parameters())


def test_csv_logger_merges_columns_truncates_on_resume_and_plots(tmp_path: Path) -> None:
    logger = CSVLogger(tmp_path / "log.csv")
    for step in range(1, 6):
        logger.log({"step": step, "loss": 1.0 / step})
    logger.log({"step": 5, "val_loss": 0.3})
    resumed = CSVLogger(tmp_path / "log.csv")
    assert len(resumed.rows) == 6
    resumed.truncate_after(3)
    assert [int(r["step"]) for r in CSVLogger(tmp_path / "log.csv").rows] == [1, 2, 3]
    png = plot_curves(tmp_path / "log.csv", tmp_path / "curves.png", {"loss": ["loss", "val_loss"]})
    assert png.stat().st_size > 1000
    assert np.isclose(float(resumed.rows[1]["loss"]), 0.5)
