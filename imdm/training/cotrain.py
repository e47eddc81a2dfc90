"""Co-training the recognizer (I-MDM) and the motion diffusion model (MDM) on one Accelerator.

Per batch: the recognizer's cross-entropy (label smoothing) plus a weighted batch-hard triplet
loss on its pooled features, and the diffusion loss of the generator conditioned on the action
and on the recognizer's per-stage features (gradient flows from the generator into the
recognizer unless ``generator.detach_features``). One backward; two optimizers, two schedules.

Each epoch: validation top-1 of the (EMA) recognizer and validation diffusion loss of the (EMA)
generator on the validation split; the best generator by validation loss is kept, and the
recognizer kept is chosen by ``selection``: ``best_val``, the best by validation top-1 (ties: lower
validation cross-entropy), with early stopping on top-1; or ``last``, the EMA recognizer at the end
of the whole schedule (no early stopping). At the end the kept recognizer is evaluated once on the
test split. ``train_on_validation`` (with ``last``) trains on the validation clips too, a final refit
once the recipe is fixed.

Run folder::

    config.yaml  checkpoints/  log.csv  curves.png
    recognizer/  generator/                 kept models, ready for recognize.py / sampling
    metrics.json  per_class_accuracy.csv  confusion_matrix.png  summary.txt
    samples_per_class.npz  samples_per_class.mp4   one generated clip per class
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from imdm.augment import InputDropConfig, drop_inputs
from imdm.bundle import RecognizerSpec, TrainedRecognizer
from imdm.consistency import twin_consistency_loss
from imdm.models.recognizer import Recognizer, recognizer_preset
from imdm.triplet import pooled_triplet_loss
from mdm.data.archive import write_archive
from mdm.data.dataset import MotionDataset
from mdm.data.sources import DataConfig, load_training_data
from mdm.data.splits import performance_groups
from mdm.data.transforms import ClipPipelineConfig, recognition_pipeline
from mdm.errors import ConfigError
from mdm.evaluation.metrics import plot_confusion
from mdm.generator import DiffusionConfig, MotionGenerator, SamplingConfig, generator_spec_for, samples_to_dataset
from mdm.losses import DiffusionLossWeights
from mdm.models.denoiser import MotionDenoiser, count_parameters, denoiser_preset
from mdm.render import check_video_path, render_video
from mdm.representation import PositionRepresentation
from mdm.training.checkpoint import TrainingState
from mdm.training.ema import EMA
from mdm.training.logs import plot_curves
from mdm.training.loop import EpochTrainer, check_mixed_precision, make_eval_loader, replace_folder, steps_per_epoch
from mdm.training.mdm_trainer import fit_feature_stats, single_person
from mdm.training.objective import DiffusionObjective
from mdm.training.optim import OptimConfig, make_optimizer

logger = logging.getLogger("imdm.cotrain")
VALIDATION_SEED = 1234
SAMPLES_VIDEO = "samples_per_class.mp4"
"""The run folder's video of one generated clip per class (checked writable before training)."""
SELECTIONS = {
    "best_val": "EMA recognizer with the best validation top-1 (ties: lower validation cross-entropy)",
    "last": "EMA recognizer at the end of the schedule",
}
"""How the kept recognizer is chosen (``CoTrainConfig.selection``), as written to metrics.json."""


@dataclass
class RecognizerSection:
    """The recognizer and its losses."""

    preset: str = "default"
    overrides: dict[str, Any] = field(default_factory=dict)
    label_smoothing: float = 0.1
    triplet_weight: float = 0.5
    triplet_margin: float = 0.3
    triplet_layers: list[int] = field(default_factory=lambda: [-1])
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-3, weight_decay=0.05, warmup_steps=100))
    ema_decay: float = 0.98
    input_drop: InputDropConfig = field(default_factory=InputDropConfig)
    """Occlusions of the recognizer's training input (:func:`imdm.augment.drop_inputs`); off by default."""
    init_from: str | None = None
    """A trained recognizer (its folder, or a run folder holding ``recognizer/``) whose weights start
    training, e.g. to fine-tune on real clips after training on synthetic ones; same architecture."""


