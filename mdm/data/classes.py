"""Class tables of the real datasets, kept as data in ``assets/classes/<name>.yaml``.

Each file lists ``classes`` as ``{id, name}`` pairs: ``id`` is the dataset's own action
code (as in its file names) and the label index of a class is its position in the list.
"""

from __future__ import annotations

import yaml

from mdm import ASSETS_DIR
from mdm.errors import ConfigError

CLASSES_DIR = ASSETS_DIR / "classes"


def load_class_table(name: str) -> dict[int, str]:
    """Action code -> class name, in label order (``nw_ucla``, ``humanact12``, ``ntu120``)."""
    path = CLASSES_DIR / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in CLASSES_DIR.glob("*.yaml")))
        raise ConfigError(f"unknown class table {name!r}; known tables: {known}")
    spec = yaml.safe_load(path.read_text())
    return {int(entry["id"]): str(entry["name"]) for entry in spec["classes"]}
