"""How the command line shows library records: tables, JSON, explanations and graphs.

Pure functions from records (``AssetStatus``, ``Materialization``, ``Run``, reports) to
text; colour is added with ``click.style`` and stripped by ``click.echo`` when the output
is not a terminal (or ``NO_COLOR`` is set).
"""

from __future__ import annotations

import dataclasses
import json
import reprlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import click

from kazeflow.assets import Asset
from kazeflow.errors import last_line
from kazeflow.results import AssetStatus, Materialization, Run

#: Colours of states, run statuses and run outcomes.
COLOURS = {"fresh": "green", "stale": "yellow", "missing": "red", "materialized": "cyan",
           "reused": "green", "failed": "red", "not run": "yellow", "succeeded": "green",
           "running": "blue", "interrupted": "yellow", "abandoned": "yellow"}
_GRAPH_FILL = {"fresh": "#d3f9d8", "stale": "#fff3bf", "missing": "#ffe3e3"}
_GRAPH_STROKE = {"fresh": "#2b8a3e", "stale": "#e67700", "missing": "#c92a2a"}
Cell = str | tuple[str, str | None]  # text, or (text, colour)


# ------------------------------------------------------------------ basics

def to_json(value: Any) -> str:
    """``value`` as indented JSON; records become objects, times stay epoch seconds."""
    return json.dumps(value, indent=2, default=jsonable, ensure_ascii=False)


def jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return repr(value)


def styled(text: str, state: str | None = None) -> str:
    """``text`` in the colour of ``state`` (plain when the state has none)."""
    colour = COLOURS.get(state or text)
    return click.style(text, fg=colour) if colour else text


