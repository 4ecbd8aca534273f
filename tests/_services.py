"""What a test needs that a machine may lack (a server, an optional package): skipped
with the reason where it is missing, and a failure instead under
``KAZEFLOW_REQUIRE_SERVICES=1`` (CI installs every extra and runs every server)."""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest

#: CI sets this so that tests needing a service fail instead of skipping.
REQUIRE_SERVICES = os.environ.get("KAZEFLOW_REQUIRE_SERVICES") == "1"


def unavailable(problem: str) -> NoReturn:
    """Skip the calling test (or module) because of ``problem``; fail in CI."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{problem} (KAZEFLOW_REQUIRE_SERVICES=1)")
    pytest.skip(problem, allow_module_level=True)


def require(module: str, extra: str) -> ModuleType:
    """``module`` imported, or the caller skipped (failed in CI)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        unavailable(f"{module} is not installed ({exc}): pip install 'kazeflow[{extra}]'")
