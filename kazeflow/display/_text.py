"""Figures as people read them."""

from __future__ import annotations


def human_size(n: int | None, missing: str = "-") -> str:
    """``1234567`` → ``1.2 MiB`` (``missing`` for None)."""
    if n is None:
        return missing
    value, units, step = float(n), ("B", "KiB", "MiB", "GiB", "TiB"), 0
    while value >= 1024 and step < len(units) - 1:
        value, step = value / 1024, step + 1
    return f"{n} B" if step == 0 else f"{value:.1f} {units[step]}"
