"""Shared pieces of the command-line scripts in ``run/``: clean failure on user errors."""

from __future__ import annotations

import sys
from collections.abc import Callable

from mdm.errors import UserError


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
