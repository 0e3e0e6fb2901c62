"""The Streamlit app under AppTest with a fake API client: pages, filters → requests, errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from fakes import WATERMARK, FakeClient, bands_body, canned
from streamlit.testing.v1 import AppTest

import signal_dashboard
from signal_dashboard.adapters.api_client import ApiError
from signal_dashboard.core.filters import format_instant
from signal_dashboard.settings import get_settings
from signal_dashboard.ui.context import CONTEXT_KEY
from signal_dashboard.wiring import CLIENT_KEY

APP = str(Path(signal_dashboard.__file__).with_name("app.py"))
DATA_ROUTES = (
    "/v1/summary",
    "/v1/pipeline",
    "/v1/kpis/signal-strength",
    "/v1/kpis/gps-precision",
    "/v1/kpis/status-counts",
    "/v1/kpis/signal-quality",
    "/v1/coverage",
    "/v1/alerts",
)
PAGES = ("views/overview.py", "views/coverage.py", "views/alerts.py", "views/pipeline.py")


def start(query: dict[str, str | list[str]] | None = None) -> tuple[AppTest, FakeClient]:
    app = AppTest.from_file(APP, default_timeout=60)
    fake = FakeClient()
    app.session_state[CLIENT_KEY] = fake
    for key, value in (query or {}).items():
        app.query_params[key] = value
    app.run()
    assert not app.exception, app.exception
    return app, fake


def query(app: AppTest, key: str) -> list[str]:
    value = app.query_params[key]
    return [value] if isinstance(value, str) else list(value)


def markdown(app: AppTest) -> str:
    return "\n".join(m.value for m in app.markdown)


def requests_to(fake: FakeClient, path: str) -> list[dict[str, list[str]]]:
    result = []
    for request in fake.requests:
        if request.path == path:
            params: dict[str, list[str]] = {}
            for key, value in request.params:
                params.setdefault(key, []).append(value)
            result.append(params)
    return result


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_its_data(page: str) -> None:
    app, fake = start()
    fake.requests.clear()
    app.switch_page(page)
    app.run()
    assert not app.exception, app.exception
    route = {
        "views/overview.py": "/v1/kpis/signal-strength",
        "views/coverage.py": "/v1/coverage",
        "views/alerts.py": "/v1/alerts",
        "views/pipeline.py": "/v1/pipeline",
    }[page]
    assert route in {r.path for r in fake.requests}
    assert not app.error, [e.value for e in app.error]
    expected = {
        "views/overview.py": ("Network overview", "1,234"),
        "views/coverage.py": ("Coverage map", ""),
        "views/alerts.py": ("Alerts", ""),
        "views/pipeline.py": ("Pipeline health", "20.0 events/s"),
    }[page]
    assert app.title[0].value == expected[0]
    assert expected[1] in markdown(app)
    if page == "views/alerts.py":
        assert app.dataframe[0].value["postal_code"].tolist() == ["47014"]
    if page == "views/coverage.py":
        assert app.dataframe[0].value["postal_code"].tolist() == ["47014", "47001"]
    # every panel names the request behind it
    assert any("GET http://api.test/v1/" in c.value for c in app.caption)


def test_overview_asks_the_api_for_the_sidebars_filters() -> None:
    app, fake = start()
    first = requests_to(fake, "/v1/kpis/signal-strength")[-1]
    assert first["granularity"] == ["1m"]
    assert "operator" not in first
    fake.requests.clear()
    app.sidebar.multiselect(key="f_ops").select("Orange").run()
    app.sidebar.multiselect(key="f_nets").select("4G").run()
    app.sidebar.selectbox(key="f_range").select("24h").run()
    assert not app.exception
    last = requests_to(fake, "/v1/kpis/signal-strength")[-1]
    assert last["operator"] == ["Orange"]
    assert last["network_type"] == ["4G"]
    assert last["granularity"] == ["15m"]  # the default for 24 h
    assert last["by_network_type"] == ["false"]
    assert query(app, "range") == ["24h"]
    assert query(app, "op") == ["Orange"]
    app.sidebar.text_input(key="f_pc").input("47014, 47015").run()
    status = requests_to(fake, "/v1/kpis/status-counts")[-1]
    assert status["postal_code"] == ["47014", "47015"]
    assert status["top"] == ["10"]


def test_a_shared_link_opens_the_same_view() -> None:
    app, fake = start({"range": "6h", "gran": "15m", "op": ["Vodafone"], "live": "0"})
    request = requests_to(fake, "/v1/kpis/signal-strength")[-1]
    assert request["granularity"] == ["15m"]
    assert request["operator"] == ["Vodafone"]
    assert app.sidebar.toggle(key="f_live").value is False
    assert app.sidebar.selectbox(key="f_gran").options == ["1m", "5m", "15m", "1h"]


def test_a_bad_link_says_what_it_ignored() -> None:
    app, _ = start({"range": "1h", "gran": "1d"})
    warnings = [w.value for w in app.sidebar.warning]
    assert any("1d" in w for w in warnings)
    assert app.sidebar.selectbox(key="f_gran").value == "1m"


def test_api_error_shows_a_banner_and_keeps_the_last_data() -> None:
    app, fake = start()
    assert "1,234" in markdown(app)
    charts_before = len(app.get("plotly_chart"))
    fake.fail = "cannot reach the metrics API at http://api.test: connection refused"
    app.run()
    assert not app.exception
    banner = app.error[0].value
    assert "connection refused" in banner
    assert "Showing the last good data, from" in banner
    assert "1,234" in markdown(app)  # the tiles still show the last figures
    assert len(app.get("plotly_chart")) == charts_before
    assert any("(last good data)" in c.value for c in app.caption)


def test_api_error_before_any_data_says_so_without_a_traceback() -> None:
    app = AppTest.from_file(APP, default_timeout=60)
    fake = FakeClient()
    fake.fail = "the metrics API answered 503: the query engine is unavailable"
    app.session_state[CLIENT_KEY] = fake
    app.run()
    assert not app.exception
    assert "No data has been received" in app.error[0].value
    for page in PAGES[1:]:
        app.switch_page(page).run()
        assert not app.exception
        assert "503" in app.error[0].value


def test_pausing_stops_the_live_refresh() -> None:
    app, _ = start()
    app.sidebar.toggle(key="f_live").set_value(False).run()
    assert query(app, "live") == ["0"]
    assert app.session_state[CONTEXT_KEY].run_every is None
    app.sidebar.toggle(key="f_live").set_value(True).run()
    assert app.session_state[CONTEXT_KEY].run_every == get_settings().refresh_s


def test_alerts_page_shows_the_selected_codes_last_hour() -> None:
    app, fake = start()
    app.switch_page("views/alerts.py").run()
    assert not app.exception
    assert app.selectbox(key="alert_postal_code").value == "47014"
    series = requests_to(fake, "/v1/kpis/status-counts")[-1]
    assert series["postal_code"] == ["47014"]
    assert series["granularity"] == ["1m"]
    assert "47014: events per status, last hour" in [h.value for h in app.subheader]
    assert "1 postal code in trouble: **47014**" in markdown(app)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_says_what_time_its_data_is_as_of(page: str) -> None:
    app, fake = start()
    app.switch_page(page).run()
    assert not app.exception
    expected = f"Data as of {WATERMARK:%Y-%m-%d %H:%M:%S} UTC"
    assert any(c.value.startswith(expected) for c in app.caption), [c.value for c in app.caption]
    # the oldest watermark of the page's answers: one older answer sets it
    older = WATERMARK - dt.timedelta(minutes=3)
    path = {
        "views/overview.py": "/v1/summary",
        "views/coverage.py": "/v1/coverage",
        "views/alerts.py": "/v1/alerts",
        "views/pipeline.py": "/v1/pipeline",
    }[page]
    body = canned(path)
    fake.bodies[path] = {**body, "meta": {**body["meta"], "watermark": format_instant(older)}}
    app.run()
    assert any(f"Data as of {older:%Y-%m-%d %H:%M:%S} UTC" in c.value for c in app.caption)
    # no batch in the API's lookback: said so, never a made-up time
    for route in DATA_ROUTES:
        current = canned(route)
        fake.bodies[route] = {**current, "meta": {**current["meta"], "watermark": None}}
    app.run()
    assert any(c.value.startswith("Data as of: unknown") for c in app.caption)


def test_the_coverage_legend_and_bands_come_from_the_api() -> None:
    app, fake = start()
    app.switch_page("views/coverage.py").run()
    assert "/v1/meta/bands" in {r.path for r in fake.requests}
    legend = markdown(app)
    assert "good (-90 to -81 dBm)" in legend  # libs/common's LTE bands, as the API serves them
    assert "band definition v2" in legend
    assert app.dataframe[0].value["band"].tolist() == ["poor", "good"]  # -130, -85 dBm
    # the API applies other LTE thresholds (its settings override them): legend and map follow
    fake.bodies["/v1/meta/bands"] = bands_body(excellent_min=-86, good_min=-95, fair_min=-105)
    app.run()
    legend = markdown(app)
    assert "excellent (≥ -86 dBm)" in legend
    assert "good (-95 to -87 dBm)" in legend
    assert "overridden by settings" in legend
    assert app.dataframe[0].value["band"].tolist() == ["poor", "excellent"]
    thresholds = app.dataframe[1].value.set_index("network_type")
    assert thresholds.loc["4G", ["excellent_min", "good_min", "fair_min"]].tolist() == [
        -86,
        -95,
        -105,
    ]
    assert thresholds.loc["3G", "hole_max_dbm"] == -105  # the API's other RATs, as served


def test_without_the_api_band_definition_the_legend_says_it_shows_the_defaults() -> None:
    app, fake = start()
    app.switch_page("views/coverage.py").run()
    original = fake._get

    def failing_bands(path: str, params: list[tuple[str, str]]) -> Any:
        if path == "/v1/meta/bands":
            raise ApiError("the metrics API answered 404 (Not Found)", status=404)
        return original(path, params)

    fake._get = failing_bands  # type: ignore[method-assign]
    app.session_state["signal_dashboard.last_good"] = {}  # no earlier definition either
    app.run()
    assert not app.exception
    assert "libs/common's default bands v2 (the API's definition is unavailable)" in markdown(app)
    assert "404" in app.error[0].value


def test_overview_explains_the_quality_bands_from_the_api() -> None:
    app, fake = start()
    assert "/v1/meta/bands" in {r.path for r in fake.requests}
    captions = " ".join(c.value for c in app.caption)
    assert "4G RSRP excellent ≥ -80, good ≥ -90, fair ≥ -100 dBm" in captions
    fake.bodies["/v1/meta/bands"] = bands_body(excellent_min=-77)
    app.run()
    captions = " ".join(c.value for c in app.caption)
    assert "4G RSRP excellent ≥ -77" in captions
    assert "overridden by settings" in captions


def test_pipeline_throughput_tile_rates_the_batch_span() -> None:
    app, _ = start()
    app.switch_page("views/pipeline.py").run()
    html = markdown(app)
    assert "data-tile='Throughput (first to last batch)'" in html
    assert "20.0 events/s" in html
    assert "2.7 events/s" not in html  # the range-wide figure is not the headline any more
