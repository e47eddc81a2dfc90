"""Co-training the recognizer (I-MDM) and the motion diffusion model (MDM) on one Accelerator.

Per batch: the recognizer's cross-entropy (label smoothing) plus a weighted batch-hard triplet
loss on its pooled features, and the diffusion loss of the generator conditioned on the action
and on the recognizer's per-stage features (gradient flows from the generator into the
recognizer unless ``generator.detach_features``). One backward; two optimizers, two schedules.
The skeleton–text alignment (``recognizer.text_weight``, :mod:`imdm.text_alignment`), training-only, adds its
loss where switched on.

Each epoch: validation top-1 of the (EMA) recognizer and validation diffusion loss of the (EMA)
generator on the validation split; the best generator by validation loss is kept, and the
recognizer kept is the EMA recognizer at the end of the whole schedule (on small validation splits
the last EMA model beats a pick by validation top-1). At the end it is evaluated once on the test
split. ``train_on_validation`` trains on the validation clips too, a final refit once the recipe is
fixed.

What is trained is built in :mod:`imdm.training.building` (the splits, the recognizer, the
generator); this module holds the settings and the loop.

Run folder::

    config.yaml  checkpoints/  log.csv  curves.png
    class_texts.safetensors                 class-text embeddings (with the alignment loss), computed once
    recognizer/  generator/                 kept models, ready for recognize.py / sampling
    metrics.json  per_class_accuracy.csv  confusion_matrix.png  summary.txt
    scores.npz                              the kept recognizer's logits on validation and test
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
from imdm.bundle import TrainedRecognizer
from imdm.models.recognizer import RecognizerOutput
from imdm.text_alignment import TextAlignment
from imdm.training.building import GeneratorPart, TrainingSplits, build_recognizer, run_text_embeddings
from imdm.triplet import pooled_triplet_loss
from mdm.data.archive import write_archive
from mdm.data.dataset import MotionDataset
from mdm.data.sources import DataConfig, load_training_data
from mdm.data.transforms import ClipPipelineConfig, recognition_pipeline
from mdm.errors import ConfigError
from mdm.evaluation.metrics import plot_confusion
from mdm.generator import DiffusionConfig, MotionGenerator, SamplingConfig, samples_to_dataset
from mdm.losses import DiffusionLossWeights
from mdm.model_folder import write_model_card
from mdm.models.denoiser import count_parameters
from mdm.render import check_video_path, render_video
from mdm.training.checkpoint import TrainingState
from mdm.training.logs import plot_curves
from mdm.training.loop import EpochTrainer, check_mixed_precision, make_eval_loader, replace_folder, steps_per_epoch
from mdm.training.optim import OptimConfig, OptimisedModel

logger = logging.getLogger("imdm.cotrain")
VALIDATION_SEED = 1234
SAMPLES_VIDEO = "samples_per_class.mp4"
"""The run folder's video of one generated clip per class (checked writable before training)."""
SCORES_FILE = "scores.npz"
"""The run folder's validation and test logits of the kept recognizer."""
RECOGNIZER_KEPT = "EMA recognizer at the end of the schedule"
"""Which recognizer a run keeps, as written to metrics.json."""


@dataclass
class RecognizerSection:
    """The recognizer and its losses.

    Attributes:
        preset: recognizer size (:data:`imdm.models.recognizer.PRESETS`: ``tiny``, ``default``, ``paper``).
        overrides: fields of the preset's architecture replaced, e.g. ``{joint_stages: 2}``
            (:class:`imdm.models.recognizer.RecognizerConfig`; unknown names are refused).
        label_smoothing: of the cross-entropy.
        triplet_weight: weight of the batch-hard triplet loss on pooled features (0 turns it off).
        triplet_margin: its margin, on L2-normalised features.
        triplet_layers: the stages whose pooled features it is computed on (-1: the last).
        optim: AdamW settings of the recognizer.
        ema_decay: decay of the recognizer's weight average (the model kept and evaluated).
        input_drop: occlusions of the recognizer's training input (:func:`imdm.augment.drop_inputs`); off by default.
        text_weight: weight of the skeleton–text alignment loss on the last stage's pooled feature
            (:mod:`imdm.text_alignment`; the class texts of ``data.texts`` or of the dataset); 0 turns it off.
    """

    preset: str = "default"
    overrides: dict[str, Any] = field(default_factory=dict)
    label_smoothing: float = 0.1
    triplet_weight: float = 0.5
    triplet_margin: float = 0.3
    triplet_layers: list[int] = field(default_factory=lambda: [-1])
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-3, weight_decay=0.05, warmup_steps=100))
    ema_decay: float = 0.98
    input_drop: InputDropConfig = field(default_factory=InputDropConfig)
    text_weight: float = 0.0


