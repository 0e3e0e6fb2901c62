"""The shared helper starts real kinesalite and moto servers on loopback and stops them."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import pytest

from signal_local.endpoints import LocalEndpointError, kinesalite_node_modules, local_aws


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); its /proc status says Z
    status = Path(f"/proc/{pid}/status").read_text()
    return "\nState:\tZ" not in status


def test_kinesis_and_glue_round_trip_then_no_process_left(tmp_path: Path) -> None:
    with local_aws(tmp_path / "logs") as stack:
        pids = [p.pid for p in stack.processes]
        assert stack.kinesis_url.startswith("http://127.0.0.1:")
        assert stack.moto_url.startswith("http://127.0.0.1:")

        kinesis = boto3.client("kinesis", endpoint_url=stack.kinesis_url, region_name="us-east-1")
        kinesis.create_stream(StreamName="roundtrip", ShardCount=2)
        kinesis.get_waiter("stream_exists").wait(
            StreamName="roundtrip", WaiterConfig={"Delay": 1, "MaxAttempts": 20}
        )
        put = kinesis.put_records(
            StreamName="roundtrip",
            Records=[{"Data": f"record-{i}".encode(), "PartitionKey": f"k{i}"} for i in range(10)],
        )
        assert put["FailedRecordCount"] == 0
        read: list[bytes] = []
        for shard in kinesis.list_shards(StreamName="roundtrip")["Shards"]:
            iterator = kinesis.get_shard_iterator(
                StreamName="roundtrip", ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            read.extend(r["Data"] for r in kinesis.get_records(ShardIterator=iterator)["Records"])
        assert sorted(read) == sorted(f"record-{i}".encode() for i in range(10))
        # kinesalite issues real 56-digit sequence numbers
        assert all(len(r["SequenceNumber"]) == 56 for r in put["Records"])

        glue = boto3.client("glue", endpoint_url=stack.moto_url, region_name="us-east-1")
        glue.create_database(DatabaseInput={"Name": "roundtrip_db"})
        glue.create_table(
            DatabaseName="roundtrip_db",
            TableInput={
                "Name": "t",
                "StorageDescriptor": {"Columns": [{"Name": "a", "Type": "int"}]},
                "PartitionKeys": [{"Name": "dt", "Type": "string"}],
            },
        )
        table = glue.get_table(DatabaseName="roundtrip_db", Name="t")["Table"]
        assert table["StorageDescriptor"]["Columns"] == [{"Name": "a", "Type": "int"}]
        assert [k["Name"] for k in table["PartitionKeys"]] == ["dt"]
        assert all(_alive(pid) for pid in pids)

    assert pids
    assert not any(_alive(pid) for pid in pids)


def test_kinesalite_listens_on_loopback_only(kinesalite) -> None:  # type: ignore[no-untyped-def]
    port = kinesalite.url.rsplit(":", 1)[1]
    listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
    local_addresses = {line.split()[1] for line in listening if line.split()[3] == "0A"}
    assert f"0100007F:{int(port):04X}" in local_addresses
    assert f"00000000:{int(port):04X}" not in local_addresses


def test_missing_kinesalite_gives_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SIGNAL_STREAM_ROOT", str(tmp_path))
    monkeypatch.setenv("SIGNAL_KINESALITE_NODE_MODULES", str(tmp_path / "nowhere"))
    with pytest.raises(LocalEndpointError, match="npm ci --prefix deploy/local"):
        kinesalite_node_modules(install=False)


def test_make_stream_fixture_creates_active_stream(make_stream, kinesis_client) -> None:  # type: ignore[no-untyped-def]
    name = make_stream(shards=3)
    shards = kinesis_client.list_shards(StreamName=name)["Shards"]
    assert len(shards) == 3