def table(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    """Left-aligned columns; a cell ``(text, state)`` is coloured like ``state``."""
    cells = [list(row) for row in rows]
    plain = [[c if isinstance(c, str) else c[0] for c in row] for row in cells]
    widths = [max([len(h), *(len(r[i]) for r in plain)]) for i, h in enumerate(header)]
    lines = [click.style(_join(list(header), widths).rstrip(), bold=True)]
    for row, texts in zip(cells, plain, strict=True):
        while texts and not texts[-1]:  # no trailing blanks when a row ends early
            texts, row = texts[:-1], row[:-1]
        lines.append(_join(texts, widths, row))
    return "\n".join(lines)


def _join(texts: list[str], widths: Sequence[int], cells: Sequence[Cell] = ()) -> str:
    parts = []
    for i, text in enumerate(texts):
        padded = text if i == len(texts) - 1 else text.ljust(widths[i])
        cell = cells[i] if i < len(cells) else text
        parts.append(padded if isinstance(cell, str) else styled(padded, cell[1] or text))
    return "  ".join(parts)


def when(timestamp: float | None) -> str:
    """A timestamp in local time, to the second."""
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def size(n: int | None) -> str:
    """``1234567`` → ``1.2 MiB``."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def short(version: str | None) -> str:
    """A data version or hash shortened for display."""
    return version[:12] if version else "-"


def short_repr(value: Any) -> str:
    """A bounded ``repr`` of a stored value (long containers and strings are cut)."""
    shortener = reprlib.Repr()
    shortener.maxstring = shortener.maxother = 200
    shortener.maxlist = shortener.maxtuple = shortener.maxset = shortener.maxdict = 10
    shortener.maxlevel = 3
    return shortener.repr(value)


# ------------------------------------------------------------------ records

def status_table(statuses: Mapping[str, AssetStatus]) -> str:
    """One row per asset: its state and why."""
    reads = any(st.reads for st in statuses.values())
    rows: list[Sequence[Cell]] = []
    for name, st in statuses.items():
        row: list[Cell] = [name, (st.state, st.state), "; ".join(r.message for r in st.reasons)]
        rows.append(row + [_listed(st.reads)] if reads else row)
    return table(["ASSET", "STATE", "REASONS"] + (["READS"] if reads else []), rows)


def _listed(paths: Sequence[str], most: int = 3) -> str:
    """``paths`` joined, the first ``most`` of them and how many more."""
    shown = ", ".join(paths[:most])
    return shown + (f" (+{len(paths) - most} more)" if len(paths) > most else "")


def history_table(records: Sequence[Materialization]) -> str:
    """One row per materialization, newest first."""
    rows: list[Sequence[Cell]] = [
        [str(m.id), m.asset_name, (m.status, m.status), short(m.data_version), size(m.size),
         when(m.started_at), f"{m.duration:.2f}s", m.run_id[:8], error_line(m.error)]
        for m in records]
    return table(["ID", "ASSET", "STATUS", "DATA VERSION", "SIZE", "STARTED", "DURATION",
                  "RUN", "ERROR"], rows)


def error_line(error: str | None, width: int = 60) -> str:
    """The last line of a recorded error, cut to ``width``; empty for none."""
    line = last_line(error)
    return line if len(line) <= width else line[:width - 3] + "..."


def runs_table(records: Sequence[Run]) -> str:
    """One row per run, newest first."""
    rows: list[Sequence[Cell]] = []
    for r in records:
        took = f"{r.ended_at - r.started_at:.2f}s" if r.ended_at is not None else "-"
        selection = ", ".join(r.selection)
        rows.append([r.run_id[:8], (r.status, r.status), when(r.started_at), took,
                     str(r.n_materialized), str(r.n_reused), str(r.n_failed),
                     selection if len(selection) <= 40 else selection[:37] + "..."])
    return table(["RUN", "STATUS", "STARTED", "DURATION", "MATERIALIZED", "REUSED", "FAILED",
                  "ASSETS"], rows)


def outcome_table(outcomes: Mapping[str, tuple[str, str]]) -> str:
    """One row per planned asset of a run: materialized, reused, failed or not run."""
    rows: list[Sequence[Cell]] = [[name, (what, what), note]
                                  for name, (what, note) in outcomes.items()]
    return table(["ASSET", "OUTCOME", ""], rows)


def materialization_lines(m: Materialization) -> list[str]:
    """``show``: every field of one materialization as ``key  value`` lines."""
    upstream = ", ".join(f"{k}={short(v)}" for k, v in sorted(m.upstream_versions.items()))
    fields = [("asset_name", m.asset_name), ("status", styled(m.status)),
              ("data_version", m.data_version or "-"), ("size", size(m.size)),
              ("run_id", m.run_id), ("id", str(m.id)),
              ("started", when(m.started_at)), ("duration", f"{m.duration:.3f}s"),
              ("forced", "yes" if m.forced else "no"), ("code_hash", m.code_hash),
              ("config_hash", m.config_hash), ("config", json.dumps(dict(m.config))),
              ("upstream", upstream or "-"),
              ("libraries", ", ".join(f"{name} {version}" for name, version in
                                      sorted(m.libraries.items())) or "-"),
              ("metadata", json.dumps(dict(m.user_metadata)) if m.user_metadata else "-")]
    return [f"{click.style(k.ljust(16), bold=True)}{v}" for k, v in fields]


# ------------------------------------------------------------------ why

def explain(statuses: Mapping[str, AssetStatus], asset_name: str,
            seen: set[str] | None = None) -> dict[str, Any]:
    """Why ``asset_name`` is in its state, following upstream reasons to the root cause.

    Every ``upstream_stale`` / ``upstream_changed`` reason gets the explanation of that
    upstream under ``"upstream"`` (once per asset: a diamond refers back with ``"seen"``).
    """
    seen = set() if seen is None else seen
    seen.add(asset_name)
    status = statuses[asset_name]
    reasons = []
    for reason in status.reasons:
        item: dict[str, Any] = {"kind": reason.kind, "message": reason.message,
                                "details": dict(reason.details)}
        upstream = reason.details.get("upstream")
        if isinstance(upstream, str) and upstream in statuses:
            if upstream in seen:
                item["seen"] = upstream
            else:
                item["upstream"] = explain(statuses, upstream, seen)
        reasons.append(item)
    last = status.last
    return {"asset_name": asset_name, "state": status.state, "reasons": reasons,
            "last": None if last is None else {
                "run_id": last.run_id, "data_version": last.data_version,
                "started_at": last.started_at, "forced": last.forced}}


def why_lines(node: Mapping[str, Any], indent: str = "") -> list[str]:
    """The explanation tree of :func:`explain` as indented text with coloured diffs."""
    last = node["last"]
    head = f"{indent}{click.style(node['asset_name'], bold=True)} is {styled(node['state'])}"
    if last is not None and node["state"] == "fresh":
        forced = ", forced" if last["forced"] else ""
        head += (f" (materialized {when(last['started_at'])} in run {last['run_id'][:8]}"
                 f"{forced}, data version {short(last['data_version'])})")
    lines = [head + (":" if node["reasons"] else "")]
    for reason in node["reasons"]:
        lines.extend(_reason_lines(reason, indent + "  "))
    return lines


def _reason_lines(reason: Mapping[str, Any], indent: str) -> list[str]:
    details = reason["details"]
    kind = reason["kind"]
    text = reason["message"]
    if kind == "code_changed" and details.get("changed"):
        text += f" in {', '.join(details['changed'])}"
    if kind == "upstream_changed":
        text += (f": data version {short(details.get('old_data_version'))} -> "
                 f"{short(details.get('new_data_version'))}")
    if "seen" in reason:
        text += " (explained above)"
    lines = [f"{indent}- {text}"]
    body = indent + "    "
    if kind == "code_changed":
        if details.get("diff"):
            lines.extend(body + line for line in diff_lines(details["diff"]))
        elif "diff" not in details:
            lines.append(body + "(the previous code is not in the store: no diff)")
    elif kind == "config_changed":
        lines.extend(body + line for line in config_diff(details.get("old_config") or {},
                                                         details.get("new_config") or {}))
    elif kind == "input_changed" and details.get("diff"):  # a small text file
        lines.extend(body + line for line in diff_lines(details["diff"]))
    if "upstream" in reason:
        lines.extend(why_lines(reason["upstream"], indent + "  "))
    return lines


def config_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """A coloured unified diff of two configs rendered as sorted, indented JSON."""
    import difflib  # only for a diff (1 ms to import)

    def dump(config: Mapping[str, Any]) -> list[str]:
        return json.dumps(config, indent=2, sort_keys=True, default=repr).splitlines()

    text = "\n".join(difflib.unified_diff(dump(old), dump(new), "last materialization",
                                          "now", lineterm=""))
    return diff_lines(text)


def diff_lines(diff: str) -> list[str]:
    """The lines of a unified diff, additions green, removals red, hunks cyan."""
    out = []
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            out.append(click.style(line, bold=True))
        elif line.startswith("+"):
            out.append(click.style(line, fg="green"))
        elif line.startswith("-"):
            out.append(click.style(line, fg="red"))
        elif line.startswith("@@"):
            out.append(click.style(line, fg="cyan"))
        else:
            out.append(line)
    return out


# ------------------------------------------------------------------ graph

def mermaid(assets: Sequence[Asset], statuses: Mapping[str, AssetStatus]) -> str:
    """A Mermaid flowchart of ``assets`` (in run order), each node labelled with its state."""
    lines = ["flowchart LR"]
    for a in assets:
        lines.append(f'    {a.name}["{a.name}<br/>{statuses[a.name].state}"]')
    for a in assets:
        lines.extend(f"    {dep} --> {a.name}" for dep in a.deps)
    for state in sorted({s.state for s in statuses.values()}):
        members = ",".join(a.name for a in assets if statuses[a.name].state == state)
        lines.append(f"    classDef {state} fill:{_GRAPH_FILL.get(state, '#eee')},"
                     f"stroke:{_GRAPH_STROKE.get(state, '#666')}")
        lines.append(f"    class {members} {state}")
    return "\n".join(lines)


def dot(assets: Sequence[Asset], statuses: Mapping[str, AssetStatus]) -> str:
    """A Graphviz digraph of ``assets``, each node labelled and filled by its state."""
    lines = ["digraph kazeflow {", "    rankdir=LR;",
             '    node [shape=box, style="rounded,filled", fontname="Helvetica"];']
    for a in assets:
        state = statuses[a.name].state
        lines.append(f'    "{a.name}" [label="{a.name}\\n{state}", '
                     f'fillcolor="{_GRAPH_FILL.get(state, "#eeeeee")}", '
                     f'color="{_GRAPH_STROKE.get(state, "#666666")}"];')
    for a in assets:
        lines.extend(f'    "{dep}" -> "{a.name}";' for dep in a.deps)
    lines.append("}")
    return "\n".join(lines)
