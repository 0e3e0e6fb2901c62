"""AWS rules the templates meet that only a real deployment would otherwise show (breaks 4-6 of
issue 21 and the smaller ones), each checked on the synthesized templates against the AWS
document it follows."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import pytest

from signal_aws.cdk_app import build
from signal_aws.settings import DeploySettings

ACCOUNT, REGION = "111111111111", "eu-west-1"


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- break 4: reserved concurrency -----------------------------------------------------------
# Lambda developer guide, "Configuring reserved concurrency for a function": a function may
# reserve at most the account's unreserved concurrency minus the minimum that must stay
# unreserved; "Lambda quotas": new accounts have reduced concurrency quotas. In an account whose
# quota is 10, any reservation takes the unreserved pool below its minimum and CloudFormation's
# CreateFunction/PutFunctionConcurrency is refused.


def test_the_partition_lambda_reserves_no_concurrency_by_default(
    templates: dict[str, Any],
) -> None:
    (function,) = _resources(templates["Catalog"], "AWS::Lambda::Function").values()
    assert "ReservedConcurrentExecutions" not in function["Properties"]


def test_reserved_concurrency_is_an_opt_in_setting(
    settings: DeploySettings, tmp_path: Path
) -> None:
    opted = settings.model_copy(update={"catalog_lambda_reserved_concurrency": 5})
    assembly = build(opted, tmp_path / "cdk.out").synth()
    catalog = assembly.get_stack_by_name("SignalStreamCatalog").template
    (function,) = _resources(catalog, "AWS::Lambda::Function").values()
    assert function["Properties"]["ReservedConcurrentExecutions"] == 5


# --- break 5: a healthy fresh deploy fires no alarm ------------------------------------------
# CloudWatch user guide, "Configuring how CloudWatch alarms treat missing data": notBreaching
# treats a missing point as within the threshold, breaching as beyond it, ignore keeps the
# current state, missing (the default) counts neither way; a new alarm starts in
# INSUFFICIENT_DATA. "Alarm evaluation": ALARM when the evaluated points breach.


def _state(alarm: dict[str, Any], points: list[float | None]) -> str:
    """The state CloudWatch's documented rule gives `alarm` over its evaluation periods."""
    treat = alarm.get("TreatMissingData", "missing")
    periods = alarm["EvaluationPeriods"]
    needed = alarm.get("DatapointsToAlarm", periods)
    compare = {
        "GreaterThanOrEqualToThreshold": lambda v: v >= alarm["Threshold"],
        "GreaterThanThreshold": lambda v: v > alarm["Threshold"],
        "LessThanThreshold": lambda v: v < alarm["Threshold"],
        "LessThanOrEqualToThreshold": lambda v: v <= alarm["Threshold"],
    }[alarm["ComparisonOperator"]]
    window = points[-periods:]
    if all(p is None for p in window) and treat in ("missing", "ignore"):
        return "INSUFFICIENT_DATA"
    breaching = sum((treat == "breaching") if p is None else compare(p) for p in window)
    return "ALARM" if breaching >= needed else "OK"


def _alarms(templates: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        k: r["Properties"]
        for k, r in _resources(templates["Monitoring"], "AWS::CloudWatch::Alarm").items()
    }


def test_no_alarm_fires_on_a_fresh_deploy_before_any_traffic(templates: dict[str, Any]) -> None:
    alarms = _alarms(templates)
    assert len(alarms) == 7
    for name, alarm in alarms.items():
        # no datapoint at all yet: nothing has been sent, the job is still starting
        assert _state(alarm, [None] * alarm["EvaluationPeriods"]) != "ALARM", name


def test_no_alarm_fires_while_the_platform_is_healthy(templates: dict[str, Any]) -> None:
    healthy = {  # what a healthy platform publishes (seconds for latencies)
        "GetRecords.IteratorAgeMilliseconds": 1_000.0,
        "MillisBehindLatest": 0.0,
        "HTTPCode_ELB_5XX_Count": 0.0,
        "HTTPCode_Target_5XX_Count": 0.0,
        "TargetResponseTime": 0.05,
        "UnHealthyHostCount": 0.0,
    }
    for name, alarm in _alarms(templates).items():
        value = healthy[alarm["MetricName"]]
        # a quiet stream runs no Spark batch: the processor publishes in some periods only
        sparse = [value if i % 2 else None for i in range(alarm["EvaluationPeriods"])]
        assert _state(alarm, [value] * alarm["EvaluationPeriods"]) == "OK", name
        assert _state(alarm, sparse) == "OK", name


def test_the_alarm_model_does_alarm_on_real_trouble(templates: dict[str, Any]) -> None:
    alarms = {a["MetricName"]: a for a in _alarms(templates).values()}
    lag = alarms["MillisBehindLatest"]
    assert _state(lag, [lag["Threshold"] * 2] * lag["EvaluationPeriods"]) == "ALARM"
    assert _state({**lag, "TreatMissingData": "breaching"}, [None] * 5) == "ALARM"


