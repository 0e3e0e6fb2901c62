"""The dashboard in a real browser: Debian's Chromium driven by Playwright, over the real
metrics API and the fixture lake. Screenshots of every page are saved as test artifacts."""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from dashboard_support import OPERATORS_IN_LAKE, start_dashboard
from lake import TROUBLE_CODE
from playwright.sync_api import Browser, Page, sync_playwright

from signal_local.endpoints import ManagedProcess

CHROMIUM = os.environ.get("SIGNAL_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def dashboard(
    api: ManagedProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ManagedProcess]:
    proc = start_dashboard(api.url, tmp_path_factory.mktemp("dashboard-logs"), refresh_s=4)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install -y chromium); "
            "never `playwright install`"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = context.new_page()
    yield page
    context.close()


def wait_for_charts(page: Page, count: int) -> None:
    page.wait_for_function(
        f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {count}", timeout=60_000
    )


def caption_time(page: Page, path: str) -> str:
    captions = page.locator("[data-testid=stCaptionContainer]").filter(has_text=path)
    text = captions.first.inner_text()
    found = re.search(r"(\d\d:\d\d:\d\d) UTC", text)
    assert found, text
    return found.group(1)


def test_overview_shows_the_lakes_figures_and_refreshes_itself(
    dashboard: ManagedProcess, page: Page, events: pd.DataFrame, artifacts: Path
) -> None:
    started = time.monotonic()
    page.goto(dashboard.url + "/")
    wait_for_charts(page, 4)
    first_chart_s = time.monotonic() - started
    body = page.inner_text("body")
    for operator in OPERATORS_IN_LAKE:
        assert operator in body or page.locator(f"text={operator}").count() > 0
    # the events/min tile equals the known events of the minute it names
    minute_text = re.search(r"latest complete minute, (\d\d:\d\d) UTC", body)
    assert minute_text, body
    tile = page.locator("[data-tile='Events / min'] .signal-tile-value").inner_text()
    hour, minute = map(int, minute_text.group(1).split(":"))
    in_minute = events["event_time"].dt.floor("min")
    expected = int(((in_minute.dt.hour == hour) & (in_minute.dt.minute == minute)).sum())
    assert int(tile.replace(",", "")) == expected
    # one automatic refresh, without touching the page
    before = caption_time(page, "/v1/kpis/signal-strength")
    page.wait_for_function(
        "(before) => [...document.querySelectorAll('[data-testid=stCaptionContainer]')]"
        ".some(e => e.innerText.includes('/v1/kpis/signal-strength') && "
        "!e.innerText.includes(before))",
        arg=before,
        timeout=30_000,
    )
    assert caption_time(page, "/v1/kpis/signal-strength") != before
    page.screenshot(path=str(artifacts / "overview.png"), full_page=True)
    print(f"time to first chart: {first_chart_s:.1f} s")


def test_alerts_page_lists_the_outage(
    dashboard: ManagedProcess, page: Page, artifacts: Path
) -> None:
    page.goto(dashboard.url + "/alerts")
    page.wait_for_selector("[data-testid=stDataFrame]", timeout=60_000)
    page.wait_for_function(f"document.body.innerText.includes('{TROUBLE_CODE}')", timeout=30_000)
    # the page streams in: TROUBLE_CODE shows first in the selected area's request caption, so
    # wait for the rule's name too (CI once read the body between the two)
    page.wait_for_function("document.body.innerText.includes('out_of_service')", timeout=30_000)
    body = page.inner_text("body")
    assert "out_of_service" in body  # the evaluator's rule, firing
    assert "Evaluator's newest cycle" in body
    assert "Timeline per area" in body
    page.screenshot(path=str(artifacts / "alerts.png"), full_page=True)


def test_coverage_and_pipeline_pages_draw(
    dashboard: ManagedProcess, page: Page, artifacts: Path, events: pd.DataFrame
) -> None:
    page.goto(dashboard.url + "/coverage")
    page.wait_for_selector("canvas", timeout=60_000)  # the deck.gl layer
    page.wait_for_function(f"document.body.innerText.includes('{TROUBLE_CODE}')", timeout=30_000)
    # RARE_CODE has fewer events than the API's minimum: its row is withheld and greyed
    page.wait_for_function(
        "document.body.innerText.includes('Grey rows: the API withholds')", timeout=30_000
    )
    page.wait_for_function("document.body.innerText.includes('95 % interval')", timeout=30_000)
    page.wait_for_timeout(1500)
    page.screenshot(path=str(artifacts / "coverage.png"), full_page=True)
    page.goto(dashboard.url + "/pipeline")
    wait_for_charts(page, 1)
    valid = f"{len(events):,}"
    page.wait_for_function(f"document.body.innerText.includes('{valid}')", timeout=30_000)
    page.screenshot(path=str(artifacts / "pipeline.png"), full_page=True)


def test_coverage_page_draws_h3_hexagons_with_a_withheld_cell(
    dashboard: ManagedProcess, page: Page, artifacts: Path
) -> None:
    page.goto(dashboard.url + "/coverage")
    page.wait_for_function(f"document.body.innerText.includes('{TROUBLE_CODE}')", timeout=60_000)
    page.get_by_text("H3 hexagons").click()
    page.wait_for_function("document.body.innerText.includes('Worst hexagons')", timeout=60_000)
    # RARE_CODE's few events sit in one resolution-9 cell: the API withholds it, the page greys it
    page.wait_for_function(
        "document.body.innerText.includes('Grey cells: the API withholds')", timeout=30_000
    )
    page.wait_for_selector("canvas", timeout=60_000)  # the deck.gl H3HexagonLayer
    body = page.inner_text("body")
    assert "Worst serving cells" in body
    assert "resolution 9 (about 0.1 km²)" in body
    assert "median event" in body  # the legend says what the colour is
    page.wait_for_timeout(1500)
    page.screenshot(path=str(artifacts / "coverage_h3.png"), full_page=True)


def test_api_down_shows_the_banner_and_keeps_the_data(
    api: ManagedProcess, page: Page, tmp_path: Path
) -> None:
    proxy_target = api.url  # a dashboard whose API disappears: point it at a port we close
    from signal_local.endpoints import free_port

    port = free_port()
    import http.server
    import threading
    import urllib.request

    class Forward(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            request = urllib.request.Request(proxy_target + self.path, headers=dict(self.headers))
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    data, status = response.read(), response.status
            except urllib.error.HTTPError as exc:
                data, status = exc.read(), exc.code
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Forward)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    dashboard = start_dashboard(
        f"http://127.0.0.1:{port}",
        tmp_path,
        refresh_s=3,
        extra={"SIGNAL_DASHBOARD_RETRIES": "0"},
    )
    try:
        page.goto(dashboard.url + "/")
        wait_for_charts(page, 4)
        server.shutdown()
        server.server_close()
        page.wait_for_selector("[data-testid=stAlertContentError]", timeout=30_000)
        banner = page.locator("[data-testid=stAlertContentError]").first.inner_text()
        assert "cannot reach the metrics API" in banner
        assert "Showing the last good data" in banner
        assert page.locator(".js-plotly-plot").count() >= 4  # the charts stay
        assert "Traceback" not in page.inner_text("body")
    finally:
        dashboard.stop()
    _ = dt.datetime.now(dt.UTC)