@dataclass
class GeneratorSection:
    """The diffusion model trained alongside; ``enabled: false`` trains the recognizer alone."""

    enabled: bool = True
    preset: str = "cpu"
    overrides: dict[str, Any] = field(default_factory=dict)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    loss: DiffusionLossWeights = field(default_factory=lambda: DiffusionLossWeights(velocity=1.0))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=4e-4, warmup_steps=100))
    weight: float = 1.0
    feature_stages: list[int] | None = None
    detach_features: bool = False
    ema_decay: float = 0.995


@dataclass
class CoTrainConfig:
    """Everything a co-training run needs (saved as the run's ``config.yaml``)."""

    data: DataConfig = field(default_factory=DataConfig)
    pipeline: ClipPipelineConfig = field(default_factory=recognition_pipeline)
    recognizer: RecognizerSection = field(default_factory=RecognizerSection)
    generator: GeneratorSection = field(default_factory=GeneratorSection)
    batch_size: int = 64
    epochs: int = 60
    patience: int = 25
    selection: str = "last"
    balanced: bool = False
    view_pairs: bool = False
    """Keep the views of one performance (clip ids differing only by a view tag such as ``_v01``)
    in one batch, and take an anchor's triplet positive from its own performance seen from
    another view where the batch holds one (:func:`imdm.triplet.group_positives`)."""
    view_consistency: float = 0.0
    """Weight of the cross-view consistency loss (needs ``view_pairs``): each clip's predicted class
    distribution is pulled towards its other view's (:func:`imdm.consistency.twin_consistency_loss`)."""
    train_on_validation: bool = False
    """Train on the validation clips as well: the final refit once a recipe has been fixed (on
    view folds, or by earlier runs' validation). Needs ``selection: last``, since the validation
    figures are then taken on clips the models were trained on; the test split is untouched."""
    mixed_precision: str = "no"
    seed: int = 0
    num_workers: int = 0
    log_every: int = 10
    render_samples: bool = True

    def __post_init__(self) -> None:
        check_mixed_precision(self.mixed_precision)
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise ConfigError("epochs, batch_size and patience must be positive")
        if self.view_pairs and self.balanced:
            raise ConfigError("view_pairs and balanced cannot both be on: a class-balanced draw does not keep views together")
        if self.view_consistency < 0 or (self.view_consistency > 0 and not self.view_pairs):
            raise ConfigError("view_consistency must be >= 0, and needs view_pairs=true (it compares the views in a batch)")
        if self.selection not in SELECTIONS:
            raise ConfigError(f"selection must be one of {list(SELECTIONS)}, got {self.selection!r}")
        if self.train_on_validation and self.selection != "last":
            raise ConfigError("train_on_validation needs selection=last: validation clips that are trained on "
                              "cannot choose the recognizer")