@dataclass
class GeneratorSection:
    """The diffusion model trained alongside.

    Attributes:
        enabled: false trains the recognizer alone (no generator, about twice as fast).
        preset: denoiser size (:data:`mdm.models.denoiser.PRESETS`: ``tiny``, ``cpu``, ``paper``).
        overrides: fields of the preset's denoiser replaced (:class:`mdm.models.denoiser.DenoiserConfig`).
        diffusion: the noise process.
        loss: weights of the diffusion loss's terms.
        optim: AdamW settings of the denoiser.
        weight: weight of the diffusion loss in the joint loss.
        feature_stages: the recognizer stages whose features condition the denoiser (null: all).
        detach_features: stop the diffusion loss's gradient from reaching the recognizer.
        ema_decay: decay of the denoiser's weight average (the model kept and sampled from).
    """

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
    """Everything a co-training run needs (saved as the run's ``config.yaml``). The settings that
    matter most come first; ``docs/config.md`` lists them all."""

    data: DataConfig = field(default_factory=DataConfig)
    epochs: int = 60
    """Passes over the training clips; the whole schedule always runs (no early stopping)."""
    batch_size: int = 64
    """Clips per optimisation step, over all processes together."""
    mixed_precision: str = "no"
    """``bf16`` pays on a GPU and on a CPU with AVX-512 BF16 or AMX; elsewhere it is slower."""
    seed: int = 0
    """Seeds the models' initialisation, the batch order and the augmentation."""
    train_on_validation: bool = False
    """Train on the validation clips as well: the final refit once a recipe has been fixed (on
    view folds, or by earlier runs' validation); validation figures are then taken on clips the
    models were trained on. The test split is untouched. ``run/train_ensemble.py`` sets it (its
    members fuse with equal weights, which need no held-out clips)."""
    view_pairs: bool = False
    """Keep the views of one performance (clip ids differing only by a view tag such as ``_v01``)
    in one batch, and take an anchor's triplet positive from its own performance seen from
    another view where the batch holds one (:func:`imdm.triplet.group_positives`)."""
    pipeline: ClipPipelineConfig = field(default_factory=recognition_pipeline)
    recognizer: RecognizerSection = field(default_factory=RecognizerSection)
    generator: GeneratorSection = field(default_factory=GeneratorSection)
    balanced: bool = False
    """Draw training clips with probability inverse to their class's frequency."""
    num_workers: int = 0
    """Data-loading worker processes (0: in the training process)."""
    log_every: int = 10
    """Steps between two rows of ``log.csv``."""
    log_with: str = "none"
    """``tensorboard`` also sends every row of ``log.csv`` to TensorBoard (Accelerate's tracker;
    ``<run>/tensorboard``; needs the ``tensorboard`` package); ``none`` writes the CSV alone."""
    render_samples: bool = True
    """Write a video of one generated clip per class at the end (needs the generator)."""

    def __post_init__(self) -> None:
        check_mixed_precision(self.mixed_precision)
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("epochs and batch_size must be positive")
        if self.view_pairs and self.balanced:
            raise ConfigError("view_pairs and balanced cannot both be on: a class-balanced draw does not keep views together")


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
        self.dataset = dataset if dataset is not None else load_training_data(config.data)
        splits = TrainingSplits.carve(self.dataset, train_on_validation=config.train_on_validation,
                                      view_pairs=config.view_pairs, sample_weights=sample_weights)
        self.train_set, self.val_set, self.test_set = splits.train, splits.val, splits.test
        self.train_groups, self.train_weights = splits.groups, splits.weights
        self.total_steps = config.epochs * steps_per_epoch(len(self.train_set), config.batch_size)

        recognizer, self.recognizer_spec = build_recognizer(self.dataset, config.pipeline, config.recognizer.preset,
                                                            config.recognizer.overrides)
        self.recognizer = OptimisedModel("recognizer", recognizer, config.recognizer.optim, self.total_steps,
                                         ema_decay=config.recognizer.ema_decay, ema_warmup=20)
        self.models = [self.recognizer]
        self.text_alignment: OptimisedModel | None = None
        self.text_embeddings: torch.Tensor | None = None
        if config.recognizer.text_weight > 0:
            texts = run_text_embeddings(self.dataset, config.data, self.output_dir,
                                        write=self.accelerator.is_main_process)
            self.text_embeddings = texts["coarse"]
            head = TextAlignment(recognizer.feature_dims[-1], texts["coarse"])
            self.text_alignment = OptimisedModel("text_alignment", head, config.recognizer.optim, self.total_steps,
                                                 ema_decay=config.recognizer.ema_decay)
            self.models.append(self.text_alignment)
        self.generator: GeneratorPart | None = None
        if config.generator.enabled:
            gen = config.generator
            self.generator = GeneratorPart(self.train_set, config.pipeline, recognizer.feature_dims, preset=gen.preset,
                                           overrides=gen.overrides, diffusion=gen.diffusion, loss=gen.loss,
                                           feature_stages=gen.feature_stages, detach_features=gen.detach_features)
            self.denoiser = OptimisedModel("denoiser", self.generator.denoiser, gen.optim, self.total_steps,
                                           ema_decay=gen.ema_decay)
            self.models.append(self.denoiser)
        for model in self.models:
            model.prepare(self.accelerator)

        self.make_train_loader(self.train_set, config.pipeline, config.batch_size, config.seed,
                               num_workers=config.num_workers, balanced=config.balanced,
                               groups=None if self.train_groups is None else self.train_groups.numpy())
        self.val_loader = make_eval_loader(self.val_set, config.pipeline, config.batch_size)
        self.state = TrainingState(extra={"best_top1": -1.0, "best_val_ce": math.inf, "best_epoch": -1,
                                          "best_val_diffusion": math.inf, "stale_epochs": 0})

    # ----------------------------------------------------------------- checkpoints
    def checkpoint_objects(self) -> dict[str, Any]:
        unwrap = self.accelerator.unwrap_model
        return {
            "models": {m.name: unwrap(m.model) for m in self.models},
            "optimizers": {m.name: m.optimizer for m in self.models},
            "schedulers": {m.name: m.schedule for m in self.models},
            "emas": {m.name: m.ema for m in self.models},
        }

    # ----------------------------------------------------------------- steps
    def recognition_loss(self, output: RecognizerOutput, labels: torch.Tensor,
                         index: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The recognizer's own loss on a batch: (weighted) cross-entropy plus the weighted batch-hard
        triplet loss on its pooled features; ``index`` ``[B]`` are the clips' places in the training set."""
        config = self.config.recognizer
        device = labels.device
        if self.train_weights is None:
            cross_entropy = F.cross_entropy(output.logits.float(), labels, label_smoothing=config.label_smoothing)
        else:
            weights = self.train_weights[index].to(device)
            per_clip = F.cross_entropy(output.logits.float(), labels, reduction="none",
                                       label_smoothing=config.label_smoothing)
            cross_entropy = (weights * per_clip).sum() / weights.sum()
        loss = cross_entropy
        terms = {"ce": cross_entropy.detach(), "train_acc": (output.logits.argmax(-1) == labels).float().mean()}
        if config.triplet_weight > 0:
            groups = None if self.train_groups is None else self.train_groups[index].to(device)
            triplet, stats = pooled_triplet_loss([p.float() for p in output.pooled], labels, config.triplet_layers,
                                                 config.triplet_margin, groups=groups)
            loss = loss + config.triplet_weight * triplet
            terms["triplet"] = triplet.detach()
            terms["triplet_active"] = stats["active_fraction"]
        return loss, terms

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One optimisation step of both models; returns the loss terms."""
        device = self.accelerator.device
        motion, mask, labels = batch["motion"].to(device), batch["mask"].to(device), batch["label"].to(device)
        for model in self.models:
            model.model.train()
        output = self.recognizer.model(drop_inputs(motion, self.config.recognizer.input_drop))
        loss, terms = self.recognition_loss(output, labels, batch["index"])
        if self.text_alignment is not None:
            alignment = self.text_alignment.model(output.pooled[-1], labels)
            loss = loss + self.config.recognizer.text_weight * alignment
            terms["alignment"] = alignment.detach()
        if self.generator is not None:
            diffusion = self.generator.loss(self.denoiser.model, motion, mask, labels, output.features)
            loss = loss + self.config.generator.weight * diffusion
            terms["diffusion"] = diffusion.detach()
        for model in self.models:
            model.optimizer.zero_grad(set_to_none=True)
        self.accelerator.backward(loss)
        for model in self.models:
            model.step(self.accelerator)
        return {k: float(v) for k, v in terms.items()}

    @torch.no_grad()
    def validation_diffusion_loss(self) -> float:
        """Mean denoising loss of the EMA generator on validation clips, fixed noise, with the
        EMA recognizer's features."""
        assert self.generator is not None
        generator = torch.Generator().manual_seed(VALIDATION_SEED)
        total, count = 0.0, 0
        for batch in self.val_loader:
            motion = batch["motion"].to(self.accelerator.device)
            labels = batch["label"].to(self.accelerator.device)
            features = self.recognizer.ema.model(motion).features
            loss = self.generator.loss(self.denoiser.ema.model, motion, batch["mask"].to(self.accelerator.device),
                                       labels, features, generator=generator)
            total += float(loss) * len(labels)
            count += len(labels)
        return total / max(count, 1)

    # ----------------------------------------------------------------- epochs
    def model_sizes(self) -> str:
        unwrap = self.accelerator.unwrap_model
        return ", ".join(f"{m.name} {count_parameters(unwrap(m.model)):,} parameters" for m in self.models)

    def end_of_epoch(self, epoch: int) -> bool:
        """Validate, save the EMA recognizer and the best generator so far; never stops early."""
        extra = self.state.extra
        logits, val_ce = self.predict(self.val_set, self.recognizer.ema.model)
        top1 = float(np.mean(logits.argmax(1) == self.val_set.labels))
        row: dict[str, Any] = {"step": self.state.step, "epoch": epoch + 1, "val_top1": top1, "val_ce": val_ce}
        main = self.accelerator.is_main_process
        self.record_top1(epoch, top1, val_ce)
        extra["val_top1"] = top1
        if main:
            projection = None if self.text_alignment is None else self.text_alignment.ema.model.projection
            kept = TrainedRecognizer(self.recognizer_spec, self.recognizer.ema.model, self.text_embeddings, projection)
            replace_folder(kept.save, self.output_dir / "recognizer")
        if self.generator is not None:
            val_diffusion = self.validation_diffusion_loss()
            row["val_diffusion"] = val_diffusion
            if val_diffusion < extra["best_val_diffusion"]:
                extra["best_val_diffusion"] = val_diffusion
                if main:
                    replace_folder(MotionGenerator(self.generator.spec, self.denoiser.ema.model,
                                                   self.generator.objective.stats).save,
                                   self.output_dir / "generator")
        if self.log is not None:
            self.log.log(row)
        logger.info("epoch %d: val top-1 %.4f (best %.4f at epoch %d)%s", epoch + 1, top1, extra["best_top1"],
                    extra["best_epoch"],
                    f", val diffusion {row['val_diffusion']:.4f}" if "val_diffusion" in row else "")
        return False

    # ----------------------------------------------------------------- reports
    def finish(self) -> dict[str, Any]:
        """Evaluate the best recognizer on the test split (the only time test data is read) and
        write metrics.json, per_class_accuracy.csv, confusion_matrix.png, curves.png, summary.txt
        and, with a generator, one generated clip per class (archive and video)."""
        out = self.output_dir
        kept = TrainedRecognizer.load(out / "recognizer", device=self.accelerator.device).model
        report, test_logits = self.test_report(kept)
        self.save_scores(kept, test_logits)
        extra = self.state.extra
        metrics = {
            "dataset": self.config.data.name,
            "source": self.dataset.source,
            "seed": self.config.seed,
            "steps": self.state.step,
            "epochs_run": self.state.step // len(self.sampler),
            "recognizer_kept": RECOGNIZER_KEPT,
            "train_on_validation": self.config.train_on_validation,
            "val_top1": extra["val_top1"],
            "best_epoch": extra["best_epoch"],
            "best_val_top1": extra["best_top1"],
            "test": report,
        }
        if self.generator is not None:
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
            if self.generator is not None:
                panels["diffusion loss"] = ["train_diffusion", "val_diffusion"]
            plot_curves(out / "log.csv", out / "curves.png", panels)
        if self.generator is not None and self.config.render_samples:
            self._sample_per_class()
        self.write_model_cards(metrics)
        summary = self.summary(metrics)
        (out / "summary.txt").write_text(summary)
        print(summary)
        return metrics

    def write_model_cards(self, metrics: dict[str, Any]) -> None:
        """A README.md in ``recognizer/`` (and ``generator/``): training data, classes, test figures, usage."""
        out, test = self.output_dir, metrics["test"]
        common = {"training data": f"{self.dataset.source} ({len(self.train_set)} training clips)",
                  "classes": ", ".join(self.dataset.class_names),
                  "skeleton": f"{self.dataset.skeleton.name} ({self.dataset.skeleton.num_joints} joints)",
                  "frames per clip": str(self.config.pipeline.num_frames), "seed": str(self.config.seed),
                  "settings": "config.yaml of the run folder above this one"}
        write_model_card(out / "recognizer", f"Recognizer: {self.config.data.name}", {
            **common, "test top-1 / top-5": f"{test['top1']:.2%} / {test['top5']:.2%} on {test['num_clips']} clips",
            "kept": RECOGNIZER_KEPT}, [f"python run/recognize.py --checkpoint {out / 'recognizer'} clips.npz",
                                      "TrainedRecognizer.load(folder).predict(dataset)  # imdm.bundle"])
        if self.generator is not None and (out / "generator").is_dir():
            write_model_card(out / "generator", f"Motion generator: {self.config.data.name}", {
                **common, "best validation diffusion loss": f"{metrics['best_val_diffusion']:.4f}"},
                [f"python run/mdm_sample.py --checkpoint {out / 'generator'} --classes all --num-per-class 4 "
                 "--out samples.npz", "MotionGenerator.load(folder).generate(labels, SamplingConfig())  # mdm.generator"])

    def save_scores(self, model: torch.nn.Module, test_logits: np.ndarray) -> None:
        """``scores.npz``: logits ``[N, K]`` (``model``'s on validation, ``test_logits`` on test), labels and
        clip ids of the validation and test splits, what an ensemble of separately trained recognizers
        fuses (:mod:`imdm.ensemble`)."""
        arrays: dict[str, np.ndarray] = {"val_logits": self.predict(self.val_set, model)[0], "test_logits": test_logits}
        for split, dataset in (("val", self.val_set), ("test", self.test_set)):
            arrays[f"{split}_labels"] = np.asarray(dataset.labels, dtype=np.int64)
            arrays[f"{split}_clip_ids"] = np.asarray(dataset.clip_ids, dtype=str)
        np.savez(self.output_dir / SCORES_FILE, **arrays)

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
            f"steps: {metrics['steps']} ({metrics['epochs_run']} epochs); recognizer kept: {metrics['recognizer_kept']}",
            f"validation top-1: {metrics['val_top1']:.2%} (best {metrics['best_val_top1']:.2%} at epoch "
            f"{metrics['best_epoch']})",
            f"TEST top-1: {test['top1']:.2%}   top-5: {test['top5']:.2%}",
            "per class: " + ", ".join(f"{k} {'-' if v is None else f'{v:.0%}'}"
                                      for k, v in test["per_class_accuracy"].items()),
        ]
        if self.generator is not None:
            lines.append(f"generator: best validation diffusion loss {metrics['best_val_diffusion']:.4f}")
        return "\n".join(lines) + "\n"


def cotrain(config: CoTrainConfig, output_dir: str | Path, *, resume: bool = False,
            max_minutes: float | None = None, progress: bool = True) -> Path:
    """Run (or, with ``resume``, continue) co-training in ``output_dir``."""
    trainer = CoTrainer(config, output_dir, progress=progress)
    if resume:
        trainer.resume()
    return trainer.fit(max_minutes)
