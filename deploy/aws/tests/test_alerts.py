"""The alert evaluator (#25) as deployed: one ECS service without a load balancer, its
environment, its task role's grants, and the encrypted SNS topic it and CloudWatch publish to.

Policies are evaluated as IAM does for these shapes (an Allow whose principal, action and
resource match and whose StringEquals/ArnLike conditions hold; an explicit Deny wins), against
the SNS developer guide's "Enable compatibility between event sources from AWS services and
encrypted topics" and "AWS KMS permissions" for publishers to an encrypted topic
(kms:GenerateDataKey* and kms:Decrypt on its key)."""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Template

from signal_api.alerts.queries import coverage_windows, hole_windows
from signal_api.core.params import TimeRange
from signal_aws.cdk_app import build
from signal_aws.settings import DeploySettings, repo_root
from signal_aws.stacks.alerts import (
    ALERT_EVENTS,
    DELIVERY_STATE_PREFIX,
    EVALUATOR_COMMAND,
    EVALUATOR_METRICS_PORT,
    EVALUATOR_READS,
)
from signal_aws.stacks.data import LAKE_PREFIX
from signal_common.lake import ALERT_EVENTS as LAKE_ALERT_EVENTS
from signal_common.quality import DEFAULT_BANDS

ACCOUNT, REGION = "111111111111", "eu-west-1"
LAKE_ARN = "<lake bucket>"  # the Data stack's exported bucket ARN, as _flat writes it
CLOUDWATCH_ALARM = {
    "aws:SourceAccount": ACCOUNT,
    "aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:AnyAlarm",
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _flat(node: Any) -> str:
    """A template value as one string: the lake bucket's imported ARN as LAKE_ARN, a Ref or
    GetAtt as <logical id>."""
    if isinstance(node, str):
        return node
    (function, argument), *_ = node.items()
    if function == "Fn::Join":
        return str(argument[0]).join(_flat(part) for part in argument[1])
    if function == "Fn::ImportValue":
        return LAKE_ARN if "Lake" in argument and "Arn" in argument else f"<{argument}>"
    if function == "Ref":
        return f"<{argument}>"
    if function == "Fn::GetAtt":
        return f"<{argument[0]}>"
    raise AssertionError(f"unread value {node!r}")


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r["Properties"] for k, r in template["Resources"].items() if r["Type"] == kind}


def _evaluator_task(services: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (logical, props)
        for logical, props in _of_type(services, "AWS::ECS::TaskDefinition").items()
        if props["Family"] == "signal-stream-alert-evaluator"
    ]
    return found


def _role_statements(template: dict[str, Any], role_logical: str) -> list[dict[str, Any]]:
    return [
        s
        for props in _of_type(template, "AWS::IAM::Policy").values()
        if {"Ref": role_logical} in props["Roles"]
        for s in props["PolicyDocument"]["Statement"]
    ]


def _role_may(statements: list[dict[str, Any]], action: str, resource: str) -> bool:
    """Whether an identity policy's Allow statements (no conditions) grant `action` on
    `resource` (resources flattened by _flat)."""
    for s in statements:
        if s["Effect"] != "Allow" or "Condition" in s:
            continue
        if not any(fnmatch.fnmatchcase(action, a) for a in _as_list(s["Action"])):
            continue
        if any(fnmatch.fnmatchcase(resource, _flat(r)) for r in _as_list(s["Resource"])):
            return True
    return False


def _resource_policy_allows(
    policy: dict[str, Any], principal: dict[str, Any], action: str, context: dict[str, str]
) -> bool:
    """Whether a key or topic policy lets `principal` ({"Service": ...} or {"AWS": role
    reference}) call `action` with `context`: an Allow matches and no Deny does."""
    allowed = False
    for s in policy["Statement"]:
        conditions = s.get("Condition", {})
        assert set(conditions) <= {"StringEquals", "ArnLike", "Bool"}, conditions
        holds = all(
            context.get(k) == v for k, v in conditions.get("StringEquals", {}).items()
        ) and all(
            fnmatch.fnmatchcase(context.get(k, ""), v)
            for k, v in conditions.get("ArnLike", {}).items()
        )
        holds = holds and all(
            context.get(k, "true") == v for k, v in conditions.get("Bool", {}).items()
        )
        if not holds or not any(fnmatch.fnmatchcase(action, a) for a in _as_list(s["Action"])):
            continue
        named = s["Principal"]
        if named != {"AWS": "*"} and not any(
            principal.get(kind) in _as_list(value) for kind, value in named.items()
        ):
            continue
        if s["Effect"] == "Deny":
            return False
        allowed = True
    return allowed


