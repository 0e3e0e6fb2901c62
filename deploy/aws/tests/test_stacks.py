"""The resources and key properties of each stack (aws_cdk.assertions over the synthesized
templates)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Match, Template

from signal_aws.settings import DeploySettings

Templates = Callable[[str], Template]


def test_data_stream_is_encrypted_and_on_demand(template: Templates) -> None:
    data = template("Data")
    data.has_resource_properties(
        "AWS::Kinesis::Stream",
        {
            "Name": "mobile_coverage_logs",
            "StreamModeDetails": {"StreamMode": "ON_DEMAND"},
            "StreamEncryption": {"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"},
        },
    )


def test_lake_bucket_is_private_encrypted_versioned_tls_only(template: Templates) -> None:
    data = template("Data")
    data.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "VersioningConfiguration": {"Status": "Enabled"},
        },
    )
    data.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_lifecycle_moves_raw_tables_to_ia_then_expires_them(
    templates: dict[str, Any], settings: DeploySettings
) -> None:
    buckets = [
        r
        for r in templates["Data"]["Resources"].values()
        if r["Type"] == "AWS::S3::Bucket" and "VersioningConfiguration" in r["Properties"]
    ]
    assert len(buckets) == 1  # the lake (its access-log bucket is not versioned)
    rules = {r["Id"]: r for r in buckets[0]["Properties"]["LifecycleConfiguration"]["Rules"]}
    for table in ("events", "quarantine"):
        rule = rules[f"{table}-to-ia-then-expire"]
        assert rule["Prefix"] == f"lake/{table}/"
        assert rule["Transitions"] == [
            {
                "StorageClass": "STANDARD_IA",
                "TransitionInDays": settings.raw_infrequent_access_days,
            }
        ]
        assert rule["ExpirationInDays"] == settings.raw_expiry_days
    assert rules["athena-results-expire"]["Prefix"] == "athena-results/"
    assert rules["athena-results-expire"]["ExpirationInDays"] == settings.athena_results_expiry_days
    assert rules["replay-inputs-expire"]["Prefix"] == "inputs/"
    assert rules["replay-inputs-expire"]["ExpirationInDays"] == settings.replay_inputs_expiry_days
    assert rules["dead-letters-expire"]["Prefix"] == "dead-letters/"
    assert rules["dead-letters-expire"]["ExpirationInDays"] == settings.dead_letters_expiry_days
    # KPI partials and pipeline_batches are kept: no rule touches them
    prefixes = {r.get("Prefix", "") for r in rules.values()}
    assert not any(p.startswith("lake/signal_strength") for p in prefixes)


def test_glue_database_and_athena_workgroup(template: Templates, settings: DeploySettings) -> None:
    data = template("Data")
    data.has_resource_properties(
        "AWS::Glue::Database",
        {"DatabaseInput": Match.object_like({"Name": "mobile_network_aggregations"})},
    )
    data.has_resource_properties(
        "AWS::Athena::WorkGroup",
        {
            "WorkGroupConfiguration": Match.object_like(
                {
                    "EnforceWorkGroupConfiguration": True,
                    "BytesScannedCutoffPerQuery": settings.athena_bytes_scanned_cutoff,
                    "ResultConfiguration": Match.object_like(
                        {"EncryptionConfiguration": {"EncryptionOption": "SSE_S3"}}
                    ),
                }
            )
        },
    )


def test_processor_is_a_continuous_glue_6_streaming_job_from_the_bundle(
    templates: dict[str, Any], settings: DeploySettings
) -> None:
    jobs = [
        r["Properties"]
        for r in templates["Processing"]["Resources"].values()
        if r["Type"] == "AWS::Glue::Job"
    ]
    assert len(jobs) == 1
    job = jobs[0]
    version = settings.versions["stream-processor"]
    assert job["Command"]["Name"] == "gluestreaming"
    assert job["GlueVersion"] == "6.0"
    assert job["WorkerType"] == settings.glue_worker_type
    assert job["NumberOfWorkers"] == settings.glue_workers
    script = job["Command"]["ScriptLocation"]
    assert _joined(script).endswith(f"/glue/stream-processor/{version}/glue_job.py")
    args = job["DefaultArguments"]
    assert args["--stream"] == settings.stream_name
    assert args["--python-modules-installer-option"] == "--no-deps"
    assert args["--enable-continuous-cloudwatch-log"] == "true"
    assert args["--enable-metrics"] == "true"
    assert args["--trigger_seconds"] == str(settings.trigger_seconds)
    modules = _joined(args["--additional-python-modules"]).split(",")
    assert len(modules) == 3
    assert modules[1].endswith(
        f"/glue/stream-processor/{version}/wheels/signal_stream_processor-{version}"
        "-py3-none-any.whl"
    )
    assert _joined(args["--checkpoint"]).endswith("/checkpoints/processor")
    assert job["Tags"] == {
        "project": "signal-stream",
        "service": "stream-processor",
        "version": version,
    }


def test_alarms_watch_the_stream_the_processor_and_the_job(template: Templates) -> None:
    monitoring = template("Monitoring")
    monitoring.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"Namespace": "AWS/Kinesis", "MetricName": "GetRecords.IteratorAgeMilliseconds"},
    )
    monitoring.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "SignalStream/StreamProcessor",
            "MetricName": "MillisBehindLatest",
            "TreatMissingData": "notBreaching",
        },
    )
    monitoring.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.glue"],
                "detail-type": ["Glue Job State Change"],
                "detail": Match.object_like({"jobName": ["signal-stream-stream-processor"]}),
            }
        },
    )
    monitoring.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    monitoring.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "oncall@example.com"}
    )


def _joined(value: Any) -> str:
    """A template string value, with Fn::Join parts joined (tokens shown as their JSON)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(p if isinstance(p, str) else "<token>" for p in parts)
    return str(value)


def test_synthesis_looks_nothing_up_and_writes_no_placeholder(
    assembly: Any, templates: dict[str, Any], settings: DeploySettings
) -> None:
    manifest = json.loads((Path(assembly.directory) / "manifest.json").read_text("utf-8"))
    assert not manifest.get("missing"), manifest.get("missing")
    text = json.dumps(templates)
    assert "dummy" not in text
    subnets = [
        r["Properties"]["AvailabilityZone"]
        for r in templates["Services"]["Resources"].values()
        if r["Type"] == "AWS::EC2::Subnet"
    ]
    assert sorted(set(subnets)) == settings.zones == ["eu-west-1a", "eu-west-1b"]
