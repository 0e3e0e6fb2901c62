"""AthenaEngine against moto server's Athena API: submission, polling, timeout, error mapping.

moto does not execute SQL; results are injected through its
/moto-api/static/athena/query-results endpoint, and query progress is controlled through its
state manager (`athena::execution` transitions). moto never ends a query FAILED, so the failure
tests put a loopback proxy in front of it that answers GetQueryExecution with the execution
FAILED, in the shape AWS documents (cited at FAILURES), and forwards every other call.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import httpx
import numpy as np
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from signal_api.adapters.athena_engine import AthenaEngine, athena_literal, failed_query_error
from signal_api.app import create_app
from signal_api.core import queries
from signal_api.core.errors import (
    EngineError,
    EngineTimeoutError,
    EngineUnavailableError,
    LakeUnreadableError,
)
from signal_api.core.params import Granularity, TimeRange
from signal_api.core.stats import Z_95
from signal_api.settings import ApiSettings
from signal_common import partials
from signal_local.endpoints import free_port

WORKGROUP = "signal-api-tests"
OUTPUT = "s3://athena-results/signal-api/"
# Serialized HLL sketches (signal_common.partials, base64) of the devices {a, b}, {b, c} and {d}.
SKETCHES = tuple(
    base64.b64encode(s).decode()
    for s in partials.device_sketches(
        pa.array(["a", "b", "b", "c", "d"]), np.array([0, 0, 1, 1, 2]), 3
    ).to_pylist()
)
WINDOW = TimeRange(
    dt.datetime(2026, 11, 22, 23, 0, tzinfo=dt.UTC), dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)
)


@pytest.fixture(scope="module")
def athena(moto_endpoint_url: str) -> Any:
    """An Athena client on moto with the workgroup and results bucket created."""
    s3 = boto3.client("s3", endpoint_url=moto_endpoint_url, region_name="us-east-1")
    s3.create_bucket(Bucket="athena-results")
    client = boto3.client("athena", endpoint_url=moto_endpoint_url, region_name="us-east-1")
    client.create_work_group(
        Name=WORKGROUP, Configuration={"ResultConfiguration": {"OutputLocation": OUTPUT}}
    )
    return client


@pytest.fixture
def make_engine(moto_endpoint_url: str) -> Iterator[Any]:
    engines: list[AthenaEngine] = []

    def make(**overrides: Any) -> AthenaEngine:
        values: dict[str, Any] = {
            "database": "mobile_network_aggregations",
            "workgroup": WORKGROUP,
            "region": "us-east-1",
            "output_location": OUTPUT,
            "endpoint_url": moto_endpoint_url,
            "poll_interval_s": 0.02,
            "timeout_s": 10.0,
        }
        values.update(overrides)
        engine = AthenaEngine(**values)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


def _inject(url: str, columns: list[tuple[str, str]], rows: list[list[str | None]]) -> None:
    """Queue one result set in moto (header row first, as Athena returns it)."""

    def row(values: list[str | None]) -> dict[str, Any]:
        return {"Data": [{} if v is None else {"VarCharValue": v} for v in values]}

    body = {
        "results": [
            {
                "rows": [row([name for name, _ in columns]), *(row(r) for r in rows)],
                "column_info": [
                    {
                        "CatalogName": "hive",
                        "SchemaName": "",
                        "TableName": "",
                        "Name": name,
                        "Label": name,
                        "Type": kind,
                        "Precision": 0,
                        "Scale": 0,
                        "Nullable": "UNKNOWN",
                        "CaseSensitive": kind == "varchar",
                    }
                    for name, kind in columns
                ],
            }
        ]
    }
    response = httpx.post(f"{url}/moto-api/static/athena/query-results", json=body)
    assert response.status_code == 201


def _transition(url: str, transition: dict[str, Any] | None) -> None:
    model = {"model_name": "athena::execution"}
    if transition is None:
        httpx.post(f"{url}/moto-api/state-manager/unset-transition", json=model)
    else:
        httpx.post(
            f"{url}/moto-api/state-manager/set-transition",
            json={**model, "transition": transition},
        ).raise_for_status()


def _last_execution(athena: Any) -> dict[str, Any]:
    ids = athena.list_query_executions(WorkGroup=WORKGROUP)["QueryExecutionIds"]
    executions = [athena.get_query_execution(QueryExecutionId=i)["QueryExecution"] for i in ids]
    return max(executions, key=lambda e: e["Status"]["SubmissionDateTime"])


def test_literals_are_quoted_for_execution_parameters() -> None:
    assert athena_literal("Base O'Neil") == "'Base O''Neil'"
    assert athena_literal(7) == "7"
    assert athena_literal("2026-11-23") == "'2026-11-23'"


def test_submission_polling_and_typed_results(
    athena: Any, make_engine: Any, moto_endpoint_url: str
) -> None:
    engine = make_engine()
    query = queries.coverage(WINDOW, postal_codes=("1000", "O'Brien"))
    _inject(
        moto_endpoint_url,
        [
            ("postal_code", "varchar"),
            ("event_count", "bigint"),
            ("latitude_sum", "double"),
            ("longitude_sum", "double"),
            ("signal_sum", "bigint"),
            ("out_of_service_count", "bigint"),
        ],
        [["1000", "4", "202.0", "17.5", "-340", "1"]],
    )
    # the execution stays QUEUED, then RUNNING, for 3 status requests each: the engine must poll
    _transition(moto_endpoint_url, {"progression": "manual", "times": 3})
    try:
        rows = engine.run(query)
    finally:
        _transition(moto_endpoint_url, None)
    assert rows == [
        {
            "postal_code": "1000",
            "event_count": 4,
            "latitude_sum": 202.0,
            "longitude_sum": 17.5,
            "signal_sum": -340,
            "out_of_service_count": 1,
        }
    ]
    execution = _last_execution(athena)
    assert execution["Query"] == query.sql
    assert execution["WorkGroup"] == WORKGROUP
    assert execution["QueryExecutionContext"]["Database"] == "mobile_network_aggregations"
    assert execution["ResultConfiguration"]["OutputLocation"].startswith(OUTPUT)
    assert execution["ExecutionParameters"] == [athena_literal(p) for p in query.params]
    assert "'O''Brien'" in execution["ExecutionParameters"]
    assert "O'Brien" not in execution["Query"]


def test_timeout_cancels_the_query(athena: Any, make_engine: Any, moto_endpoint_url: str) -> None:
    engine = make_engine(timeout_s=0.5)
    _transition(moto_endpoint_url, {"progression": "manual", "times": 1_000_000})
    try:
        with pytest.raises(EngineTimeoutError):
            engine.run(queries.ping())
        execution = _last_execution(athena)
    finally:
        _transition(moto_endpoint_url, None)
    assert execution["Status"]["State"] == "CANCELLED"


def test_unreachable_athena_is_unavailable(make_engine: Any) -> None:
    engine = make_engine(endpoint_url=f"http://127.0.0.1:{free_port()}", timeout_s=5)
    with pytest.raises(EngineUnavailableError):
        engine.run(queries.ping())


def test_route_over_athena(athena: Any, make_engine: Any, moto_endpoint_url: str) -> None:
    """The API on AthenaEngine: Athena's typed rows become the same response shape."""
    engine = make_engine()
    bucket = int(WINDOW.start.timestamp())
    # the lake's state is read first (the response's meta), then the data
    batch, watermark = bucket + 7200.5, bucket + 7190.25
    _inject(
        moto_endpoint_url,
        [("newest_batch_time", "double"), ("watermark", "double")],
        [[str(batch), str(watermark)]],
    )
    _inject(
        moto_endpoint_url,
        [
            ("bucket", "bigint"),
            ("operator", "varchar"),
            ("network_type", "varchar"),
            ("event_count", "bigint"),
            ("signal_sum", "bigint"),
            ("signal_min", "integer"),
            ("signal_max", "integer"),
            ("signal_sq_sum", "bigint"),
            ("devices_hll", "varchar"),  # to_base64 of each sketch, comma-joined (queries.py)
        ],
        [[str(bucket), "Orange", "4G", "3", "-250", "-95", "-70", "21150", ",".join(SKETCHES[:2])]],
    )
    # 3 events from 3 devices: served only below the default min_events (20), min_devices (5)
    settings = ApiSettings(
        engine="athena", auth_enabled=False, cache_ttl_s=0, min_events=3, min_devices=3
    )
    with TestClient(create_app(settings, engine)) as c:
        body = c.get(
            "/v1/kpis/signal-strength",
            params={
                "from": "2026-11-22T23:00:00Z",
                "to": "2026-11-23T01:00:00Z",
                "granularity": Granularity.H1.value,
            },
        ).json()
    # -95, -85, -70 (Σx² 21150): the mean ± z · numpy's sample standard deviation / √n
    half = Z_95 * float(np.std([-95, -85, -70], ddof=1)) / 3**0.5
    interval = [body["rows"][0].pop(f"avg_signal_dbm_ci_{end}") for end in ("low", "high")]
    assert interval == pytest.approx([-250 / 3 - half, -250 / 3 + half], abs=1e-9)
    assert body["rows"] == [
        {
            "bucket_start": "2026-11-22T23:00:00Z",
            "operator": "Orange",
            "network_type": "4G",
            "event_count": 3,
            "events": 3,
            "devices": 3,  # {a, b} ∪ {b, c}
            "devices_ci_low": 3,
            "devices_ci_high": 3,
            "suppressed": None,
            "avg_signal_dbm": -250 / 3,
            "min_signal_dbm": -95,
            "max_signal_dbm": -70,
            "signal_percentiles": None,
        }
    ]
    # Athena's doubles become the meta's instants (23:00 + 7200.5 s, + 7190.25 s)
    assert body["meta"]["newest_batch_time"] == "2026-11-23T01:00:00.500000Z"
    assert body["meta"]["watermark"] == "2026-11-23T00:59:50.250000Z"
    assert [q["name"] for q in body["meta"]["queries"]] == ["signal_strength"]
    sent = _last_execution(athena)
    h23 = int(dt.datetime(2026, 11, 22, 23, tzinfo=dt.UTC).timestamp())
    h00 = h23 + 3600
    a, b, c = SKETCHES
    assert _sent_query_on_known_partials(sent) == [  # hand-computed from the rows below
        (h23, "Orange", "4G", 3, -250, -90, -80, 20900, sorted([a, b])),
        (h23, "Vodafone", "5G", 3, -270, -95, -85, 24350, [c]),
        # one partial of the group predates the sketches: unknown, never the others' union
        (h00, "Orange", "4G", 4, -400, -110, -95, 40150, None),
    ]


