"""The execution context an asset receives through a ``context`` parameter."""

from __future__ import annotations

import logging
from typing import Any

from kazeflow.config import canonical_json
from kazeflow.errors import KazeflowError


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
        self.log = logging.getLogger(f"kazeflow.asset.{asset_name}")
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