def test_a_stopped_or_failed_job_is_reported_and_a_starting_one_is_not(
    templates: dict[str, Any],
) -> None:
    (rule,) = [
        r["Properties"]
        for r in _resources(templates["Monitoring"], "AWS::Events::Rule").values()
        if r["Properties"]["EventPattern"]["source"] == ["aws.glue"]
    ]
    states = set(rule["EventPattern"]["detail"]["state"])
    assert states == {"FAILED", "TIMEOUT", "STOPPED", "ERROR"}
    assert not states & {"STARTING", "RUNNING", "WAITING", "SUCCEEDED"}


# --- break 6: CloudWatch may use the alarm topic's key ---------------------------------------
# "How do I configure a CloudWatch alarm with an encrypted SNS topic?" (AWS re:Post knowledge
# center) and the SNS developer guide, "Enable compatibility between event sources from AWS
# services and encrypted topics": the key policy must allow cloudwatch.amazonaws.com
# kms:Decrypt and kms:GenerateDataKey*.


def _allows(policy: dict[str, Any], service: str, action: str, context: dict[str, str]) -> bool:
    """Whether an Allow statement of `policy` lets `service` call `action` with `context`
    (StringEquals and ArnLike conditions, the only ones these policies use)."""
    for statement in policy["Statement"]:
        principals = _as_list(statement.get("Principal", {}).get("Service", []))
        if statement["Effect"] != "Allow" or service not in principals:
            continue
        if not any(fnmatch.fnmatchcase(action, a) for a in _as_list(statement["Action"])):
            continue
        conditions = statement.get("Condition", {})
        unknown = set(conditions) - {"StringEquals", "ArnLike"}
        assert not unknown, unknown
        equal = all(context.get(k) == v for k, v in conditions.get("StringEquals", {}).items())
        like = all(
            fnmatch.fnmatchcase(context.get(k, ""), v)
            for k, v in conditions.get("ArnLike", {}).items()
        )
        if equal and like:
            return True
    return False


def test_cloudwatch_may_encrypt_for_the_alarm_topic(templates: dict[str, Any]) -> None:
    monitoring = templates["Monitoring"]
    (topic,) = _resources(monitoring, "AWS::SNS::Topic").values()
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    policy = monitoring["Resources"][key_id]["Properties"]["KeyPolicy"]
    alarm = {
        "aws:SourceAccount": ACCOUNT,
        "aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:AnyAlarm",
    }
    for action in ("kms:Decrypt", "kms:GenerateDataKey"):
        assert _allows(policy, "cloudwatch.amazonaws.com", action, alarm), action
    # only for this account's alarms
    other = {**alarm, "aws:SourceAccount": "222222222222"}
    assert not _allows(policy, "cloudwatch.amazonaws.com", "kms:Decrypt", other)
    assert not _allows(policy, "cloudwatch.amazonaws.com", "kms:Encrypt", alarm)
    # and every alarm notifies that topic
    topic_ref = {"Ref": next(iter(_resources(monitoring, "AWS::SNS::Topic")))}
    for name, props in _alarms(templates).items():
        assert props["AlarmActions"] == [topic_ref], name


# --- smaller: platforms ----------------------------------------------------------------------
# The pex files in the images are resolved for x86_64 (manylinux x86_64 wheels): each image is
# built for linux/amd64 whatever machine deploys, and runs on X86_64 (ECS task definition
# RuntimePlatform; Lambda Architectures).


def test_every_image_is_built_for_linux_amd64(assembly: Any) -> None:
    images = []
    for path in Path(assembly.directory).glob("*.assets.json"):
        for name, image in json.loads(path.read_text("utf-8")).get("dockerImages", {}).items():
            images.append(name)
            assert image["source"].get("platform") == "linux/amd64", (path.name, name)
    assert len(images) >= 5  # producer, catalog (task, lambda), metrics-api, dashboard


def test_every_task_and_function_runs_on_x86_64(templates: dict[str, Any]) -> None:
    tasks = [
        r["Properties"]
        for t in templates.values()
        for r in _resources(t, "AWS::ECS::TaskDefinition").values()
    ]
    assert len(tasks) == 6  # API, dashboard, alert evaluator, sync, compaction, producer
    for task in tasks:
        assert task["RuntimePlatform"] == {
            "CpuArchitecture": "X86_64",
            "OperatingSystemFamily": "LINUX",
        }, task["Family"]
    (register,) = _resources(templates["Catalog"], "AWS::Lambda::Function").values()
    assert register["Properties"]["Architectures"] == ["x86_64"]


