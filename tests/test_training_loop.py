"""The shared epoch loop: early stopping, log rows of running means, exact resume of the batch
order and augmentations, and the small helpers (refusals, atomic folder replacement)."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from mdm.data.transforms import ClipPipelineConfig
from mdm.errors import ConfigError
from mdm.training.logs import read_csv
from imdm.training.cotrain import CoTrainConfig, CoTrainer
from mdm.config import merge
from mdm.training.loop import (
    EpochTrainer,
    RunningMeans,
    check_finite,
    check_log_with,
    replace_folder,
    steps_per_epoch,
)
from toy_data import toy_archive, toy_dataset

BATCH = 3  # 9 training clips: 3 steps an epoch


@dataclass
class LoopConfig:
    log_every: int = 2
    log_with: str = "none"


class RecordingTrainer(EpochTrainer):
    """Trains nothing: records every batch (clip indices and augmented motion) in ``state.extra``."""

    progress_label = "test"

    def __init__(self, output_dir: Path, epochs: int, stop_after_epochs: int) -> None:
        super().__init__(LoopConfig(), output_dir, progress=False, mixed_precision="no", seed=0)
        dataset = toy_dataset(clips_per_class=4)
        self.train_set = dataset.split_subset("train")
        self.val_set = self.test_set = dataset.split_subset("test")
        self.total_steps = epochs * steps_per_epoch(len(self.train_set), BATCH)
        self.stop_after_epochs = stop_after_epochs
        pipeline = ClipPipelineConfig(num_frames=8, window_range=(0.5, 1.0), scale_range=(0.8, 1.2))
        self.make_train_loader(self.train_set, pipeline, BATCH, seed=3, num_workers=0)
        self.state.extra = {"seen": [], "validated": []}

    def checkpoint_objects(self) -> dict[str, Any]:
        return {"models": {}, "optimizers": {}, "schedulers": {}, "emas": {}}

    def model_sizes(self) -> str:
        return "no model"

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        self.state.extra["seen"].append([*batch["index"].tolist(), float(batch["motion"].sum())])
        return {"index_sum": float(batch["index"].sum()), "train_acc": 1.0}

    def end_of_epoch(self, epoch: int) -> bool:
        self.state.extra["validated"].append(epoch)
        return len(self.state.extra["validated"]) >= self.stop_after_epochs

    def finish(self) -> dict[str, Any]:
        (self.output_dir / "finished.txt").write_text(str(self.state.step))
        return {}


def test_early_stopping_ends_the_loop_and_the_log_holds_running_means(tmp_path: Path) -> None:
    trainer = RecordingTrainer(tmp_path / "run", epochs=4, stop_after_epochs=2)
    trainer.fit()
    assert trainer.state.step == 6 and trainer.state.extra["validated"] == [0, 1]
    assert (tmp_path / "run" / "finished.txt").read_text() == "6"
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("step_*")) == ["step_00000003",
                                                                                         "step_00000006"]
    rows = read_csv(tmp_path / "run" / "log.csv")
    assert [int(r["step"]) for r in rows] == [2, 4, 6]
    sums = [sum(batch[:BATCH]) for batch in trainer.state.extra["seen"]]
    for row, first in zip(rows, range(0, 6, 2)):
        assert float(row["train_index_sum"]) == pytest.approx((sums[first] + sums[first + 1]) / 2)
        assert float(row["train_acc"]) == 1.0 and int(row["epoch"]) == (first + 1) // 3  # epoch of step first + 2


def test_stopped_run_plus_resume_sees_the_same_batches_as_a_straight_run(tmp_path: Path) -> None:
    straight = RecordingTrainer(tmp_path / "straight", epochs=3, stop_after_epochs=99)
    straight.fit()
    RecordingTrainer(tmp_path / "halves", epochs=3, stop_after_epochs=99).fit(stop_at_step=4)
    assert not (tmp_path / "halves" / "finished.txt").exists()
    resumed = RecordingTrainer(tmp_path / "halves", epochs=3, stop_after_epochs=99)
    resumed.resume()
    assert (resumed.state.step, resumed.state.epoch) == (4, 1)
    resumed.fit()
    assert resumed.state.extra == straight.state.extra
    assert len(straight.state.extra["seen"]) == 9 and straight.state.extra["validated"] == [0, 1, 2]
    epochs = [straight.state.extra["seen"][i:i + 3] for i in (0, 3)]
    assert sorted(i for batch in epochs[0] for i in batch[:BATCH]) == list(range(9))
    assert epochs[0] != epochs[1]  # a new order and new augmentations each epoch
    steps = [int(r["step"]) for r in read_csv(tmp_path / "halves" / "log.csv") if r.get("train_acc")]
    assert steps == [2, 4, 6, 8]


def test_running_means_name_terms_and_start_anew() -> None:
    running = RunningMeans()
    running.add({"ce": 1.0, "train_acc": 0.5})
    running.add({"ce": 3.0, "train_acc": 1.0})
    assert running.pop() == {"train_ce": 2.0, "train_acc": 0.75}
    running.add({"ce": 5.0})
    assert running.pop() == {"train_ce": 5.0}


def test_refusals() -> None:
    assert steps_per_epoch(10, 4) == 2
    with pytest.raises(ConfigError, match="batch_size 8 exceeds the 5 training clips"):
        steps_per_epoch(5, 8)
    check_finite({"ce": 1.0}, 3)
    with pytest.raises(FloatingPointError, match="step 3"):
        check_finite({"ce": 1.0, "diffusion": float("nan")}, 3)


def test_replace_folder_swaps_in_the_new_folder_and_keeps_the_old_one_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")

    def write(folder: Path) -> None:
        folder.mkdir()
        (folder / "new.txt").write_text("new")

    replace_folder(write, target)
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]

    def fail(folder: Path) -> None:
        folder.mkdir()
        raise OSError("disk full")

    with pytest.raises(OSError):
        replace_folder(fail, target)
    assert (target / "new.txt").read_text() == "new"


def test_log_with_tensorboard_writes_event_files_beside_the_csv(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    archive = toy_archive(tmp_path / "toy.npz", clips_per_class=8)
    config = merge(CoTrainConfig(), {"data": {"name": "archive", "root": str(archive)}, "pipeline": {"num_frames": 16},
                                     "recognizer": {"preset": "tiny"}, "generator": {"enabled": False},
                                     "batch_size": 4, "epochs": 2, "log_every": 1, "log_with": "tensorboard"})
    run = CoTrainer(config, tmp_path / "run", progress=False).fit()
    events = list((run / "tensorboard").rglob("events.out.tfevents.*"))
    assert events
    accumulator = EventAccumulator(str(events[0].parent))
    accumulator.Reload()
    assert {"train_ce", "val_top1"} <= set(accumulator.Tags()["scalars"])
    assert len(accumulator.Scalars("train_ce")) == sum(1 for row in read_csv(run / "log.csv") if row["train_ce"])


def test_an_unknown_tracker_is_refused() -> None:
    with pytest.raises(ConfigError, match="log_with must be 'none' or 'tensorboard'"):
        check_log_with("wandb")
