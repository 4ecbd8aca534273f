"""What a test module needs installed: skipped with the reason where it is not, and a
failure instead under ``KAZEFLOW_REQUIRE_SERVICES=1`` (CI installs every extra)."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def require(module: str, extra: str) -> ModuleType:
    """``module`` imported, or the calling test module skipped (failed in CI)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        message = f"{module} is not installed ({exc}): pip install 'kazeflow[{extra}]'"
        if os.environ.get("KAZEFLOW_REQUIRE_SERVICES") == "1":
            raise RuntimeError(f"{message} (KAZEFLOW_REQUIRE_SERVICES=1)") from exc
        pytest.skip(message, allow_module_level=True)
