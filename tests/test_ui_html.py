"""The HTML that Jupyter shows for a flow, its statuses and a run result
(:mod:`kazeflow.ui._html`): states, reasons and the graph, escaped, self-contained."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from kazeflow import Flow, asset
from kazeflow.errors import FlowRunError
from kazeflow.ui import _html


@pytest.fixture
def flow(tmp_path) -> Flow:
    @asset
    def source():
        return [1, 2]

    @asset
    def total(source):
        return sum(source)

    @asset
    def broken(source):
        raise ValueError("<bad> on purpose")

    @asset
    def after(total, broken):
        return total

    flow = Flow(store=tmp_path / "store")
    with pytest.raises(FlowRunError):
        flow.run()
    return flow


def test_a_flow_is_its_graph_by_state_and_a_table_of_reasons(flow):
    html = _html.flow_html(flow)
    svg = html[html.index("<svg"):html.index("</svg>") + 6]
    nodes = {g.find("{http://www.w3.org/2000/svg}title").text  # type: ignore[union-attr]
             for g in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}g")}
    assert nodes == {"source: fresh", "total: fresh", "broken: failed", "after: missing"}
    assert svg.count("<path") == 4  # one edge per dependency
    assert "its last attempt failed: ValueError: &lt;bad&gt; on purpose" in html
    assert "<bad>" not in html and "<script" not in html


def test_statuses_and_a_run_result_are_tables(flow):
    statuses = _html.status_html(flow.status())
    assert statuses.count("<tr>") == 5 and "never materialized" in statuses
    with pytest.raises(FlowRunError) as caught:
        flow.run()
    result = _html.run_result_html(caught.value.result)
    assert "2 reused, 1 failed" in result and ">not run<" in result
    assert result.index(">reused<") < result.index(">failed<") < result.index(">not run<")


def test_html_needs_no_server():
    code = ("import sys; import kazeflow.ui._html; "
            "print(sorted(m for m in sys.modules if m in ('http.server', 'click') "
            "or m.startswith('kazeflow.ui._s')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == "[]", done.stderr
