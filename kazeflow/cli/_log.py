"""The command line's view of the library's ``logging`` records, and run progress.

The library logs under the ``kazeflow`` logger: the run summary at INFO, each asset it
materializes or reuses at DEBUG, each record tagged with a ``kazeflow_event``
(``materializing``, ``reused``, ``run_finished``) and the ``asset_name``.
:class:`TerminalLog` prints records at or above its threshold on stderr and, on a
terminal, keeps a one-line progress display (assets done / total, current asset,
elapsed) fed by those events.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TextIO

import click

from kazeflow.context import LOGGER

_LEVEL_STYLES = {logging.WARNING: ("warning", "yellow"), logging.ERROR: ("error", "red"),
                 logging.DEBUG: ("debug", "blue")}


class TerminalLog(logging.Handler):
    """Prints kazeflow's log records on stderr and draws run progress when it is a tty."""

    def __init__(self, threshold: int, stream: TextIO | None = None) -> None:
        super().__init__(logging.DEBUG)
        self.threshold = threshold
        self.stream = stream or sys.stderr
        self._progress: _Progress | None = None
        self._draw_lock = threading.RLock()

    def emit(self, record: logging.LogRecord) -> None:
        """Print ``record`` if it reaches the threshold; feed it to the progress line."""
        try:
            progress = self._progress
            event = getattr(record, "kazeflow_event", None)
            if progress is not None and event in ("materializing", "reused"):
                progress.see_asset(record.asset_name, running=event == "materializing")  # type: ignore[attr-defined]
            elif progress is not None and event == "run_finished":
                with self._draw_lock:
                    self._clear()
                    progress.current = None  # the run is over: the summary replaces it
            if record.levelno < self.threshold:
                return
            line = _format(record)
            with self._draw_lock:
                self._clear()
                click.echo(line, file=self.stream)
                self._draw()
        except Exception:  # a broken terminal must not break the run
            self.handleError(record)

    @contextmanager
    def progress(self, asset_names: Sequence[str]) -> Iterator[None]:
        """Show progress over ``asset_names`` (in run order) while the block runs.

        Draws nothing unless the stream is an interactive terminal.
        """
        if not _interactive(self.stream):
            yield
            return
        self._progress = _Progress(list(asset_names))
        stop = threading.Event()
        ticker = threading.Thread(target=self._tick, args=(stop,), daemon=True,
                                  name="kazeflow-progress")
        ticker.start()
        try:
            yield
        finally:
            stop.set()
            ticker.join()
            with self._draw_lock:
                self._clear()
                self._progress = None

    def _tick(self, stop: threading.Event) -> None:
        while not stop.wait(0.2):
            with self._draw_lock:
                self._clear()
                self._draw()

    def _draw(self) -> None:
        if self._progress is not None and self._progress.current is not None:
            self.stream.write(self._progress.line())
            self.stream.flush()

    def _clear(self) -> None:
        if self._progress is not None and self._progress.current is not None:
            self.stream.write("\r\x1b[K")


class _Progress:
    """Where a run is: assets before the current one in plan order are done."""

    def __init__(self, asset_names: list[str]) -> None:
        self.asset_names = asset_names
        self.started = time.monotonic()
        self.current: str | None = None
        self.done = 0

    def see_asset(self, name: str, running: bool) -> None:
        """An asset starts materializing (``running``) or was reused (done at once)."""
        self.done += 0 if running else 1
        if running:
            if self.current is not None:
                self.done += 1  # the previous one finished
            self.current = name

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        return (f"[{self.done}/{len(self.asset_names)}] materializing {self.current} "
                f"({elapsed:.1f}s)")


def _format(record: logging.LogRecord) -> str:
    text = record.getMessage()
    if record.exc_info and record.levelno >= logging.ERROR:
        text += "\n" + logging.Formatter().formatException(record.exc_info)
    label = _LEVEL_STYLES.get(record.levelno)
    if label is None and record.levelno > logging.ERROR:
        label = _LEVEL_STYLES[logging.ERROR]
    return text if label is None else f"{click.style(label[0], fg=label[1])}: {text}"


def _interactive(stream: TextIO) -> bool:
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def configure(verbose: bool) -> TerminalLog:
    """Attach one :class:`TerminalLog` to the ``kazeflow`` logger (replacing a previous one).

    INFO and above are shown (DEBUG too with ``verbose``); on a terminal DEBUG records
    are produced anyway, so that the progress line can follow the run.
    """
    logger = logging.getLogger(LOGGER)
    for old in [h for h in logger.handlers if isinstance(h, TerminalLog)]:
        logger.removeHandler(old)
    handler = TerminalLog(logging.DEBUG if verbose else logging.INFO)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose or _interactive(handler.stream) else logging.INFO)
    logger.propagate = False
    return handler
