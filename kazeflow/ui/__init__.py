"""``kazeflow ui``: a local, read-only web page over a flow and its store.

The asset graph coloured by state, why each asset is stale (with the code and config
diffs of ``kazeflow why``), its history and a preview of its value, the runs and a
timeline of each; a run in progress in another process shows live. ``_layout`` places
the graph, ``_source`` re-plans the flow when its code changes, ``_progress`` tells
what a run's assets did, ``_views`` builds the JSON, ``_server`` serves it with the
page in ``static/``; ``_html`` renders flows and results for Jupyter.

The server's parts load on first use (PEP 562): a notebook's HTML needs no server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kazeflow.ui._server import UiServer
    from kazeflow.ui._source import FlowSource
    from kazeflow.ui._views import Views

__all__ = ["FlowSource", "UiServer", "Views"]
_HOMES = {"FlowSource": "_source", "UiServer": "_server", "Views": "_views"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'kazeflow.ui' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"kazeflow.ui.{_HOMES[name]}"), name)
