"""Errors a user can cause. Command-line scripts turn them into one message and exit 2."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A problem with the user's input (a file, a flag, a config), not a bug."""


class DataFormatError(UserError, ValueError):
    """A data file that does not follow its format.

    The message always names the file and the problem, e.g.
    ``bad.npz: key 'lengths' sums to 10 but 'joints' has 12 frames``.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ConfigError(UserError, ValueError):
    """A configuration value or flag that cannot be used."""
