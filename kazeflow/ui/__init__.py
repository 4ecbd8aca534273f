"""``kazeflow ui``: a local, read-only web page over a flow and its store.

The asset graph coloured by state, why each asset is stale (with the code and config
diffs of ``kazeflow why``), its history and a preview of its value, the runs and a
timeline of each; a run in progress in another process shows live. ``_layout`` places
the graph, ``_source`` re-plans the flow when its code changes, ``_progress`` tells
what a run's assets did, ``_views`` builds the JSON, ``_server`` serves it with the
page in ``static/``.
"""

from kazeflow.ui._server import UiServer
from kazeflow.ui._source import FlowSource
from kazeflow.ui._views import Views

__all__ = ["FlowSource", "UiServer", "Views"]
