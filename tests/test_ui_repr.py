"""In Jupyter a Flow, ``flow.status()`` and a RunResult show as HTML (``_repr_html_``,
rendered by :mod:`kazeflow.ui._html`)."""

from __future__ import annotations

from kazeflow import Flow, asset


def test_a_flow_its_statuses_and_a_run_result_have_html(tmp_path):
    @asset
    def source():
        return 1

    @asset
    def doubled(source):
        return 2 * source

    flow = Flow(store=tmp_path / "store")
    before = flow.status()
    assert isinstance(before, dict) and before["doubled"].state == "missing"
    assert "never materialized" in before._repr_html_()
    assert not (tmp_path / "store").exists()  # showing a flow creates no store
    result = flow.run()
    assert "2 materialized, 0 reused" in result._repr_html_()
    html = flow._repr_html_()
    assert "<svg" in html and html.count(">fresh<") == 4  # two nodes, two table rows
