"""Notebook display: the graph laid out left to right and coloured by state, and the HTML
of a flow, its statuses and a run, over real stores."""

import random
import xml.etree.ElementTree as ET

import pytest

from kazeflow import AssetStatus, Config, Flow, FlowRunError, Statuses, asset
from kazeflow.display import graph_svg, statuses_html
from kazeflow.display._layout import layout
from kazeflow.display._svg import MAX_DRAWN

SVG = "{http://www.w3.org/2000/svg}"


def boxes(html: str) -> dict[str, str]:
    """Asset name → state, read from the ``<svg>`` inside ``html`` (parsed as XML)."""
    svg = ET.fromstring(html[html.index("<svg"):html.index("</svg>") + len("</svg>")])
    return {g.get("data-asset"): g.get("class", "").removeprefix("asset").strip()
            for g in svg.iter(f"{SVG}g")}


def pipeline(factor=2, fail=False):
    @asset
    def raw():
        return [1, 2, 3]

    @asset(config_schema=Config)
    def scaled(config, raw):
        if fail:
            raise ValueError("<b>no</b> scaling today")
        return [x * factor for x in raw]

    @asset
    def total(scaled):
        return sum(scaled)

    @asset
    def count(raw):
        return len(raw)


@pytest.mark.parametrize("seed", range(20))
def test_layout_puts_every_asset_right_of_its_upstreams_in_distinct_rows(seed):
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(rng.randint(1, 40))]
    deps = {n: tuple(rng.sample(names[:i], k=min(i, rng.randint(0, 3))))
            for i, n in enumerate(names)}
    at = layout(deps)
    assert set(at) == set(deps)
    for name, ups in deps.items():
        # the column is the longest path from an asset without upstreams
        assert at[name][0] == (1 + max(at[u][0] for u in ups) if ups else 0)
    assert len(set(at.values())) == len(at)  # no two boxes on one spot


def test_a_flow_shows_its_graph_and_table_before_and_after_a_run(tmp_path):
    pipeline()
    store = tmp_path / "store"
    flow = Flow(["total", "count"], store=store)
    html = flow._repr_html_()
    assert not store.exists()  # a read, creates no store
    assert boxes(html) == dict.fromkeys(["raw", "scaled", "total", "count"], "missing")
    for name in ("raw", "scaled", "total", "count"):
        assert f"<tr><td>{name}</td><td>missing</td><td>never materialized</td></tr>" in html

    flow.run()
    statuses = flow.status()
    assert isinstance(statuses, Statuses) and statuses.deps["total"] == ("scaled",)
    html = statuses._repr_html_()
    assert boxes(html) == dict.fromkeys(["raw", "scaled", "total", "count"], "fresh")
    assert "4 fresh" in html and " s · " in html  # each box: last duration and size


def test_an_edit_shows_stale_with_its_reason_and_the_rest_fresh(tmp_path):
    pipeline()
    Flow(["total", "count"], store=tmp_path).run()
    pipeline(factor=3)  # scaled's code reads another value now
    html = Flow(["total", "count"], store=tmp_path)._repr_html_()
    assert boxes(html) == {"raw": "fresh", "scaled": "stale", "total": "stale",
                           "count": "fresh"}
    assert "code changed" in html


def test_a_failed_run_shows_failed_boxes_and_escaped_errors(tmp_path):
    pipeline(fail=True)
    flow = Flow(["total", "count"], store=tmp_path)
    with pytest.raises(FlowRunError) as caught:
        flow.run()
    run_html = caught.value.result._repr_html_()
    assert "&lt;b&gt;no&lt;/b&gt; scaling today" in run_html and "<b>no</b>" not in run_html
    for row in ("<td>raw</td><td>materialized</td>", "<td>scaled</td><td>failed</td>",
                "<td>total</td><td>not run</td>", "<td>count</td><td>materialized</td>"):
        assert row in run_html
    html = flow._repr_html_()
    assert boxes(html)["scaled"] == "failed"
    assert "<b>no</b>" not in html and "last attempt failed" in html


def test_a_run_result_lists_reused_assets_without_loading_them(tmp_path):
    pipeline()
    Flow(["total"], store=tmp_path).run()
    result = Flow(["total"], store=tmp_path).run()
    html = result._repr_html_()
    assert "<td>total</td><td>reused</td>" in html and "3 reused" in html
    assert result._stored  # nothing was loaded to show it


def test_no_picture_above_the_limit_but_the_table_still(tmp_path):
    deps = {f"a{i}": (f"a{i - 1}",) if i else () for i in range(MAX_DRAWN + 1)}
    assert graph_svg(deps) == ""
    assert graph_svg(dict(list(deps.items())[:3])).startswith("<svg")
    statuses = {name: AssetStatus(name, "missing") for name in deps}
    html = statuses_html(statuses, deps)
    assert "<svg" not in html and f"no graph drawn above {MAX_DRAWN} assets" in html
    assert html.count("<td>missing</td>") == MAX_DRAWN + 1