# --- smaller: the lake's access logs go to a bucket of their own -----------------------------
# S3 user guide, "Logging requests with server access logging": deliver logs to a bucket other
# than the source, or each delivery logs itself.


def test_the_lake_logs_its_access_to_another_bucket(templates: dict[str, Any]) -> None:
    data = templates["Data"]
    buckets = _resources(data, "AWS::S3::Bucket")
    (lake_id,) = [k for k, b in buckets.items() if "VersioningConfiguration" in b["Properties"]]
    logging = buckets[lake_id]["Properties"]["LoggingConfiguration"]
    target = logging["DestinationBucketName"]["Ref"]
    assert target != lake_id
    assert target in buckets
    logs = buckets[target]["Properties"]
    assert "LoggingConfiguration" not in logs
    assert logs["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    policies = [
        p["Properties"]
        for p in _resources(data, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": target}
    ]
    (policy,) = policies
    writers = [
        s
        for s in policy["PolicyDocument"]["Statement"]
        if s.get("Principal") == {"Service": "logging.s3.amazonaws.com"}
    ]
    assert writers
    assert writers[0]["Action"] == "s3:PutObject"


# --- smaller: the Glue job, its security configuration and its logs key -----------------------


def test_the_job_is_created_after_its_security_configuration(templates: dict[str, Any]) -> None:
    processing = templates["Processing"]
    ((security_id, security),) = _resources(processing, "AWS::Glue::SecurityConfiguration").items()
    (job,) = _resources(processing, "AWS::Glue::Job").values()
    assert job["Properties"]["SecurityConfiguration"] == security["Properties"]["Name"]
    assert security_id in job["DependsOn"]


def test_cloudwatch_logs_may_describe_and_use_the_glue_logs_key(
    templates: dict[str, Any],
) -> None:
    # Glue developer guide, "Setting up encryption in AWS Glue" and CloudWatch Logs, "Encrypt
    # log data in CloudWatch Logs using AWS KMS": Encrypt*, Decrypt*, ReEncrypt*,
    # GenerateDataKey* and Describe* for logs.<region>.amazonaws.com, in the log group's context
    processing = templates["Processing"]
    (security,) = _resources(processing, "AWS::Glue::SecurityConfiguration").values()
    config = security["Properties"]["EncryptionConfiguration"]["CloudWatchEncryption"]
    key_id = config["KmsKeyArn"]["Fn::GetAtt"][0]
    policy = processing["Resources"][key_id]["Properties"]["KeyPolicy"]
    glue_logs = {
        "kms:EncryptionContext:aws:logs:arn": (
            f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws-glue/jobs/logs-v2"
        )
    }
    for action in ("kms:DescribeKey", "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey",
                   "kms:ReEncryptFrom"):  # fmt: skip
        assert _allows(policy, f"logs.{REGION}.amazonaws.com", action, glue_logs), action
    elsewhere = {
        "kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:x"
    }
    assert not _allows(policy, f"logs.{REGION}.amazonaws.com", "kms:Decrypt", elsewhere)


def test_every_log_group_is_encrypted_with_a_key_logs_may_use(templates: dict[str, Any]) -> None:
    groups = 0
    for stack, template in templates.items():
        for name, group in _resources(template, "AWS::Logs::LogGroup").items():
            groups += 1
            key_id = group["Properties"]["KmsKeyId"]["Fn::GetAtt"][0]
            policy = template["Resources"][key_id]["Properties"]["KeyPolicy"]
            context = {
                "kms:EncryptionContext:aws:logs:arn": (
                    f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{stack}-{name}"
                )
            }
            assert _allows(policy, f"logs.{REGION}.amazonaws.com", "kms:Encrypt", context), name
    assert groups >= 8


# --- break 5: the continuous job has no Timeout ----------------------------------------------
# Glue API reference, Job.Timeout: a streaming job with no timeout is restarted after 7 days
# (in its maintenance window when it has one); "Maintenance windows for AWS Glue Streaming": a
# run whose timeout is under 7 days is not restarted, it ends in TIMEOUT.


def test_the_streaming_job_has_no_timeout_and_a_maintenance_window(
    templates: dict[str, Any], settings: DeploySettings
) -> None:
    (job,) = _resources(templates["Processing"], "AWS::Glue::Job").values()
    assert "Timeout" not in job["Properties"]
    assert job["Properties"]["MaintenanceWindow"] == settings.glue_maintenance_window == "Sun:3"


@pytest.mark.parametrize("window", ["Sunday:3", "Sun:24", "sun:3", "Sun"])
def test_a_maintenance_window_glue_would_refuse_is_refused_here(window: str) -> None:
    with pytest.raises(ValueError, match="glue_maintenance_window"):
        DeploySettings(glue_maintenance_window=window)
