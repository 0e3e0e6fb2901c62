"""Services, catalog and producer stacks: load balancer, target groups, health checks,
stickiness, autoscaling, secrets, the catalog's schedule and Lambda, the producer's task."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Match, Template

from signal_aws.cdk_app import build
from signal_aws.settings import DeploySettings
from signal_aws.stacks.data import LAKE_PREFIX

Templates = Callable[[str], Template]


def _of_type(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == kind]


def test_two_target_groups_with_their_health_checks_and_dashboard_stickiness(
    templates: dict[str, Any],
) -> None:
    groups = _of_type(templates["Services"], "AWS::ElasticLoadBalancingV2::TargetGroup")
    assert len(groups) == 2
    by_port = {g["Port"]: g for g in groups}
    api, dashboard = by_port[8080], by_port[8501]
    assert api["HealthCheckPath"] == "/healthz"
    assert dashboard["HealthCheckPath"] == "/_stcore/health"
    attributes = {a["Key"]: a["Value"] for a in dashboard["TargetGroupAttributes"]}
    assert attributes["stickiness.enabled"] == "true"
    assert attributes["stickiness.type"] == "lb_cookie"
    api_attributes = {a["Key"]: a["Value"] for a in api.get("TargetGroupAttributes", [])}
    assert api_attributes.get("stickiness.enabled") != "true"


def test_api_paths_route_to_the_api_and_everything_else_to_the_dashboard(
    template: Templates,
) -> None:
    services = template("Services")
    services.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::ListenerRule",
        {
            "Conditions": [
                {
                    "Field": "path-pattern",
                    "PathPatternConfig": {"Values": Match.array_with(["/v1/*", "/healthz"])},
                }
            ],
            "Priority": 10,
        },
    )
    services.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {
            "Port": 80,
            "Protocol": "HTTP",
            "DefaultActions": [Match.object_like({"Type": "forward"})],
        },
    )


def test_a_certificate_gives_https_and_a_redirect(settings: DeploySettings, tmp_path: Path) -> None:
    with_cert = settings.model_copy(
        update={"certificate_arn": "arn:aws:acm:eu-west-1:111111111111:certificate/abc"}
    )
    assembly = build(with_cert, tmp_path / "cdk.out").synth()
    services = Template.from_json(assembly.get_stack_by_name("SignalStreamServices").template)
    services.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {"Port": 443, "Protocol": "HTTPS", "Certificates": [Match.any_value()]},
    )
    services.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {
            "Port": 80,
            "DefaultActions": [
                Match.object_like(
                    {"Type": "redirect", "RedirectConfig": Match.object_like({"Port": "443"})}
                )
            ],
        },
    )


def test_services_scale_on_cpu_and_requests(templates: dict[str, Any]) -> None:
    policies = _of_type(templates["Services"], "AWS::ApplicationAutoScaling::ScalingPolicy")
    metrics = sorted(
        p["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"][
            "PredefinedMetricType"
        ]
        for p in policies
    )
    assert metrics == [
        "ALBRequestCountPerTarget",
        "ALBRequestCountPerTarget",
        "ECSServiceAverageCPUUtilization",
        "ECSServiceAverageCPUUtilization",
    ]


def test_api_reads_through_athena_with_keys_from_secrets_manager(
    templates: dict[str, Any], settings: DeploySettings
) -> None:
    tasks = _of_type(templates["Services"], "AWS::ECS::TaskDefinition")
    api = next(t for t in tasks if t["Family"] == "signal-stream-metrics-api")
    container = api["ContainerDefinitions"][0]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert env["SIGNAL_API_ENGINE"] == "athena"
    assert env["SIGNAL_API_GLUE_DATABASE"] == settings.glue_database
    assert [s["Name"] for s in container["Secrets"]] == ["SIGNAL_API_API_KEYS_SHA256"]
    assert {"Key": "version", "Value": settings.versions["metrics-api"]} in api["Tags"]
    dashboard = next(t for t in tasks if t["Family"] == "signal-stream-dashboard")
    names = sorted(s["Name"] for s in dashboard["ContainerDefinitions"][0]["Secrets"])
    assert names == ["SIGNAL_DASHBOARD_API_KEY", "SIGNAL_DASHBOARD_COOKIE_SECRET"]


def test_catalog_runs_sync_on_a_schedule_and_registers_partitions_from_s3_events(
    templates: dict[str, Any], settings: DeploySettings
) -> None:
    catalog = templates["Catalog"]
    rules = _of_type(catalog, "AWS::Events::Rule")
    schedules = [r for r in rules if "ScheduleExpression" in r]

    def rate(minutes: int) -> str:
        return f"rate({minutes // 60} hour)" if minutes == 60 else f"rate({minutes} minutes)"

    assert sorted(r["ScheduleExpression"] for r in schedules) == sorted(
        [rate(settings.catalog_sync_minutes), rate(settings.compaction_minutes)]
    )
    created = [r for r in rules if "EventPattern" in r]
    assert created[0]["EventPattern"]["detail-type"] == ["Object Created"]
    assert created[0]["EventPattern"]["detail"]["object"] == {"key": [{"prefix": "lake/"}]}
    functions = _of_type(catalog, "AWS::Lambda::Function")
    assert len(functions) == 1
    assert settings.versions["catalog-manager"] in functions[0]["Description"]
    tasks = _of_type(catalog, "AWS::ECS::TaskDefinition")
    assert sorted(t["ContainerDefinitions"][0]["Command"] for t in tasks) == [["compact"], ["sync"]]


def test_only_the_compaction_task_may_write_and_delete_lake_objects(
    templates: dict[str, Any], settings: DeploySettings
) -> None:
    catalog = templates["Catalog"]
    tasks = _of_type(catalog, "AWS::ECS::TaskDefinition")
    compact = next(t for t in tasks if t["ContainerDefinitions"][0]["Command"] == ["compact"])
    env = {e["Name"]: e["Value"] for e in compact["ContainerDefinitions"][0]["Environment"]}
    assert env["SIGNAL_CATALOG_COMPACT_READER_GRACE_S"] == str(settings.compaction_reader_grace_s)
    assert env["SIGNAL_CATALOG_COMPACT_GRACE_S"] == str(settings.compaction_grace_s)
    writers = {
        name: policy
        for name, policy in (
            (p["PolicyName"], p["PolicyDocument"]) for p in _of_type(catalog, "AWS::IAM::Policy")
        )
        if any(
            a in ("s3:DeleteObject*", "s3:PutObject")
            and f"/{LAKE_PREFIX}/*" in json.dumps(st["Resource"])
            for st in policy["Statement"]
            for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
        )
    }
    assert [n[: len("CompactTaskTaskRole")] for n in writers] == ["CompactTaskTaskRole"]


def test_projection_mode_has_no_lambda(settings: DeploySettings, tmp_path: Path) -> None:
    projection = settings.model_copy(update={"catalog_mode": "projection"})
    assembly = build(projection, tmp_path / "cdk.out").synth()
    catalog = Template.from_json(assembly.get_stack_by_name("SignalStreamCatalog").template)
    catalog.resource_count_is("AWS::Lambda::Function", 0)


def test_producer_task_may_put_into_its_stream_read_replay_inputs_and_write_dead_letters(
    templates: dict[str, Any],
) -> None:
    policies = _of_type(templates["Producer"], "AWS::IAM::Policy")
    task_policy = next(p for p in policies if p["PolicyName"].startswith("TaskTaskRole"))[
        "PolicyDocument"
    ]["Statement"]
    by_sid = {s["Sid"]: s for s in task_policy}
    assert sorted(by_sid) == ["PutRecords", "ReadReplayInputs", "WriteDeadLetters"]
    assert by_sid["PutRecords"]["Action"] == [
        "kinesis:PutRecords",
        "kinesis:PutRecord",
        "kinesis:DescribeStreamSummary",
    ]
    # reads only under inputs/: never the lake
    read = by_sid["ReadReplayInputs"]
    assert read["Action"] == "s3:GetObject"
    assert json.dumps(read["Resource"]).endswith('"/inputs/*"]]}')
    # writes only its dead letters, where the task's environment sends them
    write = by_sid["WriteDeadLetters"]
    assert write["Action"] == "s3:PutObject"
    assert json.dumps(write["Resource"]).endswith('"/dead-letters/producer/*"]]}')
    outputs = templates["Producer"]["Outputs"]
    assert json.dumps(outputs["ReplayInputs"]["Value"]).endswith('"/inputs/"]]}')
    (task,) = _of_type(templates["Producer"], "AWS::ECS::TaskDefinition")
    (container,) = task["ContainerDefinitions"]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    dead = env["SIGNAL_PRODUCER_DEAD_LETTER_PATH"]
    assert dead == outputs["DeadLetters"]["Value"]
    assert json.dumps(dead).endswith('"/dead-letters/producer/"]]}')
    assert outputs["TaskDefinitionFamily"]["Value"] == "signal-stream-producer"
    assert outputs["LogGroup"]["Value"] == {"Ref": "Logs6819BB44"}
    assert "PrivateSubnets" in templates["Services"]["Outputs"]


def test_each_service_version_flows_into_its_image_tag(
    templates: dict[str, Any], settings: DeploySettings
) -> None:
    versions = settings.versions
    expected = {
        "Producer": [f"producer-{versions['producer']}-"],
        "Catalog": [f"catalog-manager-{versions['catalog-manager']}-"],
        "Services": [
            f"metrics-api-{versions['metrics-api']}-dashboard-{versions['dashboard']}-",
        ],
    }
    for stack, prefixes in expected.items():
        text = json.dumps(templates[stack])
        for prefix in prefixes:
            assert prefix in text, (stack, prefix)
