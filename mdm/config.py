"""Typed dataclass configs loaded from YAML; unknown keys and wrong types are refused."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from mdm.errors import ConfigError

T = TypeVar("T")


class _YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but numbers such as ``1e-4`` are floats (as in YAML 1.2), not strings (YAML 1.1)."""


_YamlLoader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
                                  list("-+0123456789."))


def read_yaml(text: str) -> Any:
    """Parse user-written YAML (a config file, a ``--set`` value) safely, ``1e-4`` read as a float."""
    return yaml.load(text, Loader=_YamlLoader)  # a SafeLoader: builds no arbitrary objects


def _convert(value: Any, annotation: Any, where: str) -> Any:
    """Check ``value`` against a type annotation, building nested dataclasses."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(annotation, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(annotation)
        item_type = args[0] if args else Any
        items = [_convert(v, item_type, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is typing.Literal:
        if value not in typing.get_args(annotation):
            raise ConfigError(f"{where}: {value!r} is not one of {list(typing.get_args(annotation))}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def from_dict(cls: type[T], values: dict[str, Any], where: str = "config") -> T:
    """Build dataclass ``cls`` from a mapping; unknown keys and wrong types raise ConfigError."""
    fields = {field.name: field for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {name: _convert(value, hints[name], f"{where}.{name}") for name, value in values.items()}
    return cls(**kwargs)


def merge(base: T, overrides: dict[str, Any], where: str = "config") -> T:
    """A copy of dataclass ``base`` with nested ``overrides`` applied (same checks as from_dict)."""
    merged = to_dict(base)

    def deep_update(target: dict[str, Any], update: dict[str, Any]) -> None:
        for key, value in update.items():
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                deep_update(target[key], value)
            else:
                target[key] = value

    deep_update(merged, overrides)
    return from_dict(type(base), merged, where)


def to_dict(config: Any) -> dict[str, Any]:
    """A plain nested dict of a dataclass config (tuples become lists), ready for YAML; it shares no
    mutable value with ``config`` (so :func:`merge` leaves its base untouched)."""
    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(config)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file or bad YAML raises ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        values = read_yaml(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping of keys to values")
    return values


def save_yaml(config: Any, path: str | Path) -> None:
    """Write a dataclass config as YAML (the resolved config saved beside outputs)."""
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))


@dataclasses.dataclass
class Setting:
    """One setting of a config, for the options reference.

    Attributes:
        key: dotted path, as ``--set`` takes it (``recognizer.optim.lr``).
        type: the annotation as written in the source (``float``, ``str | None``).
        default: the value a new config has, as YAML (``0.001``, ``[0.9, 1.1]``).
        doc: the field's docstring, or its entry in the class's ``Attributes:`` section; may be empty.
    """

    key: str
    type: str
    default: str
    doc: str


def _field_docs(cls: type) -> dict[str, tuple[str, str]]:
    """``{field: (annotation source, doc)}`` of a dataclass, from the docstring string that follows each
    field in the source, else from the ``Attributes:`` section of the class docstring."""
    attributes: dict[str, str] = {}
    name = None
    in_section = False
    for line in (inspect.getdoc(cls) or "").splitlines():
        stripped = line.strip()
        if stripped == "Attributes:":
            in_section = True
            continue
        if not in_section:
            continue
        if line and not line.startswith(" "):
            break
        match = re.match(r"^ {4}(\w+): (.*)$", line)
        if match:
            name = match.group(1)
            attributes[name] = match.group(2).strip()
        elif name and stripped:
            attributes[name] += " " + stripped
    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body  # type: ignore[attr-defined]
    docs = {}
    for statement, following in zip(body, body[1:] + [None]):
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            field_name = statement.target.id
            doc = attributes.get(field_name, "")
            if (isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                    and isinstance(following.value.value, str)):
                doc = " ".join(following.value.value.split())
            docs[field_name] = (ast.unparse(statement.annotation), doc)
    return docs


def settings_of(config: Any, prefix: str = "") -> list[Setting]:
    """Every leaf setting of a dataclass config instance, in field order, nested sections flattened
    with dotted keys; defaults are the instance's values."""
    rows: list[Setting] = []
    docs = _field_docs(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        key = f"{prefix}{field.name}"
        if dataclasses.is_dataclass(value):
            rows += settings_of(value, f"{key}.")
            continue
        annotation, doc = docs.get(field.name, ("", ""))
        default = yaml.safe_dump(to_dict(value), default_flow_style=True, width=1000).strip()
        rows.append(Setting(key, annotation, default.removesuffix("\n..."), doc))
    return rows
