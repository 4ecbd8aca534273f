"""The asset graph as an inline SVG: boxes laid out left to right, coloured by state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from kazeflow.display._layout import layout

#: State → (stroke, fill) of its box.
COLOURS = {"fresh": ("#2e7d32", "#e8f5e9"), "stale": ("#ef6c00", "#fff3e0"),
           "missing": ("#757575", "#f5f5f5"), "failed": ("#c62828", "#ffebee"),
           "running": ("#1565c0", "#e3f2fd")}
UNKNOWN = ("#9e9e9e", "#ffffff")
#: Above this many assets no picture is drawn: it would be unreadable (and large).
MAX_DRAWN = 300
_W, _H, _DX, _DY, _PAD = 160, 42, 210, 58, 8


def graph_svg(deps: Mapping[str, Sequence[str]], states: Mapping[str, str] | None = None,
              notes: Mapping[str, str] | None = None) -> str:
    """An ``<svg>`` of ``deps`` (name → upstream names, in a topological order); each box
    names its asset, coloured by ``states`` (fresh / stale / missing / failed /
    running) and subtitled by ``notes``. Empty above :data:`MAX_DRAWN` assets."""
    if not deps or len(deps) > MAX_DRAWN:
        return ""
    states, notes = states or {}, notes or {}
    at = {name: (_PAD + col * _DX, _PAD + row * _DY)
          for name, (col, row) in layout(deps).items()}
    width = max(x for x, _ in at.values()) + _W + _PAD
    height = max(y for _, y in at.values()) + _H + _PAD
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="kazeflow-graph" '
             f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             'font-family="sans-serif" font-size="12">']
    for name, ups in deps.items():
        x2, y2 = at[name]
        for up in ups:
            if up in at:
                x1, y1 = at[up][0] + _W, at[up][1] + _H / 2
                mid = (x1 + x2) / 2
                parts.append(f'<path d="M{x1},{y1} C{mid},{y1} {mid},{y2 + _H / 2} '
                             f'{x2},{y2 + _H / 2}" fill="none" stroke="#90a4ae"/>')
    for name, (x, y) in at.items():
        state = states.get(name, "")
        stroke, fill = COLOURS.get(state, UNKNOWN)
        subtitle = " · ".join(t for t in (state, notes.get(name, "")) if t)
        parts.append(
            f'<g class="asset {escape(state)}" data-asset="{escape(name)}">'
            f"<title>{escape(name)}: {escape(subtitle or 'state unknown')}</title>"
            f'<rect x="{x}" y="{y}" width="{_W}" height="{_H}" rx="6" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="2"/>'
            f'<text x="{x + 8}" y="{y + 17}" font-weight="bold">{escape(_fit(name))}</text>'
            f'<text x="{x + 8}" y="{y + 33}" fill="#555">{escape(_fit(subtitle))}</text>'
            "</g>")
    parts.append("</svg>")
    return "".join(parts)


def _fit(text: str, width: int = 22) -> str:
    """``text`` cut to what a box holds, with an ellipsis."""
    return text if len(text) <= width else text[:width - 1] + "…"
