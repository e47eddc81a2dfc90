"""Text–motion retrieval with a recognizer trained with skeleton–text alignment.

    python run/retrieve.py --checkpoint RUN clips.npz --text "a person waves both hands above the head" [--top 5]
    python run/retrieve.py --checkpoint RUN clips.npz --class-texts [--texts FILE.yaml] [--json]

With ``--text``: the archive's clips that best match each query text (text -> motion), by cosine
similarity in the aligned space. With ``--class-texts``: every clip against the texts of the archive's
classes (the shipped table that holds them all, or ``--texts``), and the retrieval figures of the
archive's labels: motion -> text and text -> motion R@1/3/5 and median ranks. RUN is a run folder
(or its recognizer/ folder) trained with ``--set recognizer.text_weight=...``, such as a zero-shot
run's ``recognizer_run``.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from imdm.bundle import TrainedRecognizer
from imdm.text_alignment import class_text_embeddings
from imdm.zero_shot import retrieval_metrics
from mdm.cli import run_main
from mdm.data.archive import read_archive
from mdm.errors import ConfigError
from mdm.text import TextEncoder, class_texts, shipped_table_for


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("archive", help="motion archive (.npz) of the clips to search")
    parser.add_argument("--checkpoint", required=True, help="a run folder, or its recognizer/ folder")
    parser.add_argument("--text", action="append", default=[], help="a query text (repeatable)")
    parser.add_argument("--class-texts", action="store_true", help="score the clips against their classes' texts")
    parser.add_argument("--texts", help="class texts (YAML, assets/text/ format) for --class-texts")
    parser.add_argument("--top", type=int, default=5, help="clips listed per query text")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if bool(args.text) == args.class_texts:
        raise ConfigError("give --text QUERY (repeatable) or --class-texts")
    if args.top < 1:
        raise ConfigError("--top must be at least 1")
    recognizer = TrainedRecognizer.load(args.checkpoint)
    dataset = read_archive(args.archive)
    clips = recognizer.text_space(dataset)
    encoder = TextEncoder()
    if args.text:
        similarity = (encoder.encode(args.text) @ clips.T).numpy()
        result = [{"text": text, "clips": [{"clip_id": dataset.clip_ids[i], "class": dataset.class_names[dataset.labels[i]],
                                            "similarity": float(row[i])} for i in np.argsort(-row)[: args.top]]}
                  for text, row in zip(args.text, similarity)]
        if args.json:
            print(json.dumps(result, indent=2))
            return 0
        for query in result:
            print(f"{query['text']}:")
            for match in query["clips"]:
                print(f"  {match['similarity']:6.3f}  {match['clip_id']}  ({match['class']})")
        return 0
    names = list(dataset.class_names)
    texts = class_texts(names, args.texts, shipped_table_for(names))
    scores = (clips @ class_text_embeddings(texts, encoder).T).numpy()
    metrics = retrieval_metrics(scores, np.asarray(dataset.labels))
    if args.json:
        print(json.dumps(metrics, indent=2))
        return 0
    for key, value in metrics.items():
        print(f"{key:<30} {value:.2%}" if "R@" in key else f"{key:<30} {value:g}")
    return 0


def console() -> None:
    """The ``imdm-retrieve`` command."""
    run_main(main)
