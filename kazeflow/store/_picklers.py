"""The pickler that writes a value: cloudpickle's, DataFrames canonical once pandas is
imported (:mod:`._frames`), sets sorted when asked (:mod:`._sets`). Imported on the first
write, with cloudpickle, not on ``import kazeflow``."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import cloudpickle

from kazeflow.store import _frames, _sets


class _SortingPickler(_sets.SortingSets, cloudpickle.Pickler):
    pass


class _SortingFramePickler(_sets.SortingSets, _frames.FramePickler):
    pass


def pickler(file: Any, protocol: int, buffer_callback: Callable[[Any], bool], *,
            sort_sets: bool) -> pickle.Pickler:
    """A pickler writing to ``file``; ``sort_sets`` pickles sets in sorted order (slower:
    only for a value known to hold one)."""
    frame = _frames.frame_type()
    if frame is None:
        kind = _SortingPickler if sort_sets else cloudpickle.Pickler
        return kind(file, protocol=protocol, buffer_callback=buffer_callback)
    framing = _SortingFramePickler if sort_sets else _frames.FramePickler
    return framing(file, protocol, buffer_callback, frame)
