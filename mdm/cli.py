"""Shared pieces of the command-line scripts in ``run/``: clean failure on user errors."""

from __future__ import annotations

import sys
from collections.abc import Callable

import yaml

from mdm.errors import ConfigError, UserError


def run_main(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> None:
    """Run a script's ``main``; a user error ends with one line on stderr and exit code 2.

    Bugs (any other exception) still show their traceback.
    """
    try:
        code = main(argv)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except FileNotFoundError as error:
        print(f"error: {error.filename or error}: no such file or directory", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)


def parse_key_value(text: str, flag: str) -> tuple[str, object]:
    """A ``KEY=VALUE`` flag value -> ``(key, value)``, the value read as YAML (``2``, ``xview``, ``[1, 2]``)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"{flag} expects KEY=VALUE, got {text!r}")
    try:
        return key, yaml.safe_load(value)
    except yaml.YAMLError:
        raise ConfigError(f"{flag} {key}: cannot read the value {value!r}") from None
