"""Crawler commands against moto server's Glue.

moto's crawler does not crawl: it stores the definition and moves a crawl RUNNING -> COMPLETED
(the crawler RUNNING -> READY) as the crawl is listed, without touching the catalog. So these
tests assert on the crawler definitions the commands send and on the state transitions they
observe, not on partitions a real crawler would add.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from signal_catalog.errors import CrawlerTimeoutError, TableMissingError
from signal_catalog.operations.crawlers import crawler_status, create_crawlers, start_crawlers
from signal_catalog.operations.sync import sync
from signal_catalog.settings import CatalogSettings
from signal_catalog.wiring import catalog_from, lake_from
from signal_common.lake import ALL_TABLES, KPI_TABLES

ROLE = "arn:aws:iam::123456789012:role/crawler"


def synced(settings: CatalogSettings) -> CatalogSettings:
    sync(
        catalog_from(settings),
        lake_from(settings),
        list(ALL_TABLES),
        modes=settings.mode_of,
        dt_range=settings.projection_dt_range,
    )
    return settings


@pytest.fixture
def settings(
    make_settings: Callable[..., CatalogSettings], lake_dir: Any, database: str
) -> CatalogSettings:
    # Crawler names are account-wide (not per database), so each test gets its own prefix.
    return synced(
        make_settings(
            lake_root=lake_dir.uri, crawler_role=ROLE, crawler_prefix=f"{database}_crawler_"
        )
    )


def test_create_makes_one_crawler_per_table_named_like_the_seed(
    make_settings: Callable[..., CatalogSettings], lake_dir: Any, glue: Any, database: str
) -> None:
    # The only test using the default prefix: the seed's names.
    catalog = catalog_from(synced(make_settings(lake_root=lake_dir.uri)))
    reports = create_crawlers(catalog, list(KPI_TABLES), role=ROLE)
    assert [(r.name, r.action) for r in reports] == [
        ("crawler_signal_strength_by_operator", "created"),
        ("crawler_gps_precision_by_provider", "created"),
        ("crawler_status_count", "created"),
        ("crawler_coverage_by_postal_code", "created"),
        ("crawler_coverage_by_h3", "created"),
        ("crawler_coverage_by_cell", "created"),
    ]
    crawler = glue.get_crawler(Name="crawler_status_count")["Crawler"]
    assert crawler["Role"] == ROLE
    assert crawler["DatabaseName"] == database
    assert crawler["Targets"]["CatalogTargets"] == [
        {"DatabaseName": database, "Tables": ["status_count"]}
    ]
    assert crawler["SchemaChangePolicy"] == {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"}
    assert json.loads(crawler["Configuration"])["CrawlerOutput"]["Partitions"] == {
        "AddOrUpdateBehavior": "InheritFromTable"
    }
    assert crawler["State"] == "READY"
    # Idempotent: the same definitions are left alone.
    again = create_crawlers(catalog, list(KPI_TABLES), role=ROLE)
    assert {r.action for r in again} == {"unchanged"}


def test_start_waits_for_running_to_ready_and_reports(settings: CatalogSettings, glue: Any) -> None:
    catalog, prefix = catalog_from(settings), settings.crawler_prefix
    tables = list(KPI_TABLES[:2])
    create_crawlers(catalog, tables, role=ROLE, prefix=prefix)
    polls: list[dict[str, str]] = []
    reports = start_crawlers(
        catalog,
        tables,
        prefix=prefix,
        timeout_s=60,
        poll_s=0.0,
        sleep=lambda _: None,
        on_poll=polls.append,
    )
    assert [(r.name, r.action, r.state, r.last_crawl) for r in reports] == [
        (f"{prefix}signal_strength_by_operator", "started", "READY", "COMPLETED"),
        (f"{prefix}gps_precision_by_provider", "started", "READY", "COMPLETED"),
    ]
    assert polls[-1] == {t.name: "READY" for t in tables}
    # moto's crawl changes nothing in the catalog; a real one would show partitions here.
    assert {r.changes for r in reports} == {"no change"}
    crawls = glue.list_crawls(CrawlerName=f"{prefix}signal_strength_by_operator")["Crawls"]
    assert [c["State"] for c in crawls] == ["COMPLETED"]


def test_start_without_wait_leaves_the_crawler_running(
    settings: CatalogSettings, glue: Any
) -> None:
    catalog, prefix = catalog_from(settings), settings.crawler_prefix
    tables = list(KPI_TABLES[2:3])
    create_crawlers(catalog, tables, role=ROLE, prefix=prefix)
    reports = start_crawlers(catalog, tables, prefix=prefix, wait=False, timeout_s=1, poll_s=0)
    assert [(r.name, r.action) for r in reports] == [(f"{prefix}status_count", "started")]
    assert glue.get_crawler(Name=f"{prefix}status_count")["Crawler"]["State"] == "RUNNING"
    # Starting a running crawler is reported, not an error.
    again = start_crawlers(catalog, tables, prefix=prefix, wait=False, timeout_s=1, poll_s=0)
    assert again[0].action == "already running"


@pytest.fixture
def slow_crawls(moto_endpoint_url: str) -> Iterator[None]:
    """Keep moto's crawls RUNNING (through moto's state-manager API); restored afterwards."""

    def post(path: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            f"{moto_endpoint_url}/moto-api/state-manager/{path}",
            data=json.dumps(body).encode(),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    transition = {"progression": "manual", "times": 10_000}
    post("set-transition", {"model_name": "glue::crawl", "transition": transition})
    yield
    post("unset-transition", {"model_name": "glue::crawl"})


@pytest.mark.usefixtures("slow_crawls")
def test_start_times_out_with_a_named_error(settings: CatalogSettings) -> None:
    catalog, prefix = catalog_from(settings), settings.crawler_prefix
    tables = list(KPI_TABLES[3:4])
    create_crawlers(catalog, tables, role=ROLE, prefix=prefix)
    ticks = iter(range(100))
    polls: list[dict[str, str]] = []
    with pytest.raises(CrawlerTimeoutError) as caught:
        start_crawlers(
            catalog,
            tables,
            prefix=prefix,
            timeout_s=3,
            poll_s=1,
            sleep=lambda _: None,
            clock=lambda: float(next(ticks)),
            on_poll=polls.append,
        )
    assert f"{prefix}coverage_by_postal_code" in caught.value.one_line()
    assert polls == [{"coverage_by_postal_code": "RUNNING"}] * 3


def test_status_and_start_of_missing_crawlers(settings: CatalogSettings) -> None:
    catalog, prefix = catalog_from(settings), settings.crawler_prefix
    status = crawler_status(catalog, list(KPI_TABLES), prefix=prefix)
    assert [r.action for r in status] == ["missing"] * len(KPI_TABLES)
    with pytest.raises(TableMissingError):
        start_crawlers(catalog, list(KPI_TABLES), prefix=prefix, timeout_s=1, poll_s=0)
