"""``kazeflow ui`` in a real headless Chromium (Debian's ``chromium`` and
``chromium-driver``, through selenium): the graph's states, an asset's panel with its
code diff, a run's progress changing while it runs in another process. Screenshots go
to ``$KAZEFLOW_TEST_ARTEFACTS`` (default: the test's tmp_path);
``KAZEFLOW_UPDATE_DOCS=1`` also writes README's ``examples/ui.png``."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _services import require, unavailable
from test_ui_api import Project, Ui

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
#: Flags without which Chromium's background connections are refused on CI machines.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--window-size=1400,860")


def _binary(*candidates: str) -> str | None:
    return next((found for c in candidates if (found := shutil.which(c))), None)


@pytest.fixture
def browser(tmp_path) -> Iterator[Any]:
    """A headless Chromium with a fresh profile (skipped, or failed in CI, without it)."""
    webdriver = require("selenium.webdriver", "test")
    chromium = _binary("chromium", "chromium-browser", "google-chrome")
    driver_path = _binary("chromedriver")
    if chromium is None or driver_path is None:
        unavailable("chromium or chromedriver is not installed: apt-get install chromium "
                    "chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=driver_path)
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def artefacts(tmp_path) -> Path:
    folder = Path(os.environ.get("KAZEFLOW_TEST_ARTEFACTS") or tmp_path / "artefacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(tmp_path) -> Iterator[tuple[Project, Ui]]:
    """flows.py of test_ui_api run once with threads (all but ``gate``), and its page."""
    project = Project(tmp_path)
    project.kazeflow("run", "flows.py", "-s", "report", "-s", "boom", "--executor",
                     "threads", rc=1)
    server = Ui(project)
    yield project, server
    server.stop()


def _until(browser: Any, check: Callable[[], Any], timeout: float = 20) -> Any:
    """The first truthy ``check()`` within ``timeout`` seconds (the page polls every one)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    def attempt(_: Any) -> Any:
        try:
            return check()
        except StaleElementReferenceException:  # redrawn between finding and reading
            return None

    return WebDriverWait(browser, timeout, poll_frequency=0.1).until(attempt)


def _states(browser: Any) -> dict[str, str]:
    from selenium.webdriver.common.by import By

    return {n.get_attribute("data-name"): n.get_attribute("data-state")
            for n in browser.find_elements(By.CSS_SELECTOR, "#graph g.node")}


def _node(browser: Any, name: str) -> Any:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.CSS_SELECTOR, f'#graph g.node[data-name="{name}"]')


def test_the_graph_shows_states_and_a_panel_shows_the_code_diff(browser, page, artefacts):
    from selenium.webdriver.common.by import By

    project, server = page
    browser.get(server.url)
    expected = {"raw_data": "fresh", "processed_data": "fresh", "other": "fresh",
                "report": "fresh", "boom": "failed", "gate": "missing"}
    _until(browser, lambda: _states(browser) == expected)
    assert re.search(r"fresh · 2\d\d ms · 5 B", _node(browser, "other").text)  # slept 0.2 s
    browser.save_screenshot(str(artefacts / "ui-graph.png"))

    project.edit("x > 0", "x >= 2")
    _until(browser, lambda: _states(browser)["processed_data"] == "stale")  # no reload
    assert _states(browser)["report"] == "stale"
    _node(browser, "report").click()
    added = _until(browser, lambda: [e.text for e in browser.find_elements(
        By.CSS_SELECTOR, "#why pre.diff .add")])
    assert added == ["+    return [x for x in xs if x >= 2]"]
    panel = browser.find_element(By.ID, "panel").text
    assert "upstream 'processed_data' is stale" in panel and "code changed in clean" in panel
    assert "'total=11 n=5'" in panel  # the preview of the stored value
    rows = browser.find_elements(By.CSS_SELECTOR, "table.history tbody tr")
    assert len(rows) == 1 and "materialized" in rows[0].text
    browser.save_screenshot(str(artefacts / "ui-asset.png"))
    if os.environ.get("KAZEFLOW_UPDATE_DOCS") == "1":
        browser.save_screenshot(str(REPO / "examples" / "ui.png"))


def test_a_runs_progress_changes_while_it_runs_in_another_process(browser, page, artefacts):
    from selenium.webdriver.common.by import By

    project, server = page
    browser.get(server.url)
    _until(browser, lambda: _states(browser).get("gate") == "missing")
    running = project.start_run("-s", "gate", "-s", "report", "--executor", "threads")
    try:
        _until(browser, lambda: _states(browser)["gate"] == "running")
        live = browser.find_element(By.ID, "live")
        assert "running" in live.text
        live.click()

        def outcome(name: str) -> str:
            return browser.find_element(
                By.CSS_SELECTOR, f'#run tr[data-asset="{name}"]').get_attribute("data-outcome")

        _until(browser, lambda: outcome("gate") == "running")
        assert outcome("raw_data") == "reused"
        assert browser.find_element(By.ID, "run").get_attribute("data-status") == "running"
        browser.save_screenshot(str(artefacts / "ui-run-running.png"))
        project.gate.touch()
        _until(browser, lambda: outcome("gate") == "materialized")
        assert running.wait(30) == 0
    finally:
        running.kill()
        running.communicate()
    _until(browser, lambda: browser.find_element(By.ID, "run").get_attribute(
        "data-status") == "succeeded")
    bars = browser.find_elements(By.CSS_SELECTOR, 'svg.gantt rect.bar[data-asset="gate"]')
    assert len(bars) == 1 and "estimated" not in bars[0].get_attribute("class")
    assert _states(browser)["gate"] == "fresh"
    assert not browser.find_element(By.ID, "live").is_displayed()
    browser.save_screenshot(str(artefacts / "ui-run-done.png"))