def _sent_query_on_known_partials(execution: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Run the SQL and parameters Athena received (Trino dialect) on DuckDB over a few known
    partial rows: proves the query sent computes the right figures, not just that it was sent."""
    import duckdb
    import sqlglot

    sql = execution["Query"]
    for literal in execution.get("ExecutionParameters", []):  # positional `?`, in order
        sql = sql.replace("?", literal, 1)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        """CREATE TABLE signal_strength_by_operator (window_start TIMESTAMPTZ, operator VARCHAR,
           network_type VARCHAR, event_count BIGINT, signal_sum BIGINT, signal_min INTEGER,
           signal_max INTEGER, commit_seq BIGINT, compacted BOOLEAN, dt VARCHAR, hour INTEGER)"""
    )
    # hour 23 was compacted through sequence 2: the Vodafone row replaces its two partials
    # (still on disk), and the Orange rows of sequences 3 and 4 arrived after the compaction
    con.execute(
        """INSERT INTO signal_strength_by_operator VALUES
           ('2026-11-22 23:10:00+00', 'Orange', '4G', 2, -170, -90, -80, 3, false,
            '2026-11-22', 23),
           ('2026-11-22 23:50:00+00', 'Orange', '4G', 1, -80, -80, -80, 4, false,
            '2026-11-22', 23),
           ('2026-11-23 00:05:00+00', 'Orange', '4G', 4, -400, -110, -95, 1, false,
            '2026-11-23', 0),
           ('2026-11-22 23:30:00+00', 'Vodafone', '5G', 3, -270, -95, -85, 2, true,
            '2026-11-22', 23),
           ('2026-11-22 23:30:00+00', 'Vodafone', '5G', 1, -95, -95, -95, 1, false,
            '2026-11-22', 23),
           ('2026-11-22 23:30:00+00', 'Vodafone', '5G', 2, -175, -90, -85, 2, false,
            '2026-11-22', 23),
           ('2026-11-22 22:59:00+00', 'Orange', '4G', 9, -900, -100, -100, 1, false,
            '2026-11-22', 22),
           ('2026-11-23 01:30:00+00', 'Orange', '4G', 9, -900, -100, -100, 1, false,
            '2026-11-23', 1)"""
    )
    a, b, c = SKETCHES
    con.execute("ALTER TABLE signal_strength_by_operator ADD COLUMN signal_sq_sum BIGINT")
    con.execute("ALTER TABLE signal_strength_by_operator ADD COLUMN devices_hll BLOB")
    # (Σx², sketch) per row above, in order, from values behind each row's sum, min and max
    # (the 00:05 row: -110, -95, -95, -100)
    extra = [
        (14500, a), (6400, b), (12100 + 2 * 9025 + 10000, None), (24350, c), (9025, a), (15325, b),
        (90000, c), (90000, c),
    ]  # fmt: skip
    for i, (squares, sketch) in enumerate(extra):
        con.execute(
            """UPDATE signal_strength_by_operator SET signal_sq_sum = ?,
               devices_hll = from_base64(?) WHERE rowid = ?""",
            [squares, sketch, i],
        )
    rows = con.execute(sqlglot.transpile(sql, read="trino", write="duckdb")[0]).fetchall()
    # array_agg's order is the engine's: compare the sketches as a sorted list
    return [
        (int(r[0]), *r[1:-1], None if r[-1] is None else sorted(r[-1].split(","))) for r in rows
    ]


# --- queries Athena ends FAILED ---------------------------------------------------------------
#
# The reasons below are the StateChangeReason texts AWS documents for them:
# - Access denied on a source object: AWS Knowledge Center, "Why do I get 'Access Denied' errors
#   when I run Amazon Athena queries?" (https://repost.aws/knowledge-center/access-denied-athena)
# - Slow Down (S3 throttling, transient): AWS Knowledge Center, "How do I resolve the
#   'HIVE_CANNOT_OPEN_SPLIT ... Slow Down' error in Athena?"
#   (https://repost.aws/knowledge-center/hive-cannot-open-split-503-athena)
# - Corrupt objects: AWS Knowledge Center, "How do I resolve the HIVE_CURSOR_ERROR exception when
#   I query a table in Amazon Athena?" (https://repost.aws/knowledge-center/athena-hive-cursor-error)
# - A denied listing of a partition's prefix, as Athena reports it (quoted in Kubecost's Athena
#   troubleshooting guide: "Permission denied on S3 path: s3://cur-report/.../year=2022/month=8").
# AthenaError (Amazon Athena API Reference, AthenaError, and the User Guide's "Athena error
# catalog", https://docs.aws.amazon.com/athena/latest/ug/error-reference.html): ErrorCategory
# 1 SYSTEM, 2 USER, 3 OTHER; Retryable "True if the query might succeed if resubmitted".
LAKE = "s3://signal-lake/signal_strength_by_operator"
DENIED_OBJECT = (
    "com.amazonaws.services.s3.model.AmazonS3Exception: Access Denied (Service: Amazon S3; "
    "Status Code: 403; Error Code: AccessDenied; Request ID: 72VA5FB0ASWCQFPD; S3 Extended "
    "Request ID: cykX1CZ/KfxpL/h8=; Proxy: null), S3 Extended Request ID: cykX1CZ/KfxpL/h8= "
    f"(Path: {LAKE}/dt=2026-11-23/hour=0/part-00001.parquet)"
)
DENIED_PREFIX = (
    f"Permission denied on S3 path: {LAKE}/dt=2026-11-23/hour=0\n\nThis query ran against the "
    '"mobile_network_aggregations" database, unless qualified by the query. Please post the '
    "error message on our forum or contact customer support with Query Id: 0b5a9f0e-1"
)
SLOW_DOWN = (
    f"HIVE_CANNOT_OPEN_SPLIT: Error opening Hive split {LAKE}/dt=2026-11-23/hour=0/part-00000"
    ".parquet (offset=0, length=18614): Slow Down (Service: Amazon S3; Status Code: 503; "
    "Error Code: 503 Slow Down;"
)
CORRUPT = "HIVE_CURSOR_ERROR: Unexpected end of input stream"
FAILURES = [
    pytest.param(
        DENIED_OBJECT,
        2,
        LakeUnreadableError,
        f"cannot read {LAKE}/dt=2026-11-23/hour=0/part-00001.parquet (access denied)",
        id="object-access-denied",
    ),
    pytest.param(
        DENIED_PREFIX,
        2,
        LakeUnreadableError,
        f"cannot read {LAKE}/dt=2026-11-23/hour=0 (access denied)",
        id="prefix-permission-denied",
    ),
    pytest.param(
        CORRUPT, 2, LakeUnreadableError, "cannot read its S3 data (corrupt)", id="corrupt"
    ),
    pytest.param(SLOW_DOWN, 1, EngineUnavailableError, "(transient)", id="slow-down"),
    pytest.param("INTERNAL_ERROR_QUERY_ENGINE", 1, EngineUnavailableError, "system", id="system"),
    pytest.param(
        "SYNTAX_ERROR: line 1:8: Column 'x' cannot be resolved",
        2,
        EngineError,
        "failed",
        id="user-error",
    ),
]


@pytest.mark.parametrize(("reason", "category", "kind", "says"), FAILURES)
def test_failed_queries_map_to_what_happened(
    reason: str, category: int, kind: type[EngineError], says: str
) -> None:
    error = failed_query_error("signal_strength", reason, category=category, retryable=False)
    assert type(error) is kind
    assert says in error.message
    assert "Request ID" not in error.message  # the reason is logged, not sent to callers


class FailingAthena:
    """A loopback proxy in front of moto server: every call is forwarded, and while `reason`
    is set GetQueryExecution answers with the execution FAILED (Status.StateChangeReason and
    Status.AthenaError, as the Athena API Reference's QueryExecutionStatus describes)."""

    def __init__(self, upstream: str) -> None:
        self.reason: str | None = None
        self.category = 2
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                answer = httpx.post(upstream + self.path, content=body, headers=headers)
                content = answer.content
                target = self.headers.get("X-Amz-Target", "")
                if proxy.reason is not None and target.endswith(".GetQueryExecution"):
                    document = answer.json()
                    document["QueryExecution"]["Status"].update(
                        State="FAILED",
                        StateChangeReason=proxy.reason,
                        AthenaError={
                            "ErrorCategory": proxy.category,
                            "ErrorType": 1000 if proxy.category == 2 else 100,
                            "Retryable": False,
                            "ErrorMessage": proxy.reason,
                        },
                    )
                    content = json.dumps(document).encode()
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("content-type", ""))
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def failing_athena(athena: Any, moto_endpoint_url: str) -> Iterator[FailingAthena]:
    proxy = FailingAthena(moto_endpoint_url)
    yield proxy
    proxy.close()


def test_a_denied_prefix_is_a_503_naming_it(
    failing_athena: FailingAthena, make_engine: Any
) -> None:
    """The real engine and route over moto: the FAILED execution becomes lake_unreadable."""
    engine = make_engine(endpoint_url=failing_athena.url)
    failing_athena.reason = DENIED_PREFIX
    with pytest.raises(LakeUnreadableError, match=r"hour=0 \(access denied\)"):
        engine.run(queries.signal_strength(WINDOW, Granularity.H1))
    settings = ApiSettings(engine="athena", auth_enabled=False, cache_ttl_s=60)
    params = {"from": "2026-11-22T23:00:00Z", "to": "2026-11-23T01:00:00Z", "granularity": "1h"}
    with TestClient(create_app(settings, engine)) as c:
        response = c.get("/v1/kpis/signal-strength", params=params)
        assert response.status_code == 503
        error = response.json()["error"]
        assert error["code"] == "lake_unreadable"
        assert f"{LAKE}/dt=2026-11-23/hour=0" in error["message"]
        failing_athena.category, failing_athena.reason = 1, SLOW_DOWN
        assert c.get("/readyz").json()["error"]["code"] == "engine_unavailable"
