"""Stopping a run cleanly: a time budget and Ctrl-C / SIGTERM turn into 'save and stop'."""

from __future__ import annotations

import signal
import time
from types import FrameType


class StopFlag:
    """Set by a time budget or a signal; the loop checks it between steps, saves and stops.

    A second Ctrl-C while saving interrupts at once.
    """

    def __init__(self, max_minutes: float | None = None) -> None:
        self.deadline = None if max_minutes is None else time.monotonic() + 60.0 * max_minutes
        self.reason: str | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopFlag:
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread: signals stay as they are
                pass
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.reason is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.reason = f"signal {signal.Signals(signum).name}"

    def should_stop(self) -> bool:
        if self.reason is None and self.deadline is not None and time.monotonic() > self.deadline:
            self.reason = "time budget reached"
        return self.reason is not None