class CoTrainer(EpochTrainer):
    """Co-trains a :class:`Recognizer` and (optionally) a :class:`MotionDenoiser`."""

    logger = logger
    progress_label = "co-train"
    postfix_terms = ("ce", "diffusion", "train_acc")

    def __init__(self, config: CoTrainConfig, output_dir: str | Path, *, progress: bool = True,
                 dataset: MotionDataset | None = None, sample_weights: np.ndarray | None = None) -> None:
        super().__init__(config, output_dir, progress=progress, mixed_precision=config.mixed_precision,
                         seed=config.seed)
        if config.generator.enabled and config.render_samples:  # refuse an unwritable video now, not after training
            check_video_path(self.output_dir / SAMPLES_VIDEO)
        dataset = dataset if dataset is not None else load_training_data(config.data)
        self.dataset = dataset
        # Clips trained on (bool [N], aligned with `dataset`): the train split, and with
        # train_on_validation the validation split too.
        in_training = np.isin(dataset.split, ("train", "val") if config.train_on_validation else ("train",))
        self.train_set = dataset.subset(np.flatnonzero(in_training))
        self.val_set = dataset.split_subset("val")
        self.test_set = dataset.split_subset("test")
        if config.train_on_validation:
            logger.warning("train_on_validation: the %d validation clips are trained on, so validation figures "
                           "are not held out", len(self.val_set))
        # Performance of each training clip (int64 [N]) when batches keep the views of one together.
        self.train_groups = torch.as_tensor(performance_groups(self.train_set.clip_ids)) if config.view_pairs else None
        if self.train_groups is not None:
            paired = int((torch.bincount(self.train_groups)[self.train_groups] > 1).sum())
            if paired == 0:
                raise ConfigError("view_pairs: no two training clips show one performance "
                                  "(clip ids that differ only by a view tag such as _v01)")
            logger.info("view pairs: %d of %d training clips share their performance with another view",
                        paired, len(self.train_groups))
        # Per-clip weights of the cross-entropy (e.g. synthetic clips of a mixed dataset), aligned with `dataset`.
        self.train_weights = (None if sample_weights is None else
                              torch.as_tensor(np.asarray(sample_weights, np.float32)[in_training]))
        skeleton = dataset.skeleton
        recognizer_config = recognizer_preset(
            config.recognizer.preset,
            **{"num_joints": skeleton.num_joints, "in_channels": 3, "num_classes": dataset.num_classes,
               "num_frames": config.pipeline.num_frames, "num_persons": dataset.num_persons,
               "parents": tuple(skeleton.parents), **config.recognizer.overrides},
        )
        recognizer = Recognizer(recognizer_config)
        if config.recognizer.init_from:
            start = TrainedRecognizer.load(config.recognizer.init_from)
            if start.spec.model != recognizer_config:
                differences = {name: (value, getattr(recognizer_config, name))
                               for name, value in vars(start.spec.model).items()
                               if value != getattr(recognizer_config, name)}
                raise ConfigError(f"recognizer.init_from {config.recognizer.init_from}: its architecture differs "
                                  f"from this run's (theirs, ours): {differences}")
            if list(start.spec.class_names) != list(dataset.class_names):
                raise ConfigError(f"recognizer.init_from {config.recognizer.init_from}: its classes "
                                  f"{start.spec.class_names} differ from the data's {list(dataset.class_names)}")
            recognizer.load_state_dict(start.model.state_dict())
        self.recognizer_spec = RecognizerSpec(model=recognizer_config, pipeline=config.pipeline,
                                              class_names=list(dataset.class_names),
                                              joint_names=list(skeleton.joint_names), skeleton_name=skeleton.name,
                                              source=dataset.source)
        self.recognizer_ema = EMA(recognizer, decay=config.recognizer.ema_decay, warmup_steps=20)
        self.total_steps = config.epochs * steps_per_epoch(len(self.train_set), config.batch_size)
        rec_optimizer, rec_schedule = make_optimizer(recognizer.parameters(), config.recognizer.optim, self.total_steps)
        models: list[Any] = [recognizer, rec_optimizer, rec_schedule]

        self.generator_enabled = config.generator.enabled
        if self.generator_enabled:
            gen = config.generator
            generator_data = single_person(self.train_set)
            representation = PositionRepresentation(skeleton)
            stats = fit_feature_stats(generator_data, config.pipeline, representation)
            stages = gen.feature_stages if gen.feature_stages is not None else list(range(len(recognizer.feature_dims)))
            self.feature_stages = stages
            denoiser_base = denoiser_preset(gen.preset, num_joints=representation.num_slots, num_channels=3,
                                            num_classes=dataset.num_classes, **gen.overrides)
            layers = [min(denoiser_base.num_layers - 1, i * denoiser_base.num_layers // len(stages))
                      for i in range(len(stages))]
            denoiser_config = denoiser_preset(
                gen.preset, num_joints=representation.num_slots, num_channels=3, num_classes=dataset.num_classes,
                **{"feature_dims": [recognizer.feature_dims[s] for s in stages], "feature_layers": layers,
                   **gen.overrides})
            denoiser = MotionDenoiser(denoiser_config)
            self.generator_spec = generator_spec_for(generator_data, denoiser_config, gen.diffusion,
                                                     config.pipeline.num_frames)
            self.denoiser_ema = EMA(denoiser, decay=gen.ema_decay)
            self.objective = DiffusionObjective(gen.diffusion.make_scheduler(), representation, stats, gen.loss)
            gen_optimizer, gen_schedule = make_optimizer(denoiser.parameters(), gen.optim, self.total_steps)
            models += [denoiser, gen_optimizer, gen_schedule]
        prepared = self.accelerator.prepare(*models)
        self.recognizer, self.rec_optimizer, self.rec_schedule = prepared[:3]
        self.recognizer_ema.model.to(self.accelerator.device)
        if self.generator_enabled:
            self.denoiser, self.gen_optimizer, self.gen_schedule = prepared[3:]
            self.denoiser_ema.model.to(self.accelerator.device)

        self.make_train_loader(self.train_set, config.pipeline, config.batch_size, config.seed,
                               num_workers=config.num_workers, balanced=config.balanced,
                               groups=None if self.train_groups is None else self.train_groups.numpy())
        self.val_loader = make_eval_loader(self.val_set, config.pipeline, config.batch_size)
        self.state = TrainingState(extra={"best_top1": -1.0, "best_val_ce": math.inf, "best_epoch": -1,
                                          "best_val_diffusion": math.inf, "stale_epochs": 0,
                                          "kept_epoch": -1, "kept_val_top1": -1.0})

    # ----------------------------------------------------------------- checkpoints
    def checkpoint_objects(self) -> dict[str, Any]:
        unwrap = self.accelerator.unwrap_model
        objects: dict[str, Any] = {
            "models": {"recognizer": unwrap(self.recognizer)},
            "optimizers": {"recognizer": self.rec_optimizer},
            "schedulers": {"recognizer": self.rec_schedule},
            "emas": {"recognizer": self.recognizer_ema},
        }
        if self.generator_enabled:
            objects["models"]["denoiser"] = unwrap(self.denoiser)
            objects["optimizers"]["denoiser"] = self.gen_optimizer
            objects["schedulers"]["denoiser"] = self.gen_schedule
            objects["emas"]["denoiser"] = self.denoiser_ema
        return objects

    # ----------------------------------------------------------------- steps
    def _features_for_generator(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        chosen = [features[s] for s in self.feature_stages]
        return [f.detach() for f in chosen] if self.config.generator.detach_features else chosen

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One optimisation step of both models; returns the loss terms."""
        config = self.config
        device = self.accelerator.device
        motion, mask, labels = batch["motion"].to(device), batch["mask"].to(device), batch["label"].to(device)
        self.recognizer.train()
        output = self.recognizer(drop_inputs(motion, config.recognizer.input_drop))
        if self.train_weights is None:
            cross_entropy = F.cross_entropy(output.logits.float(), labels,
                                            label_smoothing=config.recognizer.label_smoothing)
        else:
            weights = self.train_weights[batch["index"]].to(device)
            per_clip = F.cross_entropy(output.logits.float(), labels, reduction="none",
                                       label_smoothing=config.recognizer.label_smoothing)
            cross_entropy = (weights * per_clip).sum() / weights.sum()
        loss = cross_entropy
        terms = {"ce": cross_entropy.detach(), "train_acc": (output.logits.argmax(-1) == labels).float().mean()}
        if config.recognizer.triplet_weight > 0:
            groups = None if self.train_groups is None else self.train_groups[batch["index"]].to(device)
            triplet, stats = pooled_triplet_loss([p.float() for p in output.pooled], labels,
                                                 config.recognizer.triplet_layers, config.recognizer.triplet_margin,
                                                 groups=groups)
            loss = loss + config.recognizer.triplet_weight * triplet
            terms["triplet"] = triplet.detach()
            terms["triplet_active"] = stats["active_fraction"]
        if config.view_consistency > 0:
            consistency, _ = twin_consistency_loss(output.logits.float(), self.train_groups[batch["index"]].to(device))
            loss = loss + config.view_consistency * consistency
            terms["view_consistency"] = consistency.detach()
        if self.generator_enabled:
            self.denoiser.train()
            person = motion if motion.dim() == 4 else motion[:, 0]
            x0 = self.objective.features(person)
            diffusion, _ = self.objective(self.denoiser, x0, mask, labels,
                                          features=self._features_for_generator(output.features))
            loss = loss + config.generator.weight * diffusion
            terms["diffusion"] = diffusion.detach()
        self.rec_optimizer.zero_grad(set_to_none=True)
        if self.generator_enabled:
            self.gen_optimizer.zero_grad(set_to_none=True)
        self.accelerator.backward(loss)
        if config.recognizer.optim.grad_clip > 0:
            self.accelerator.clip_grad_norm_(self.recognizer.parameters(), config.recognizer.optim.grad_clip)
        self.rec_optimizer.step()
        self.rec_schedule.step()
        self.recognizer_ema.update(self.accelerator.unwrap_model(self.recognizer))
        if self.generator_enabled:
            if config.generator.optim.grad_clip > 0:
                self.accelerator.clip_grad_norm_(self.denoiser.parameters(), config.generator.optim.grad_clip)
            self.gen_optimizer.step()
            self.gen_schedule.step()
            self.denoiser_ema.update(self.accelerator.unwrap_model(self.denoiser))
        return {k: float(v) for k, v in terms.items()}

    @torch.no_grad()
    def validation_diffusion_loss(self) -> float:
        """Mean denoising loss of the EMA generator on validation clips, fixed noise, with the
        EMA recognizer's features."""
        generator = torch.Generator().manual_seed(VALIDATION_SEED)
        total, count = 0.0, 0
        for batch in self.val_loader:
            motion = batch["motion"].to(self.accelerator.device)
            labels = batch["label"].to(self.accelerator.device)
            features = self.recognizer_ema.model(motion).features
            person = motion if motion.dim() == 4 else motion[:, 0]
            loss, _ = self.objective(self.denoiser_ema.model, self.objective.features(person),
                                     batch["mask"].to(self.accelerator.device), labels,
                                     features=[features[s] for s in self.feature_stages], generator=generator)
            total += float(loss) * len(labels)
            count += len(labels)
        return total / max(count, 1)

    # ----------------------------------------------------------------- epochs
    def model_sizes(self) -> str:
        unwrap = self.accelerator.unwrap_model
        sizes = f"recognizer {count_parameters(unwrap(self.recognizer)):,} parameters"
        if self.generator_enabled:
            sizes += f", denoiser {count_parameters(unwrap(self.denoiser)):,} parameters"
        return sizes

    def end_of_epoch(self, epoch: int) -> bool:
        """Validate, keep the best models, decide on early stopping (True = stop)."""
        extra = self.state.extra
        logits, val_ce = self.predict(self.val_set, self.recognizer_ema.model)
        top1 = float(np.mean(logits.argmax(1) == self.val_set.labels))
        row: dict[str, Any] = {"step": self.state.step, "epoch": epoch + 1, "val_top1": top1, "val_ce": val_ce}
        main = self.accelerator.is_main_process
        improved = self.record_top1(epoch, top1, val_ce)
        keep_last = self.config.selection == "last"
        if improved or keep_last:
            extra.update(kept_epoch=epoch + 1, kept_val_top1=top1)
            if main:
                self._save_recognizer()
        if self.generator_enabled:
            val_diffusion = self.validation_diffusion_loss()
            row["val_diffusion"] = val_diffusion
            if val_diffusion < extra["best_val_diffusion"]:
                extra["best_val_diffusion"] = val_diffusion
                if main:
                    self._save_generator()
        if self.log is not None:
            self.log.log(row)
        logger.info("epoch %d: val top-1 %.4f (best %.4f at epoch %d)%s", epoch + 1, top1, extra["best_top1"],
                    extra["best_epoch"],
                    f", val diffusion {row['val_diffusion']:.4f}" if "val_diffusion" in row else "")
        return not keep_last and self.patience_exhausted(self.config.patience)

    def _save_recognizer(self) -> None:
        replace_folder(TrainedRecognizer(self.recognizer_spec, self.recognizer_ema.model).save,
                       self.output_dir / "recognizer")

    def _save_generator(self) -> None:
        replace_folder(MotionGenerator(self.generator_spec, self.denoiser_ema.model, self.objective.stats).save,
                       self.output_dir / "generator")

    # ----------------------------------------------------------------- reports
    def finish(self) -> dict[str, Any]:
        """Evaluate the best recognizer on the test split (the only time test data is read) and
        write metrics.json, per_class_accuracy.csv, confusion_matrix.png, curves.png, summary.txt
        and, with a generator, one generated clip per class (archive and video)."""
        out = self.output_dir
        report = self.test_report(TrainedRecognizer.load(out / "recognizer", device=self.accelerator.device).model)
        extra = self.state.extra
        metrics = {
            "dataset": self.config.data.name,
            "source": self.dataset.source,
            "seed": self.config.seed,
            "steps": self.state.step,
            "epochs_run": self.state.step // len(self.sampler),
            "selection": SELECTIONS[self.config.selection],
            "train_on_validation": self.config.train_on_validation,
            "kept_epoch": extra["kept_epoch"],
            "val_top1": extra["kept_val_top1"],
            "best_epoch": extra["best_epoch"],
            "best_val_top1": extra["best_top1"],
            "test": report,
        }
        if self.generator_enabled:
            metrics["best_val_diffusion"] = extra["best_val_diffusion"]
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        with (out / "per_class_accuracy.csv").open("w") as file:
            file.write("class,accuracy,clips\n")
            matrix = np.array(report["confusion_matrix"])
            for name, acc, total in zip(self.dataset.class_names, report["per_class_accuracy"].values(), matrix.sum(1)):
                file.write(f"{name},{'' if acc is None else f'{acc:.4f}'},{total}\n")
        plot_confusion(np.array(report["confusion_matrix"]), self.dataset.class_names, out / "confusion_matrix.png",
                       title=f"test top-1 {report['top1']:.1%}")
        if (out / "log.csv").is_file():
            panels = {"recognizer loss": ["train_ce", "val_ce", "train_triplet"],
                      "accuracy": ["train_acc", "val_top1"]}
            if self.generator_enabled:
                panels["diffusion loss"] = ["train_diffusion", "val_diffusion"]
            plot_curves(out / "log.csv", out / "curves.png", panels)
        if self.generator_enabled and self.config.render_samples:
            self._sample_per_class()
        summary = self.summary(metrics)
        (out / "summary.txt").write_text(summary)
        print(summary)
        return metrics

    def _sample_per_class(self) -> None:
        """One generated clip per class (50 DDIM steps, no guidance) as an archive and a grid video."""
        generator = MotionGenerator.load(self.output_dir / "generator", device=self.accelerator.device)
        labels = torch.arange(len(generator.spec.class_names))
        motion = generator.generate(labels, SamplingConfig(steps=50), generator=torch.Generator().manual_seed(0))
        dataset = samples_to_dataset(motion.cpu().numpy(), labels.numpy(), generator.spec, generator.skeleton,
                                     f"synthetic:mdm run={self.output_dir} steps=50 ddim")
        write_archive(dataset, self.output_dir / "samples_per_class.npz")
        columns = math.ceil(math.sqrt(len(labels)))
        render_video(list(motion.cpu().numpy()), generator.skeleton, self.output_dir / SAMPLES_VIDEO,
                     fps=generator.spec.fps, titles=list(generator.spec.class_names),
                     grid=(columns, math.ceil(len(labels) / columns)))

    def summary(self, metrics: dict[str, Any]) -> str:
        test = metrics["test"]
        lines = [
            f"run: {self.output_dir}",
            f"data: {self.config.data.name} ({len(self.train_set)} train / {len(self.val_set)} val / "
            f"{len(self.test_set)} test clips)"
            + (" - validation clips trained on (train_on_validation)" if self.config.train_on_validation else ""),
            f"steps: {metrics['steps']} ({metrics['epochs_run']} epochs); recognizer kept: epoch "
            f"{metrics['kept_epoch']} ({metrics['selection']})",
            f"validation top-1: {metrics['val_top1']:.2%} (best {metrics['best_val_top1']:.2%} at epoch "
            f"{metrics['best_epoch']})",
            f"TEST top-1: {test['top1']:.2%}   top-5: {test['top5']:.2%}",
            "per class: " + ", ".join(f"{k} {'-' if v is None else f'{v:.0%}'}"
                                      for k, v in test["per_class_accuracy"].items()),
        ]
        if self.generator_enabled:
            lines.append(f"generator: best validation diffusion loss {metrics['best_val_diffusion']:.4f}")
        return "\n".join(lines) + "\n"


def cotrain(config: CoTrainConfig, output_dir: str | Path, *, resume: bool = False,
            max_minutes: float | None = None, progress: bool = True) -> Path:
    """Run (or, with ``resume``, continue) co-training in ``output_dir``."""
    trainer = CoTrainer(config, output_dir, progress=progress)
    if resume:
        trainer.resume()
    return trainer.fit(max_minutes)
