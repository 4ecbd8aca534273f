"""The execution context an asset receives through a ``context`` parameter, and
kazeflow's own logger (``kazeflow``).

:mod:`logging` is imported on first use: a process that logs nothing, such as a run
with nothing to do, spares its import (≈ 20 M instructions, ≈ 5 ms with the modules it
pulls in). Until it is imported nobody can have asked for debug or info messages, so
:func:`logs` answers, and :data:`log` drops them, without importing it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, cast

from kazeflow.config import canonical_json
from kazeflow.errors import KazeflowError

if TYPE_CHECKING:
    import logging

#: The name of kazeflow's logger; assets log under ``kazeflow.asset.<name>``.
LOGGER = "kazeflow"
DEBUG, INFO = 10, 20  # logging's levels, without importing it


def logs(level: int) -> bool:
    """Whether kazeflow's logger passes messages of ``level`` (False while nothing has
    imported :mod:`logging`: nothing can have configured it)."""
    logging = sys.modules.get("logging")
    return logging is not None and logging.getLogger(LOGGER).isEnabledFor(level)


def _logger() -> logging.Logger:
    import logging

    return logging.getLogger(LOGGER)


class _Logger:
    """``logging.getLogger("kazeflow")``, looked up (and logging imported) per use; a
    debug or info message is dropped at once while :func:`logs` says no one listens."""

    __slots__ = ()

    def debug(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self._quiet(DEBUG, msg, args, kwargs)

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self._quiet(INFO, msg, args, kwargs)

    def _quiet(self, level: int, msg: object, args: tuple[Any, ...],
               kwargs: dict[str, Any]) -> None:
        if logs(level):  # the record names the caller's line, not this one
            kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 2
            _logger().log(level, msg, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # warning, error, exception, ...
        return getattr(_logger(), name)


#: kazeflow's logger.
log = cast("logging.Logger", _Logger())


class AssetContext:
    """What an asset may know and record about the run materializing it.

    Attributes:
        asset_name: the asset being materialized.
        run_id: the run materializing it.
        log: a logger (``kazeflow.asset.<name>``).
    """

    def __init__(self, asset_name: str, run_id: str) -> None:
        self.asset_name = asset_name
        self.run_id = run_id
        import logging  # the asset runs: its cost is small beside the call

        self.log = logging.getLogger(f"{LOGGER}.asset.{asset_name}")
        self._metadata: dict[str, Any] = {}

    def add_metadata(self, **values: Any) -> None:
        """Attach JSON-able facts (row counts, scores) to this materialization's record.

        Raises:
            KazeflowError: a value is not JSON-able.
        """
        for key, value in values.items():
            try:
                canonical_json(value)
            except (TypeError, ValueError) as exc:
                raise KazeflowError(
                    f"asset {self.asset_name!r}: metadata {key!r} = {value!r} is not JSON-able "
                    f"({exc})") from None
        self._metadata.update(values)

    @property
    def metadata(self) -> dict[str, Any]:
        """The metadata added so far."""
        return dict(self._metadata)