def _topic(services: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (found,) = _of_type(services, "AWS::SNS::Topic").items()
    return found


# --- the service ---------------------------------------------------------------------------------
def test_one_evaluator_runs_the_api_image_with_its_command_and_no_load_balancer(
    templates: dict[str, Any], settings: DeploySettings
) -> None:
    services = templates["Services"]
    logical, task = _evaluator_task(services)
    (container,) = task["ContainerDefinitions"]
    assert container["Command"] == ["alerts", "evaluate", "--every", "60"] == EVALUATOR_COMMAND
    api = next(
        p
        for p in _of_type(services, "AWS::ECS::TaskDefinition").values()
        if p["Family"] == "signal-stream-metrics-api"
    )
    assert container["Image"] == api["ContainerDefinitions"][0]["Image"]  # the same image
    assert "PortMappings" not in container
    assert {"Key": "version", "Value": settings.versions["metrics-api"]} in task["Tags"]
    (service,) = [
        p
        for p in _of_type(services, "AWS::ECS::Service").values()
        if p["TaskDefinition"] == {"Ref": logical}
    ]
    assert service["DesiredCount"] == 1
    assert "LoadBalancers" not in service
    assert "ServiceRegistries" not in service
    # a deploy stops the old evaluator before it starts the new one: never two at once
    deployment = service["DeploymentConfiguration"]
    assert (deployment["MinimumHealthyPercent"], deployment["MaximumPercent"]) == (0, 100)
    # and nothing scales it
    (service_logical,) = [
        k for k, p in _of_type(services, "AWS::ECS::Service").items() if p is service
    ]
    scaled = json.dumps(_of_type(services, "AWS::ApplicationAutoScaling::ScalableTarget"))
    assert service_logical not in scaled


def test_the_evaluator_gets_the_engine_the_topic_and_an_s3_delivery_state(
    templates: dict[str, Any], settings: DeploySettings
) -> None:
    services = templates["Services"]
    _, task = _evaluator_task(services)
    env = {e["Name"]: _flat(e["Value"]) for e in task["ContainerDefinitions"][0]["Environment"]}
    topic_logical, _ = _topic(services)
    lake_bucket = "<SignalStreamData:ExportsOutputRefLake5F1B88EABDBCEEF1>"
    assert env == {
        "SIGNAL_API_ENGINE": "athena",
        "SIGNAL_API_AWS_REGION": REGION,
        "SIGNAL_API_GLUE_DATABASE": settings.glue_database,
        "SIGNAL_API_LAKE_ROOT": f"s3://{lake_bucket}/{LAKE_PREFIX}",
        "SIGNAL_API_ATHENA_WORKGROUP": settings.prefix,
        "SIGNAL_API_ATHENA_OUTPUT_LOCATION": f"s3://{lake_bucket}/athena-results/",
        "SIGNAL_ALERTS_AWS_REGION": REGION,  # delivery's default (us-east-1) is not the topic's
        "SIGNAL_ALERTS_SNS_TOPIC_ARN": f"<{topic_logical}>",
        # the delivery state outlives the task (a Fargate task's disk does not): no state dir
        "SIGNAL_ALERTS_STATE_S3_URI": f"s3://{lake_bucket}/{DELIVERY_STATE_PREFIX}",
        "SIGNAL_ALERTS_DASHBOARD_URL": "http://<Alb16C2F182>",
        "SIGNAL_ALERTS_METRICS_PORT": "9464",  # its /metrics, on loopback: the health check's
    }
    assert not DELIVERY_STATE_PREFIX.startswith(f"{LAKE_PREFIX}/")  # not a table of the lake
    assert "Secrets" not in task["ContainerDefinitions"][0]


def test_the_evaluator_container_checks_its_last_cycle_with_the_image_pex(
    templates: dict[str, Any],
) -> None:
    """ECS runs the health check in the container: the image's own pex (its ENTRYPOINT; the
    image has no curl) asks the evaluator's /metrics whether a cycle succeeded within three
    cycles (tests/integration/production_config runs it against the running evaluator)."""
    _, task = _evaluator_task(templates["Services"])
    (container,) = task["ContainerDefinitions"]
    check = container["HealthCheck"]
    dockerfile = (repo_root() / "services/metrics-api/Dockerfile").read_text()
    (entrypoint,) = [line for line in dockerfile.splitlines() if line.startswith("ENTRYPOINT")]
    pex = json.loads(entrypoint.removeprefix("ENTRYPOINT"))[0]
    assert check["Command"] == ["CMD", pex, "alerts", "healthcheck", "--max-age", "180"]
    assert EVALUATOR_COMMAND[-2:] == ["--every", "60"]  # 180 s: three cycles without a success
    assert (check["Interval"], check["Timeout"], check["Retries"]) == (30, 15, 3)
    assert check["StartPeriod"] == 180  # the first cycle's Athena queries before it counts
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert env["SIGNAL_ALERTS_METRICS_PORT"] == str(EVALUATOR_METRICS_PORT)
    assert "SIGNAL_ALERTS_METRICS_HOST" not in env  # loopback (the default): nothing scrapes it


def test_what_the_deploy_grants_is_what_the_evaluator_reads_and_writes() -> None:
    """EVALUATOR_READS are the tables the evaluator's queries read; ALERT_EVENTS is its table."""
    scan = TimeRange(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    queries = [
        coverage_windows(scan, None, window_s=300),
        hole_windows(scan, DEFAULT_BANDS, window_s=300),
    ]
    assert {read.table for q in queries for read in q.reads} == set(EVALUATOR_READS)
    assert LAKE_ALERT_EVENTS.name == ALERT_EVENTS


def test_the_evaluator_role_reads_its_tables_writes_alert_events_and_deletes_nothing(
    templates: dict[str, Any],
) -> None:
    services = templates["Services"]
    _, task = _evaluator_task(services)
    role = task["TaskRoleArn"]["Fn::GetAtt"][0]
    statements = _role_statements(services, role)

    def obj(key: str) -> str:
        return f"{LAKE_ARN}/{key}"

    for table in EVALUATOR_READS:
        assert _role_may(statements, "s3:GetObject", obj(f"lake/{table}/dt=2026-01-01/hour=0/a"))
        assert not _role_may(statements, "s3:PutObject", obj(f"lake/{table}/x.parquet"))
    cycle = obj("lake/alert_events/dt=2026-01-01/eval-20260101T000000Z.parquet")
    assert _role_may(statements, "s3:GetObject", cycle)
    assert _role_may(statements, "s3:PutObject", cycle)
    assert _role_may(statements, "s3:ListBucket", LAKE_ARN)  # a missing key is a 404, not 403
    assert _role_may(statements, "s3:PutObject", obj("alert-delivery/sent.json"))
    assert _role_may(statements, "s3:GetObject", obj("alert-delivery/sent.json"))
    assert _role_may(statements, "s3:PutObject", obj("alert-delivery/dead-letters/x.json"))
    assert _role_may(statements, "s3:PutObject", obj("athena-results/q.csv"))
    for key in ("lake/quarantine/x", "lake/status_count/x", "lake/_commits/run.json"):
        assert not _role_may(statements, "s3:GetObject", obj(key)), key
    for key in ("lake/alert_events/x", "alert-delivery/sent.json", "lake/events/x"):
        assert not _role_may(statements, "s3:DeleteObject", obj(key)), key
    glue = f"arn:aws:glue:{REGION}:{ACCOUNT}:table/mobile_network_aggregations"
    assert _role_may(statements, "glue:GetTable", f"{glue}/events")
    assert _role_may(statements, "glue:GetPartitions", f"{glue}/coverage_by_postal_code")
    assert not _role_may(statements, "glue:GetTable", f"{glue}/quarantine")
    assert not any(a.startswith("glue:Create") for s in statements for a in _as_list(s["Action"]))


def test_the_api_role_may_read_alert_events(templates: dict[str, Any]) -> None:
    """/v1/alerts/active and /v1/alerts/history list and read alert_events' cycle files."""
    services = templates["Services"]
    api = next(
        p
        for p in _of_type(services, "AWS::ECS::TaskDefinition").values()
        if p["Family"] == "signal-stream-metrics-api"
    )
    statements = _role_statements(services, api["TaskRoleArn"]["Fn::GetAtt"][0])
    cycle = f"{LAKE_ARN}/lake/alert_events/dt=2026-01-01/eval-20260101T000000Z.parquet"
    assert _role_may(statements, "s3:GetObject", cycle)
    assert _role_may(statements, "s3:ListBucket", LAKE_ARN)
    assert not _role_may(statements, "s3:PutObject", cycle)


# --- the topic -----------------------------------------------------------------------------------
def test_the_alert_topic_is_encrypted_with_its_own_rotated_key(templates: dict[str, Any]) -> None:
    services = templates["Services"]
    _, topic = _topic(services)
    key_logical = topic["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = services["Resources"][key_logical]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    monitoring_topic = next(iter(_of_type(templates["Monitoring"], "AWS::SNS::Topic").values()))
    assert monitoring_topic["KmsMasterKeyId"] != topic["KmsMasterKeyId"]


def test_cloudwatch_and_the_evaluator_may_use_the_topic_key(templates: dict[str, Any]) -> None:
    services = templates["Services"]
    _, topic = _topic(services)
    key_logical = topic["KmsMasterKeyId"]["Fn::GetAtt"][0]
    policy = services["Resources"][key_logical]["Properties"]["KeyPolicy"]
    _, task = _evaluator_task(services)
    evaluator = {"AWS": task["TaskRoleArn"]}
    cloudwatch = {"Service": "cloudwatch.amazonaws.com"}
    for action in ("kms:Decrypt", "kms:GenerateDataKey"):
        assert _resource_policy_allows(policy, cloudwatch, action, CLOUDWATCH_ALARM), action
        assert _resource_policy_allows(policy, evaluator, action, {}), action
    other = {**CLOUDWATCH_ALARM, "aws:SourceAccount": "222222222222"}
    assert not _resource_policy_allows(policy, cloudwatch, "kms:Decrypt", other)
    assert not _resource_policy_allows(policy, cloudwatch, "kms:Encrypt", CLOUDWATCH_ALARM)
    assert not _resource_policy_allows(policy, evaluator, "kms:ScheduleKeyDeletion", {})
    # and its identity policy asks for the same on that key (sns:Publish on that topic)
    statements = _role_statements(services, task["TaskRoleArn"]["Fn::GetAtt"][0])
    assert _role_may(statements, "kms:GenerateDataKey", f"<{key_logical}>")
    assert _role_may(statements, "kms:Decrypt", f"<{key_logical}>")


def test_cloudwatch_alarms_and_the_evaluator_may_publish_over_tls_only(
    templates: dict[str, Any],
) -> None:
    services = templates["Services"]
    topic_logical, _ = _topic(services)
    (policy,) = [
        p["PolicyDocument"]
        for p in _of_type(services, "AWS::SNS::TopicPolicy").values()
        if {"Ref": topic_logical} in p["Topics"]
    ]
    _, task = _evaluator_task(services)
    evaluator = {"AWS": task["TaskRoleArn"]}
    cloudwatch = {"Service": "cloudwatch.amazonaws.com"}
    tls = {"aws:SecureTransport": "true"}
    assert _resource_policy_allows(policy, cloudwatch, "sns:Publish", CLOUDWATCH_ALARM | tls)
    assert _resource_policy_allows(policy, evaluator, "sns:Publish", tls)
    plain = {"aws:SecureTransport": "false"}
    assert not _resource_policy_allows(policy, evaluator, "sns:Publish", plain)
    other = {**CLOUDWATCH_ALARM, "aws:SourceAccount": "222222222222"} | tls
    assert not _resource_policy_allows(policy, cloudwatch, "sns:Publish", other)
    assert not _resource_policy_allows(policy, evaluator, "sns:DeleteTopic", tls)
    statements = _role_statements(services, task["TaskRoleArn"]["Fn::GetAtt"][0])
    assert _role_may(statements, "sns:Publish", f"<{topic_logical}>")


def test_an_alarm_tells_the_topic_when_no_evaluator_runs(templates: dict[str, Any]) -> None:
    services = templates["Services"]
    topic_logical, _ = _topic(services)
    (alarm,) = _of_type(services, "AWS::CloudWatch::Alarm").values()
    metric = (alarm["Namespace"], alarm["MetricName"])
    assert metric == ("ECS/ContainerInsights", "RunningTaskCount")
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("LessThanThreshold", 1)
    assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": topic_logical}]
    dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    assert dimensions["ServiceName"]["Fn::GetAtt"][1] == "Name"
    assert templates["Services"]["Outputs"]["AlertTopicArn"]["Value"] == {"Ref": topic_logical}


def test_an_alert_email_subscribes_to_the_alert_topic(
    settings: DeploySettings, tmp_path: Path
) -> None:
    with_email = settings.model_copy(update={"alert_email": "alerts@example.com"})
    assembly = build(with_email, tmp_path / "cdk.out").synth()
    services = Template.from_json(assembly.get_stack_by_name("SignalStreamServices").template)
    services.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "alerts@example.com"}
    )
