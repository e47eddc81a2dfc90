"""Training a stream ensemble: one co-training run per stream, then their scores fused with equal weights.

Each stream's recognizer is trained by :func:`imdm.training.cotrain.cotrain` in its own run folder
``<ensemble>/<code>/`` with ``recognizer.overrides.streams`` set to that stream; the generator
trains alongside only for the streams listed in ``cotrain_streams``. A stream whose run folder
already holds ``metrics.json`` is done, one with a checkpoint is resumed: running the same command
again continues an interrupted ensemble. Once every stream is done, the members classify the
validation and test clips at each of :data:`imdm.ensemble.TEST_TURNS`, their probabilities are fused
with equal weights and the ensemble is evaluated once on the test split (each member's own figures,
the clip alone, come from its saved ``scores.npz``)::

    config.yaml            the members' shared settings
    ensemble.yaml          streams, member folders, weights (imdm.ensemble.EnsembleSpec)
    j/ b/ jm/ bm/          the members' run folders
    metrics.json  summary.txt  confusion_matrix.png
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from imdm.ensemble import (
    TEST_TURNS,
    EnsembleSpec,
    TrainedEnsemble,
    is_ensemble_folder,
    read_ensemble_spec,
    softmax,
    write_ensemble_spec,
)
from imdm.training.cotrain import SCORES_FILE, CoTrainConfig, cotrain
from mdm.config import from_dict, load_yaml, merge, save_yaml, to_dict
from mdm.data.dataset import MotionDataset
from mdm.data.sources import load_training_data
from mdm.data.streams import STREAM_CODES, stream_name
from mdm.errors import ConfigError
from mdm.evaluation.metrics import classification_summary, plot_confusion
from mdm.training.checkpoint import LATEST

logger = logging.getLogger("imdm.ensemble")


def check_streams(streams: list[str], cotrain_streams: list[str]) -> None:
    """ConfigError unless ``streams`` are distinct known codes and ``cotrain_streams`` a subset."""
    for code in streams + cotrain_streams:
        if code not in STREAM_CODES:
            raise ConfigError(f"unknown stream {code!r}; streams: {', '.join(STREAM_CODES)}")
    if not streams or len(set(streams)) != len(streams):
        raise ConfigError(f"need distinct streams, got {streams}")
    extra = sorted(set(cotrain_streams) - set(streams))
    if extra:
        raise ConfigError(f"co-trained stream(s) {extra} are not among the ensemble's streams {streams}")


def member_config(config: CoTrainConfig, code: str, cotrained: bool) -> CoTrainConfig:
    """The shared settings with the recognizer's input set to one stream; the generator on or off."""
    return merge(config, {"recognizer": {"overrides": {"streams": [stream_name(code)]}},
                          "generator": {"enabled": cotrained}}, f"stream {code}")


def train_ensemble(config: CoTrainConfig, streams: list[str], output_dir: str | Path, *,
                   cotrain_streams: list[str] | None = None, max_minutes: float | None = None,
                   progress: bool = True) -> dict[str, Any] | None:
    """Train (or continue) each stream's run, then fuse and evaluate; the metrics, or
    None when a time budget or a signal stopped a stream (run again to continue). ``max_minutes`` is
    shared: each stream's run gets an equal part of what is left of it when the stream starts."""
    cotrain_streams = list(cotrain_streams or [])
    check_streams(streams, cotrain_streams)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if is_ensemble_folder(out):
        saved = read_ensemble_spec(out)
        if saved.streams != streams:
            raise ConfigError(f"{out} holds an ensemble of streams {saved.streams}, not {streams}")
    saved_config = out / "config.yaml"
    saved = to_dict(from_dict(CoTrainConfig, load_yaml(saved_config), str(saved_config))) if saved_config.is_file() else None
    if saved is not None and saved != to_dict(config):
        raise ConfigError(f"{out} holds an ensemble started with other settings (its config.yaml): continue it with "
                          f"--resume {out}, or start a new one in another --output-dir")
    save_yaml(config, saved_config)
    spec = EnsembleSpec(streams=streams, folders=list(streams))
    write_ensemble_spec(spec, out)
    started = time.monotonic()
    bar = tqdm(streams, desc="ensemble", unit="stream", disable=not progress)
    for code in bar:
        bar.set_postfix_str(stream_name(code))
        run = out / code
        if (run / "metrics.json").is_file():
            continue
        share = None
        if max_minutes is not None:
            remaining = max_minutes - (time.monotonic() - started) / 60
            if remaining <= 0:
                break
            share = remaining / sum(not (out / c / "metrics.json").is_file() for c in streams)
        resume = (run / "checkpoints" / LATEST).is_file()
        logger.info("stream %s (%s): %s", code, stream_name(code), "resuming" if resume else "training")
        cotrain(member_config(config, code, code in cotrain_streams), run, resume=resume, max_minutes=share,
                progress=progress)
        if not (run / "metrics.json").is_file():
            break
    bar.close()
    if not all((out / code / "metrics.json").is_file() for code in streams):
        logger.warning("the ensemble is not finished; run the same command again to continue")
        return None
    return finish_ensemble(out, spec, config)


