"""The `signal-catalog` CLI end to end against moto server: output, exit codes, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest
import typer
from botocore.exceptions import ClientError
from glue_http import FlakyGlue
from typer.testing import CliRunner

from signal_catalog.adapters.retry import translate
from signal_catalog.cli import app, expected_failures
from signal_catalog.core.tables import CATALOG_TABLES
from signal_common.lake import ALL_TABLES
from signal_local.endpoints import free_port

runner = CliRunner()
Env = Callable[..., dict[str, str]]


def invoke(env: dict[str, str], *args: str) -> Any:
    return runner.invoke(app, list(args), env=env)


def error_lines(result: Any) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["sync"],
        ["watch"],
        ["crawlers"],
        ["crawlers", "create"],
        ["crawlers", "start"],
        ["crawlers", "status"],
        ["drift"],
        ["validate"],
        ["compact"],
    ],
)
def test_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_sync_then_drift_then_validate(cli_env: Env, lake_dir: Any, partitions_of: Any) -> None:
    env = cli_env(lake_root=lake_dir.uri)
    first = invoke(env, "sync")
    assert first.exit_code == 0, first.output
    assert "created database" in first.stdout
    # every stream table and alert_events (projected: no partitions to add)
    assert (
        f"{len(CATALOG_TABLES)} table change(s), {4 * len(ALL_TABLES) - len(ALL_TABLES)}"
        in first.stdout
    )
    for table in ALL_TABLES:
        assert partitions_of(table.name) == lake_dir.partitions[table.name]

    second = invoke(env, "sync")
    assert second.exit_code == 0
    assert "0 table change(s), 0 partition(s) added" in second.stdout

    drift = invoke(env, "drift")
    assert drift.exit_code == 0, drift.output
    assert "no drift" in drift.stdout

    validate = invoke(env, "validate")
    assert validate.exit_code == 0, validate.output
    assert "smoke queries (duckdb)" in validate.stdout


def test_drift_exit_code_when_a_file_disagrees(cli_env: Env, lake_dir: Any) -> None:
    env = cli_env(lake_root=lake_dir.uri)
    assert invoke(env, "sync").exit_code == 0
    schema = lake_dir.schema_of("events").append(pa.field("imei", pa.string()))
    lake_dir.write("events", "2026-11-24", 0, schema=schema)
    result = invoke(env, "drift")
    assert result.exit_code == 1
    assert "extra column imei" in result.stdout
    assert error_lines(result) == ["error: 1 disagreement(s) found"]


def test_incompatible_catalog_is_refused_with_exit_3_and_forced(
    cli_env: Env, lake_dir: Any, glue: Any, database: str
) -> None:
    env = cli_env(lake_root=lake_dir.uri)
    assert invoke(env, "sync", "--table", "status_count").exit_code == 0
    table = glue.get_table(DatabaseName=database, Name="status_count")["Table"]
    sd = table["StorageDescriptor"]
    sd["Columns"] = [
        {"Name": "event_count", "Type": "string"} if c["Name"] == "event_count" else c
        for c in sd["Columns"]
    ]
    keys = ("Name", "Description", "TableType", "Parameters", "PartitionKeys")
    glue.update_table(
        DatabaseName=database, TableInput={k: table[k] for k in keys} | {"StorageDescriptor": sd}
    )
    refused = invoke(env, "sync", "-t", "status_count")
    assert refused.exit_code == 3
    assert "event_count: string -> bigint (type changed)" in refused.stdout
    assert len(error_lines(refused)) == 1
    assert "--force" in refused.stderr
    assert "Traceback" not in refused.output

    forced = invoke(env, "sync", "-t", "status_count", "--force")
    assert forced.exit_code == 0, forced.output
    stored = glue.get_table(DatabaseName=database, Name="status_count")["Table"]
    types = {c["Name"]: c["Type"] for c in stored["StorageDescriptor"]["Columns"]}
    assert types["event_count"] == "bigint"


def test_missing_lake_path_is_one_line_exit_4(cli_env: Env, tmp_path: Any) -> None:
    result = invoke(cli_env(lake_root=(tmp_path / "absent").as_uri()), "sync")
    assert result.exit_code == 4
    lines = error_lines(result)
    assert len(lines) == 1
    assert "absent does not exist" in lines[0]
    assert "SIGNAL_CATALOG_LAKE_ROOT" in lines[0]


def test_missing_database_is_one_line_exit_4(cli_env: Env, lake_dir: Any) -> None:
    for command in (["drift"], ["validate"], ["watch", "--cycles", "1"], ["crawlers", "create"]):
        result = invoke(cli_env(lake_root=lake_dir.uri), *command)
        assert result.exit_code == 4, (command, result.output)
        lines = error_lines(result)
        assert len(lines) == 1
        assert "does not exist" in lines[0]
        assert "signal-catalog sync" in lines[0]


def test_bad_settings_exit_2(cli_env: Env, lake_dir: Any) -> None:
    result = invoke(cli_env(lake_root=lake_dir.uri, table_modes='{"nope": "register"}'), "sync")
    assert result.exit_code == 2
    assert len(error_lines(result)) == 1
    assert "unknown table" in result.stderr
    unknown = invoke(cli_env(lake_root=lake_dir.uri), "sync", "-t", "nope")
    assert unknown.exit_code == 2


def test_watch_cycles(cli_env: Env, lake_dir: Any, partitions_of: Any) -> None:
    env = cli_env(lake_root=lake_dir.uri)
    assert invoke(env, "sync", "-t", "status_count").exit_code == 0
    lake_dir.write("status_count", "2026-11-25", 3)
    result = invoke(env, "watch", "-t", "status_count", "--interval", "0.01", "--cycles", "2")
    assert result.exit_code == 0, result.output
    assert "cycle 1: status_count +1" in result.stdout
    assert "cycle 2: no new partitions" in result.stdout
    assert ("2026-11-25", 3) in partitions_of("status_count")


def test_crawlers_create_start_status(cli_env: Env, lake_dir: Any, database: str) -> None:
    env = cli_env(lake_root=lake_dir.uri, crawler_prefix=f"{database}_c_")
    assert invoke(env, "sync").exit_code == 0
    missing = invoke(env, "crawlers", "status", "-t", "status_count")
    assert missing.exit_code == 1
    created = invoke(env, "crawlers", "create", "-t", "status_count")
    assert created.exit_code == 0, created.output
    assert f"{database}_c_status_count" in created.stdout
    started = invoke(env, "crawlers", "start", "-t", "status_count", "--timeout", "30")
    assert started.exit_code == 0, started.output
    assert "COMPLETED" in started.stdout
    status = invoke(env, "crawlers", "status", "-t", "status_count")
    assert status.exit_code == 0
    assert "READY" in status.stdout


def test_access_denied_renders_as_one_line_exit_4(capsys: pytest.CaptureFixture[str]) -> None:
    # moto server does not enforce IAM; this drives the real translation and rendering path.
    denied = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "not authorized: glue:GetTable"}},
        "GetTable",
    )

    @expected_failures
    def command() -> None:
        raise translate(denied, "reading table db.events")

    with pytest.raises(typer.Exit) as caught:
        command()
    assert caught.value.exit_code == 4
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "access denied while reading table db.events" in lines[0]


def test_unreachable_endpoint_is_one_line_exit_4(cli_env: Env, lake_dir: Any) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    env = cli_env(
        lake_root=lake_dir.uri, glue_endpoint_url=nowhere, s3_endpoint_url=nowhere, max_attempts="2"
    )
    result = invoke(env, "sync")
    assert result.exit_code == 4, result.output
    lines = error_lines(result)
    assert len(lines) == 1
    assert "cannot reach the AWS endpoint" in lines[0]
    assert "SIGNAL_CATALOG_" in lines[0]


def test_missing_credentials_is_one_line_exit_4(cli_env: Env, lake_dir: Any, tmp_path: Any) -> None:
    # a process of its own: boto3's default session keeps the credentials it found earlier
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(cli_env(lake_root=lake_dir.uri))
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "none")
    env["AWS_CONFIG_FILE"] = str(tmp_path / "none")
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    result = subprocess.run(
        [sys.executable, "-m", "signal_catalog.cli", "sync"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 4, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "no AWS credentials" in lines[0]


def test_credentials_aws_rejects_are_one_line_exit_4(
    cli_env: Env, lake_dir: Any, flaky_glue: tuple[FlakyGlue, str]
) -> None:
    state, endpoint = flaky_glue
    state.failures = [(400, "UnrecognizedClientException")] * 50
    env = cli_env(lake_root=lake_dir.uri, glue_endpoint_url=endpoint)
    result = invoke(env, "sync")
    assert result.exit_code == 4, result.output
    lines = error_lines(result)
    assert len(lines) == 1
    assert "access denied" in lines[0]
    assert "UnrecognizedClientException" in lines[0]
