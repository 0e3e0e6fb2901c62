"""The Streamlit app under AppTest with a fake API client: pages, filters → requests, errors."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fakes import NOW, WATERMARK, FakeClient, bands_body, canned
from streamlit.testing.v1 import AppTest

import signal_dashboard
from signal_dashboard.adapters.api_client import ApiError
from signal_dashboard.core.filters import format_instant
from signal_dashboard.settings import get_settings
from signal_dashboard.ui.context import CONTEXT_KEY
from signal_dashboard.wiring import CLIENT_KEY

APP = str(Path(signal_dashboard.__file__).with_name("streamlit_app.py"))
DATA_ROUTES = (
    "/v1/summary",
    "/v1/pipeline",
    "/v1/kpis/signal-strength",
    "/v1/kpis/gps-precision",
    "/v1/kpis/status-counts",
    "/v1/kpis/signal-quality",
    "/v1/coverage",
    "/v1/alerts/active",
    "/v1/alerts/history",
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
        "views/alerts.py": "/v1/alerts/active",
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
        assert app.dataframe[0].value["area"].tolist() == ["47014", "47002"]
    if page == "views/coverage.py":
        assert app.dataframe[0].value["postal_code"].tolist() == ["47014", "47001", "47100"]
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
    app.selectbox(key="alert_postal_code").select("47002").run()
    assert requests_to(fake, "/v1/kpis/status-counts")[-1]["postal_code"] == ["47002"]


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
        "views/alerts.py": "/v1/alerts/active",
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
    # -130, -85 dBm; the third code has too few events: the API withheld it
    assert app.dataframe[0].value["band"].tolist() == ["poor", "good", "withheld"]
    # the API applies other LTE thresholds (its settings override them): legend and map follow
    fake.bodies["/v1/meta/bands"] = bands_body(excellent_min=-86, good_min=-95, fair_min=-105)
    app.run()
    legend = markdown(app)
    assert "excellent (≥ -86 dBm)" in legend
    assert "good (-95 to -87 dBm)" in legend
    assert "overridden by settings" in legend
    assert app.dataframe[0].value["band"].tolist() == ["poor", "excellent", "withheld"]
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


def alerts_page(query: dict[str, str | list[str]] | None = None) -> tuple[AppTest, FakeClient]:
    app, fake = start(query)
    fake.requests.clear()
    app.switch_page("views/alerts.py").run()
    assert not app.exception, app.exception
    return app, fake


def test_alerts_page_lists_the_evaluators_alerts_with_a_link_to_each_areas_map() -> None:
    app, fake = alerts_page({"pc": "47014, 47002"})
    assert requests_to(fake, "/v1/alerts/active")[-1] == {"postal_code": ["47014", "47002"]}
    table = app.dataframe[0].value
    assert table["state"].tolist() == ["firing", "pending"]
    assert table["rule"].tolist() == ["out_of_service", "coverage_hole"]
    assert table["sample_size"].tolist() == [180, 64]
    assert table["measures"].tolist() == [
        "180 events, 80.0% out of service",
        "64 events, 24 weak, 37.5% weak, 7 devices",
    ]
    # 22 min + 15 min margin fits the last hour; the 2 h pending episode needs 6 h
    assert table["map"].tolist() == ["coverage?pc=47014&range=1h", "coverage?pc=47002&range=6h"]
    assert table["since"].iloc[0] == NOW - dt.timedelta(minutes=22)
    captions = " ".join(c.value for c in app.caption)
    assert "Evaluator's newest cycle:" in captions
    assert "15 rule × area pairs judged" in captions
    assert not app.warning
    assert not app.error
    # the link opens the Coverage page with that filter (what the sidebar reads back)
    coverage = AppTest.from_file(APP, default_timeout=60)
    coverage.session_state[CLIENT_KEY] = FakeClient()
    coverage.query_params["pc"] = "47014"
    coverage.query_params["range"] = "1h"
    coverage.run()
    coverage.switch_page("views/coverage.py").run()
    assert coverage.sidebar.text_input(key="f_pc").value == "47014"


def test_alerts_page_draws_a_timeline_per_area_from_the_history() -> None:
    app, fake = alerts_page({"range": "6h"})
    history = requests_to(fake, "/v1/alerts/history")[-1]
    start_, end_ = (dt.datetime.fromisoformat(history[k][0]) for k in ("from", "to"))
    assert end_ - start_ >= dt.timedelta(hours=6)
    figure = next(c for c in app.get("plotly_chart") if "timeline" in str(c.proto.id))
    spec = json.loads(figure.proto.spec)
    bars = {(trace["name"], y): trace for trace in spec["data"] for y in trace["y"]}
    assert set(bars) == {
        ("pending", "47008 · signal_drop"),
        ("firing", "47008 · signal_drop"),
        ("pending", "47014 · out_of_service"),
        ("firing", "47014 · out_of_service"),
        ("episode start (since)", "47008 · signal_drop"),
        ("episode start (since)", "47014 · out_of_service"),
    }
    # every transition listed, newest first, the correction marked
    transitions = app.dataframe[1].value
    assert transitions["change"].tolist()[0] == "pending → firing"
    assert transitions["correction"].tolist() == [True, False, False, False, False]


def test_alerts_page_shows_the_rules_with_their_sources() -> None:
    app, fake = alerts_page()
    assert "/v1/alerts/rules" in {r.path for r in fake.requests}
    rules = app.dataframe[2].value.set_index("rule")
    assert rules.loc["coverage_hole", "fire_after_windows"] == 3
    assert rules.loc["coverage_hole", "thresholds"] == (
        "weak_share 0.3; min_events 50; min_devices 5; hole_max_dbm: 4G -110, 3G -105"
    )
    assert rules.loc["coverage_hole", "source"].startswith("drive-test practice")
    assert "4G: 3GPP TS 36.133 RSRP range" in rules.loc["coverage_hole", "source"]
    assert rules.loc["out_of_service", "source"] == "metrics-api 0.4 /v1/alerts thresholds"
    assert "resolves after 3 clear windows in a row" in markdown(app)


def test_alerts_page_says_the_evaluator_never_ran_instead_of_all_clear() -> None:
    app, fake = start()
    fake.errors["/v1/alerts/active"] = ApiError(
        "the metrics API answered 503: no alert evaluation has been recorded yet",
        status=503,
        code="alerts_not_evaluated",
    )
    app.switch_page("views/alerts.py").run()
    assert not app.exception
    errors = [e.value for e in app.error]
    assert len(errors) == 1
    assert "The alert evaluator has never run" in errors[0]
    assert "signal-api alerts evaluate" in errors[0]
    assert not app.success  # never a quiet "all clear"
    assert "Rules" in [h.value for h in app.subheader]  # the rest of the page still draws


def test_alerts_page_warns_when_the_evaluator_is_stale() -> None:
    app, fake = start()
    body = canned("/v1/alerts/active")
    fake.bodies["/v1/alerts/active"] = {**body, "stale": True, "age_s": 912.0, "alerts": []}
    app.switch_page("views/alerts.py").run()
    assert not app.exception
    warnings = [w.value for w in app.warning]
    assert any("The alert evaluator is stale" in w and "15 min 12 s ago" in w for w in warnings)
    assert any("not current" in w for w in warnings)
    assert not app.success
    # a current, empty cycle is an explicit all clear
    fake.bodies["/v1/alerts/active"] = {**body, "alerts": []}
    app.run()
    assert [s.value for s in app.success] == [
        "The evaluator's newest cycle found no area firing or pending."
    ]


def test_the_coverage_table_greys_a_withheld_code_and_shows_intervals() -> None:
    app, fake = start()
    app.switch_page("views/coverage.py").run()
    assert not app.exception
    table = app.dataframe[0].value.set_index("postal_code")
    assert table.loc["47014", "out_of_service_ci"] == "76.3%–83.3%"
    assert table.loc["47001", "out_of_service_ci"] == "0.7%–1.5%"
    # the page asks for the median and p10 and shows them beside the devices behind each code
    assert requests_to(fake, "/v1/coverage")[-1]["percentiles"] == ["10,50"]
    assert list(table.loc["47014", ["signal_p50", "signal_p10", "devices"]]) == [-131, -141, 61]
    assert pd.isna(table.loc["47100", "signal_p50"])
    assert "average -130.0 dBm (median -131, p10 -141 dBm) over 500 events from 61 devices" in (
        markdown(app)
    )
    assert table.loc["47100", "note"] == (
        "withheld: 7 events, fewer than the API's minimum of 20 events"  # from the answer's meta
    )
    assert pd.isna(table.loc["47100", "out_of_service_share"])
    assert any(
        c.value.startswith("Grey rows: the API withholds")
        and "fewer than 20 events or 5 distinct devices" in c.value
        for c in app.caption
    )
    assert "(95 % interval 76.3%–83.3%)" in markdown(app)


def test_the_coverage_page_toggles_to_h3_hexagons_and_greys_a_withheld_cell() -> None:
    app, fake = start()
    app.switch_page("views/coverage.py").run()
    assert not requests_to(fake, "/v1/coverage/h3")  # postal codes by default
    app.radio(key="coverage_areas").set_value("H3 hexagons").run()
    assert not app.exception
    assert requests_to(fake, "/v1/coverage/h3")[-1]["res"] == ["9"]
    table = app.dataframe[0].value.set_index("h3_cell")
    assert table.index.tolist() == ["89390cb1b5bffff", "89390cb1a2fffff", "89390cb1b0fffff"]
    assert table.loc["89390cb1b5bffff", ["band", "signal_p50", "out_of_service_ci"]].tolist() == [
        "poor", -129, "70.0%–79.4%",
    ]  # fmt: skip
    assert table.loc["89390cb1b0fffff", "band"] == "withheld"
    assert table.loc["89390cb1b0fffff", "note"] == (
        "withheld: 240 events, fewer than the API's minimum of 5 distinct devices"
    )
    assert any(c.value.startswith("Grey cells: the API withholds") for c in app.caption)
    deck = json.loads(app.get("deck_gl_json_chart")[0].proto.json)
    layer = deck["layers"][0]
    assert layer["@@type"] == "H3HexagonLayer"
    assert [row["h3_cell"] for row in layer["data"]] == table.index.tolist()
    grey = next(row for row in layer["data"] if row["h3_cell"] == "89390cb1b0fffff")
    assert grey["colour"] == [160, 160, 160]
    assert grey["why"].startswith("withheld: 240 events")
    # resolution 7: the page asks the API for it
    app.radio(key="coverage_res").set_value(7).run()
    assert requests_to(fake, "/v1/coverage/h3")[-1]["res"] == ["7"]


def test_the_hexagon_view_lists_the_worst_cells_linked_to_their_hexagon() -> None:
    app, fake = start({"areas": "hexagons", "focus": "89390cb1b5bffff"})
    app.switch_page("views/coverage.py").run()
    assert not app.exception
    assert app.radio(key="coverage_areas").value == "H3 hexagons"  # the link opens the hexagons
    assert requests_to(fake, "/v1/cells/worst")[-1]["top"] == ["10"]
    cells = app.dataframe[1].value
    assert cells["cell_id"].tolist() == [41007, 52001, 30999]
    assert cells["map"].tolist() == [
        "coverage?areas=hexagons&focus=89390cb1b5bffff",
        "coverage?areas=hexagons&focus=89390cb1a2fffff",
        None,
    ]
    assert cells.loc[2, "note"] == "withheld: 12 events, fewer than the API's minimum of 20 events"
    assert any("1 of 3 cells" in c.value for c in app.caption)
    deck = json.loads(app.get("deck_gl_json_chart")[0].proto.json)
    view = deck["initialViewState"]
    assert (view["latitude"], view["longitude"], view["zoom"]) == (41.6105, -4.7003, 14.0)