def member_scores(out: Path, spec: EnsembleSpec) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The finished members' class probabilities ``{"val", "test"}: [S, N, K]`` and labels ``[N]``, from
    their ``scores.npz``; ConfigError when two members were evaluated on other clips."""
    scores = [np.load(out / folder / SCORES_FILE) for folder in spec.folders]
    for split in ("val", "test"):
        for member, code in zip(scores[1:], spec.streams[1:]):
            if not np.array_equal(member[f"{split}_clip_ids"], scores[0][f"{split}_clip_ids"]):
                raise ConfigError(f"stream {code} was evaluated on other {split} clips than stream {spec.streams[0]}")
    probabilities = {split: np.stack([softmax(s[f"{split}_logits"]) for s in scores]) for split in ("val", "test")}
    labels = {split: scores[0][f"{split}_labels"] for split in ("val", "test")}
    return probabilities, labels


def scored_clips(out: Path, spec: EnsembleSpec, dataset: MotionDataset, split: str) -> MotionDataset:
    """``dataset``'s ``split`` clips (``val`` or ``test``); ConfigError unless they are the clips the
    ensemble's streams were scored on (their ``scores.npz``)."""
    clips = dataset.split_subset(split)
    saved = np.load(out / spec.folders[0] / SCORES_FILE)[f"{split}_clip_ids"]
    if not np.array_equal(np.asarray(clips.clip_ids, dtype=str), saved):
        raise ConfigError(f"{out}: the {split} clips read now are not those the streams were scored on")
    return clips


def finish_ensemble(out: Path, spec: EnsembleSpec, config: CoTrainConfig) -> dict[str, Any]:
    """Fuse with equal weights, each member averaged over :data:`~imdm.ensemble.TEST_TURNS`; evaluate once
    on test; write ``ensemble.yaml``, ``metrics.json``, ``summary.txt`` and ``confusion_matrix.png``.

    The members' own figures are their saved scores (the clip alone); the fused ones come from the
    members classifying ``config.data``'s validation and test clips again at every turn.
    """
    probabilities, labels = member_scores(out, spec)
    dataset = load_training_data(config.data)
    spec.weights = [1.0] * len(spec.streams)
    spec.turns, spec.up_axis = list(TEST_TURNS), dataset.skeleton.up_axis
    ensemble = TrainedEnsemble.load_members(spec, out)
    spec.class_names = ensemble.members[0].class_names
    fused = {split: ensemble.predict(scored_clips(out, spec, dataset, split)) for split in ("val", "test")}
    members = {code: {"val_top1": float(np.mean(p.argmax(1) == labels["val"])),
                      "test_top1": float(np.mean(t.argmax(1) == labels["test"]))}
               for code, p, t in zip(spec.streams, probabilities["val"], probabilities["test"])}
    report = classification_summary(np.log(fused["test"] + 1e-12), labels["test"], spec.class_names)
    refit = config.train_on_validation
    metrics = {"streams": spec.streams, "weights": spec.weights, "turns": spec.turns, "validation_trained_on": refit,
               "members": members, "val_top1": float(np.mean(fused["val"].argmax(1) == labels["val"])),
               "test": report}
    write_ensemble_spec(spec, out)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    plot_confusion(np.array(report["confusion_matrix"]), spec.class_names, out / "confusion_matrix.png",
                   title=f"ensemble test top-1 {report['top1']:.1%}")
    lines = [f"ensemble: {out}" + ("  (validation clips trained on: val top-1 is not held out)" if refit else ""),
             "stream  weight  val top-1  test top-1"]
    lines += [f"{code:<7} {weight:6.2f}  {members[code]['val_top1']:9.2%}  {members[code]['test_top1']:10.2%}"
              for code, weight in zip(spec.streams, spec.weights)]
    turns = "/".join(f"{turn:g}" for turn in spec.turns)
    lines.append(f"fused   (equal weights, turns {turns} degrees)  {metrics['val_top1']:9.2%}  "
                 f"TEST {report['top1']:.2%}")
    summary = "\n".join(lines) + "\n"
    (out / "summary.txt").write_text(summary)
    print(summary)
    return metrics
