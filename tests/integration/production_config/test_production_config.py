"""The production configuration, run: every ECS container and Lambda function the synthesized
templates define is started here with exactly the environment the deploy gives it (its image's
ENV, the template's variables, its secrets as test values) and must answer its health check.

Only the variables in local_run.ALLOWED_OVERRIDES differ (credentials, the runtime's region
variables, endpoints of the local stand-ins, loopback host and ports, the Cloud Map name of the
API, the process's PATH/HOME/PYTHONPATH). A variable the deploy sets that the unit's settings
class does not read fails (a typo, or a setting nothing exercises), as does a container or
function no check starts.

What cannot run here, and the rule followed instead:
- ECS passes a Secrets Manager secret (or one JSON key of it) to the container as an
  environment variable ("Pass Secrets Manager secrets through Amazon ECS environment
  variables", Amazon ECS Developer Guide,
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-secrets-manager.html):
  the secret's first-deploy value is used (its literal SecretString, or a test string of its
  generator's length and alphabet).
- Fargate and Lambda set AWS_REGION/AWS_DEFAULT_REGION themselves ("Amazon ECS task metadata"/
  "Defined runtime environment variables", AWS Lambda Developer Guide,
  https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime).
- The Lambda runtime imports the image CMD's handler and calls `handler(event, context)`
  ("Deploy Python Lambda functions with container images",
  https://docs.aws.amazon.com/lambda/latest/dg/python-image.html); the event is the EventBridge
  "Object Created" event S3 sends ("Amazon S3 Event Notifications: EventBridge message
  structure", https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html), built to
  match the rule that targets the function.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.util
import io
import json
import os
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from production_config.deployed import (
    IMAGE_PLUMBING,
    Resolver,
    Template,
    Unit,
    derive_units,
    lake_bucket_and_prefix,
    secret_test_value,
    setting_names,
)
from production_config.local_run import (
    ALLOWED_OVERRIDES,
    Completed,
    LocalEndpoints,
    Override,
    Probe,
    environment_of,
    invoke_function,
    local_overrides,
    probe_until_answering,
    run_health_check,
    run_task,
    run_until,
    start_process,
    start_server,
    tail,
)

from signal_aws.cdk_app import build
from signal_aws.settings import DeploySettings
from signal_common.lake import ALERT_EVENTS, TABLES_BY_NAME, partition_path, table_arrow_schema
from signal_local.endpoints import ManagedProcess, free_port
from signal_testing.aws_events import s3_object_created

# Images whose deploy command runs for minutes (the producer task sends 100,000 events): the
# check starts it and stops it once it has sent, as `aws ecs stop-task` does. The producer has
# no dry run (no --dry-run or preflight command; its preflight runs inside every send).
STOPPED_ONCE_SENDING = {"producer"}

# Findings of this test that need a change outside its files, each with the fix. The entry
# makes the test expect exactly this finding, so fixing it without removing the entry fails.
OPEN_FINDINGS: dict[str, set[str]] = {
    # unit id -> variables the deploy sets that its settings do not read, while a fix is open
    # (SIGNAL_PRODUCER_VERSION was one: the producer task now carries its version in its tags)
}

# Start order: servers first (the dashboard is pointed at the API), then the scheduled and
# on-demand tasks and the workers (ECS services without a load balancer), then the function
# (it registers into the tables `sync` creates).
ORDER = {"service": 0, "task": 1, "worker": 1, "function": 2}


@dataclass(frozen=True)
class Deploy:
    """The synthesized app: templates by stack name, the units they run, how values resolve."""

    settings: DeploySettings
    templates: dict[str, Template]
    resolver: Resolver
    units: tuple[Unit, ...]


def _repo() -> Path:
    """Where the BUILD files are (the pex entry points): the repository Pants runs from."""
    return Path(os.environ.get("SIGNAL_STREAM_ROOT") or Path.cwd())


def _deploy_test_conftest() -> Any:
    """deploy/aws/tests/conftest.py (its fake Glue bundle), loaded by path: every test
    directory has a `conftest` module, so it cannot be imported by name."""
    import signal_aws

    path = Path(signal_aws.__file__).parents[1] / "tests" / "conftest.py"
    spec = importlib.util.spec_from_file_location("signal_aws_tests_conftest", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def synthesized() -> Deploy:
    """The app synthesized offline once per test process, as deploy/aws/tests does."""
    root = Path(tempfile.mkdtemp(prefix="production-config-"))
    base = DeploySettings()
    settings = DeploySettings(
        glue_bundle_dir=_deploy_test_conftest().make_bundle(
            root, base.versions["stream-processor"]
        ),
        image_context_dir=root / "contexts",
        alarm_email="oncall@example.com",
    )
    assembly = build(settings, root / "cdk.out").synth()
    templates = {stack.stack_name: stack.template for stack in assembly.stacks}
    resolver = Resolver(templates, region=settings.region, account=settings.account)
    units = derive_units(templates, Path(assembly.directory), _repo(), resolver)
    return Deploy(settings, templates, resolver, tuple(sorted(units, key=lambda u: ORDER[u.kind])))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "unit" in metafunc.fixturenames:
        units = synthesized().units
        metafunc.parametrize("unit", units, ids=[u.id for u in units])


# --- what the templates say ---------------------------------------------------------------------
def test_every_container_and_function_of_the_templates_is_a_unit() -> None:
    deploy = synthesized()
    containers = {
        f"{stack}/{c['Name']}"
        for stack, template in deploy.templates.items()
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::ECS::TaskDefinition"
        for c in resource["Properties"]["ContainerDefinitions"]
    }
    functions = {
        f"{stack}/{logical}"
        for stack, template in deploy.templates.items()
        for logical, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    }
    providers = custom_resource_providers(deploy.templates)
    units = {u.id for u in deploy.units}
    # every container and every function the platform runs is started below; the only
    # functions left out back CloudFormation custom resources (they run during a deploy)
    assert units == containers | (functions - providers)
    assert not units & providers
    kinds = sorted(u.kind for u in deploy.units)
    assert kinds.count("function") >= 1
    assert kinds.count("service") >= 2
    assert kinds.count("worker") >= 1  # the alert evaluator
    print("\n" + table_of(deploy.units))


def custom_resource_providers(templates: dict[str, Template]) -> set[str]:
    """Functions that serve CloudFormation custom resources (the resource's ServiceToken, and
    the functions a provider's environment names): deploy-time code, not the platform's."""
    found: set[str] = set()
    for stack, template in templates.items():
        resources = template["Resources"]
        for resource in resources.values():
            kind = resource["Type"]
            if not (kind.startswith("Custom::") or kind == "AWS::CloudFormation::CustomResource"):
                continue
            token = resource["Properties"].get("ServiceToken", {})
            if isinstance(token, dict) and "Fn::GetAtt" in token:
                provider = token["Fn::GetAtt"][0]
                found.add(f"{stack}/{provider}")
                variables = resources[provider]["Properties"].get("Environment", {})
                for value in variables.get("Variables", {}).values():
                    if isinstance(value, dict) and "Fn::GetAtt" in value:
                        found.add(f"{stack}/{value['Fn::GetAtt'][0]}")
    return found


def table_of(units: tuple[Unit, ...]) -> str:
    """One Markdown row per unit: command, environment names, secrets."""
    rows = ["| unit | kind | command | environment | secrets |", "|---|---|---|---|---|"]
    for u in units:
        command = " ".join(u.command)
        names = ", ".join(sorted(u.environment))
        secrets = ", ".join(f"{k} ← {v.describe()}" for k, v in sorted(u.secrets.items()))
        rows.append(f"| {u.id} | {u.kind} | `{command}` | {names} | {secrets or '-'} |")
    return "\n".join(rows)


def test_every_variable_the_deploy_sets_is_read_by_the_units_settings(unit: Unit) -> None:
    known = unit.setting_names()
    given = (set(unit.environment) - set(IMAGE_PLUMBING)) | set(unit.secrets)
    unread = sorted(name for name in given if name.upper() not in known)
    readers = ", ".join(cls.__name__ for cls in unit.all_settings)
    assert set(unread) == OPEN_FINDINGS.get(unit.id, set()), (
        f"{unit.id} is given {unread}, which {readers} does not read "
        f"(a typo, or a setting nothing exercises)"
    )


def test_the_alert_evaluator_reads_the_delivery_settings_too() -> None:
    """`signal-api alerts evaluate` reads signal_api.alerts' delivery settings beside the
    API's: the check above holds its SIGNAL_ALERTS_ variables to that class."""
    (evaluator,) = [u for u in synthesized().units if u.kind == "worker"]
    assert evaluator.arguments[:2] == ("alerts", "evaluate")
    assert [cls.__name__ for cls in evaluator.all_settings] == ["ApiSettings", "DeliverySettings"]
    assert {n for n in evaluator.environment if n.startswith("SIGNAL_ALERTS_")} <= (
        setting_names(evaluator.more_settings[0])
    )


def test_overrides_are_only_the_allowed_ones(unit: Unit, local_aws: LocalEndpoints) -> None:
    deploy = synthesized()
    overrides = local_overrides(
        unit, local_aws, region=deploy.settings.region, local_urls=_placeholder_urls(), port=1
    )
    assert {o.rule for o in overrides} <= set(ALLOWED_OVERRIDES)
    env = environment_of(unit, _secret_values(deploy, unit), overrides)
    deployed = {k: v for k, v in unit.environment.items() if k not in IMAGE_PLUMBING}
    changed = {k for k, v in deployed.items() if env[k] != v}
    assert changed <= {o.name for o in overrides}
    added = set(env) - set(deployed) - set(unit.secrets)
    assert added == {o.name for o in overrides} - set(deployed)


def _placeholder_urls() -> dict[str, str]:
    units = synthesized().units
    return {u.cloud_map_name: "http://127.0.0.1:1" for u in units if u.cloud_map_name}


def _secret_values(deploy: Deploy, unit: Unit) -> dict[str, str]:
    return {name: secret_test_value(deploy.resolver, ref) for name, ref in unit.secrets.items()}


# --- the local stand-ins, created as the stacks create them -------------------------------------
@pytest.fixture(scope="module")
def local_aws(kinesis_endpoint_url: str, moto_endpoint_url: str) -> LocalEndpoints:
    """kinesalite and moto server holding what the templates create and the services expect:
    the buckets, streams, Glue databases and Athena workgroups, under their deployed names."""
    deploy = synthesized()
    region = deploy.settings.region
    s3 = boto3.client("s3", endpoint_url=moto_endpoint_url, region_name=region)
    glue = boto3.client("glue", endpoint_url=moto_endpoint_url, region_name=region)
    athena = boto3.client("athena", endpoint_url=moto_endpoint_url, region_name=region)
    kinesis = boto3.client("kinesis", endpoint_url=kinesis_endpoint_url, region_name=region)
    sns = in_account(
        boto3.client("sns", endpoint_url=moto_endpoint_url, region_name=region),
        deploy.settings.account,
    )
    for stack, template in deploy.templates.items():
        for logical, resource in template["Resources"].items():
            kind, name = resource["Type"], None
            if kind in (
                "AWS::S3::Bucket",
                "AWS::Kinesis::Stream",
                "AWS::Glue::Database",
                "AWS::Athena::WorkGroup",
                "AWS::SNS::Topic",
            ):
                name = deploy.resolver.physical_name(stack, logical)
            if kind == "AWS::S3::Bucket":
                s3.create_bucket(
                    Bucket=name, CreateBucketConfiguration={"LocationConstraint": region}
                )
            elif kind == "AWS::Kinesis::Stream":
                kinesis.create_stream(StreamName=name, ShardCount=4)
                kinesis.get_waiter("stream_exists").wait(
                    StreamName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100}
                )
            elif kind == "AWS::Glue::Database":
                glue.create_database(DatabaseInput={"Name": name})
            elif kind == "AWS::Athena::WorkGroup":
                athena.create_work_group(Name=name)
            elif kind == "AWS::SNS::Topic":  # its ARN is in the deploy's account
                arn = sns.create_topic(Name=name.rsplit(":", 1)[-1])["TopicArn"]
                assert arn == name, (arn, name)
    return LocalEndpoints(kinesis=kinesis_endpoint_url, moto=moto_endpoint_url)


def in_account(client: Any, account: str) -> Any:
    """`client` acting in `account` on moto server (its x-moto-account-id header): the deploy's
    resources live in the deploy's account, not moto's default one."""

    def header(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = account

    client.meta.events.register("before-sign.*.*", header)
    return client


@dataclass
class Runs:
    """Each unit started once: servers kept running to the end of the module, tasks and the
    function run to their end; what each answered."""

    endpoints: LocalEndpoints
    log_dir: Path
    servers: dict[str, ManagedProcess] = field(default_factory=dict)
    probes: dict[str, Probe] = field(default_factory=dict)
    completed: dict[str, Completed] = field(default_factory=dict)
    results: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    environments: dict[str, dict[str, str]] = field(default_factory=dict)

    def environment(self, unit: Unit, port: int | None = None) -> dict[str, str]:
        deploy = synthesized()
        local_urls = {
            u.cloud_map_name: self.servers[u.id].url
            for u in deploy.units
            if u.cloud_map_name and u.id in self.servers
        }
        overrides: list[Override] = local_overrides(
            unit, self.endpoints, region=deploy.settings.region, local_urls=local_urls, port=port
        )
        env = environment_of(unit, _secret_values(deploy, unit), overrides)
        self.environments[unit.id] = env
        return env

    def serve(self, unit: Unit) -> Probe:
        if unit.id not in self.probes:
            port = free_port()
            proc = start_server(unit, self.environment(unit, port), self.log_dir, port)
            self.servers[unit.id] = proc
            self.probes[unit.id] = probe_until_answering(proc, unit.health_path or "/")
        return self.probes[unit.id]

    def stop(self) -> None:
        for proc in self.servers.values():
            proc.stop()


@pytest.fixture(scope="module")
def runs(local_aws: LocalEndpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    started = Runs(local_aws, tmp_path_factory.mktemp("unit-logs"))
    yield started
    started.stop()


# --- each unit answers its health check ---------------------------------------------------------
def test_unit_answers_its_health_check(unit: Unit, runs: Runs) -> None:
    if unit.kind == "service":
        check_service(unit, runs)
    elif unit.kind == "worker":
        check_worker(unit, runs)
    elif unit.kind == "task":
        check_task(unit, runs)
    else:
        check_function(unit, runs)


def check_service(unit: Unit, runs: Runs) -> None:
    """A server behind the ALB answers its target group's health check path with one of the
    target group's healthy codes."""
    probe = runs.serve(unit)
    healthy = {int(code) for code in (unit.health_codes or "200").split(",")}
    assert probe.status in healthy, f"{unit.id} {unit.health_path} -> {probe.status}: {probe.body}"
    log = tail(runs.servers[unit.id].log_path)
    assert "Traceback" not in log, log


def check_task(unit: Unit, runs: Runs) -> None:
    """A task the deploy runs (on a schedule or on demand) ends with exit status 0."""
    if unit.image in STOPPED_ONCE_SENDING:
        check_sender(unit, runs)
        return
    done = runs.completed.get(unit.id) or run_task(unit, runs.environment(unit))
    runs.completed[unit.id] = done
    assert done.returncode == 0, f"{unit.id} exited {done.returncode}:\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-3000:]


def check_sender(unit: Unit, runs: Runs) -> None:
    """The producer's deploy command passes its preflight against the deploy's stream and
    region, puts records that land in that stream, and, stopped by SIGTERM, flushes what is in
    flight and exits with its documented "interrupted" status (130) and a summary line."""
    deploy = synthesized()
    stream = unit.environment["SIGNAL_PRODUCER_STREAM_NAME"]
    kinesis = boto3.client(
        "kinesis", endpoint_url=runs.endpoints.kinesis, region_name=deploy.settings.region
    )

    def records_in_stream() -> bool:
        for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
            iterator = kinesis.get_shard_iterator(
                StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            if kinesis.get_records(ShardIterator=iterator, Limit=1)["Records"]:
                return True
        return False

    assert not records_in_stream()
    done = run_until(unit, runs.environment(unit), records_in_stream, runs.log_dir)
    runs.completed[unit.id] = done
    assert records_in_stream(), done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 130, f"{unit.id} exited {done.returncode}:\n{done.stderr[-3000:]}"
    assert summary["interrupted"] is True, summary
    assert summary["sent"] > 0, summary
    assert summary["dead_lettered"] == 0, summary
    assert summary["fatal_error"] is None, summary


# --- the alert evaluator ------------------------------------------------------------------------
# An ECS service without a load balancer has no health check to answer: the evaluator proves
# itself by one cycle. Athena does not run here: moto's Athena answers the evaluator's two
# queries (coverage windows, then hole windows) with rows queued through moto's documented
# /moto-api/static/athena/query-results: an outage in one postal code (half its events out of
# service in every 5-minute bucket of the last hours), so the cycle fires out_of_service and
# delivery publishes it to the deploy's topic on moto's SNS.
OUTAGE_CODE = "10115"
BUCKET_S = 300


def _athena_result(columns: list[tuple[str, str]], rows: list[list[str]]) -> dict[str, Any]:
    """One GetQueryResults answer: the column names as its first row, as Athena answers a
    SELECT, then the rows."""
    header = [name for name, _ in columns]
    return {
        "rows": [{"Data": [{"VarCharValue": value} for value in row]} for row in [header, *rows]],
        "column_info": [
            {
                "CatalogName": "hive",
                "SchemaName": "",
                "TableName": "",
                "Name": name,
                "Label": name,
                "Type": kind,
                "Precision": 19 if kind == "bigint" else 2147483647,
                "Scale": 0,
                "Nullable": "UNKNOWN",
                "CaseSensitive": kind == "varchar",
            }
            for name, kind in columns
        ],
    }


def queue_outage_answers(moto: str, region: str, now: dt.datetime) -> None:
    """Queue the coverage query's answer (the outage) and the hole query's (no rows)."""
    first = int(now.timestamp()) // BUCKET_S * BUCKET_S - 4 * 3600
    last = int(now.timestamp()) + 15 * 60
    coverage = [
        [OUTAGE_CODE, str(bucket), "100", "50", str(-90 * 100)]
        for bucket in range(first, last, BUCKET_S)
    ]
    coverage.append([OUTAGE_CODE, "-1", "1000", "0", str(-90 * 1000)])  # the baseline's middle
    columns = [("postal_code", "varchar"), ("bucket", "bigint"), ("events", "bigint")]
    answers = [
        _athena_result(
            [*columns, ("out_of_service", "bigint"), ("signal_sum", "bigint")], coverage
        ),
        _athena_result([*columns, ("weak", "bigint"), ("devices", "bigint")], []),
    ]
    account = boto3.client("sts", endpoint_url=moto, region_name=region).get_caller_identity()
    body = json.dumps(
        {"account_id": account["Account"], "region": region, "results": answers}
    ).encode()
    request = urllib.request.Request(
        f"{moto}/moto-api/static/athena/query-results",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201, response.status


def check_worker(unit: Unit, runs: Runs) -> None:
    """The alert evaluator, started with exactly its deploy environment, runs a cycle over the
    deploy's lake (moto S3): the cycle's file appears in alert_events and its log says so; the
    outage fires, the transition is published to the deploy's topic (an SQS queue subscribed
    on moto receives it) and delivery records it in its S3 state (the state that outlives a
    Fargate task). Then ECS's SIGTERM stops it."""
    assert unit.arguments[:2] == ("alerts", "evaluate"), f"no check starts the worker {unit.id}"
    deploy = synthesized()
    region, account, moto = deploy.settings.region, deploy.settings.account, runs.endpoints.moto
    lake_bucket, lake_prefix = lake_bucket_and_prefix(unit.environment["SIGNAL_API_LAKE_ROOT"])
    state_bucket, state_prefix = lake_bucket_and_prefix(
        unit.environment["SIGNAL_ALERTS_STATE_S3_URI"]
    )
    topic = unit.environment["SIGNAL_ALERTS_SNS_TOPIC_ARN"]
    s3 = boto3.client("s3", endpoint_url=moto, region_name=region)
    sqs = in_account(boto3.client("sqs", endpoint_url=moto, region_name=region), account)
    sns = in_account(boto3.client("sns", endpoint_url=moto, region_name=region), account)
    queue = sqs.create_queue(QueueName="alert-receiver")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
    table_prefix = f"{lake_prefix}/{ALERT_EVENTS.name}/"

    def cycle_keys() -> list[str]:
        listed = s3.list_objects_v2(Bucket=lake_bucket, Prefix=table_prefix)
        return [o["Key"] for o in listed.get("Contents", []) if o["Key"].endswith(".parquet")]

    assert cycle_keys() == []
    started = dt.datetime.now(dt.UTC)
    queue_outage_answers(moto, region, started)
    proc = start_process(unit, runs.environment(unit), runs.log_dir, url="(no port)")
    runs.servers[unit.id] = proc  # stopped with the servers, whatever happens here
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.process.poll() is None:
        if cycle_keys() and '"alert cycle"' in tail(proc.log_path, 200):
            break
        time.sleep(0.5)
    log = tail(proc.log_path, 200)
    assert proc.process.poll() is None, f"{unit.id} exited {proc.process.returncode}:\n{log}"
    # the container's health check, run beside it as ECS runs it: its cycle just succeeded
    env = runs.environments[unit.id]
    healthy = run_health_check(unit, env)
    assert healthy.returncode == 0, f"{healthy.stdout}\n{healthy.stderr}\n{log}"
    assert healthy.stdout.startswith("healthy: "), healthy.stdout
    proc.stop()  # SIGTERM, as ECS stops a task
    assert "Traceback" not in log, log
    # and with no evaluator answering, the same check fails
    stopped = run_health_check(unit, env)
    assert stopped.returncode == 1, f"{stopped.stdout}\n{stopped.stderr}"
    assert "does not answer" in stopped.stderr, stopped.stderr
    (key,) = cycle_keys()
    assert key.startswith(f"{table_prefix}dt={started:%Y-%m-%d}/eval-"), key
    body = s3.get_object(Bucket=lake_bucket, Key=key)["Body"].read()
    rows = pq.read_table(pa.BufferReader(body)).to_pylist()
    assert [r["kind"] for r in rows].count("cycle") == 1
    firing = [
        r
        for r in rows
        if r["kind"] == "transition" and r["state"] == "firing" and r["area"] == OUTAGE_CODE
    ]
    assert [r["rule"] for r in firing] == ["out_of_service"], rows
    assert rows[0]["evaluated_at"] >= started.replace(microsecond=0), rows[0]
    # published to the deploy's topic, once
    received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=2)
    messages = [json.loads(json.loads(m["Body"])["Message"]) for m in received["Messages"]]
    assert [(m["alert_id"], m["state"]) for m in messages] == [
        (f"out_of_service:postal_code:{OUTAGE_CODE}", "firing")
    ], messages
    # and remembered where the next task finds it (no resend after a restart)
    sent = json.loads(
        s3.get_object(Bucket=state_bucket, Key=f"{state_prefix}/sent.json")["Body"].read()
    )
    assert set(sent) == {"sns"}, sent
    assert firing[0]["transition_key"] in sent["sns"], sent


def check_function(unit: Unit, runs: Runs) -> None:
    """The function, given the EventBridge event its rule matches for a new lake object,
    registers that object's partition (in the tables the scheduled `sync` keeps)."""
    deploy = synthesized()
    for task in deploy.units:  # the tables exist once the sync task of the same image ran
        if task.kind == "task" and task.arguments == ("sync",):
            check_task(task, runs)
    assert unit.event_pattern is not None, f"no EventBridge rule targets {unit.id}"
    now = dt.datetime.now(dt.UTC)
    dt_value, hour = now.strftime("%Y-%m-%d"), now.hour
    event, bucket, key = object_created_event(unit.event_pattern, now, table="events")
    table = TABLES_BY_NAME["events"]
    body = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([], schema=table_arrow_schema(table)), body)
    boto3.client(
        "s3", endpoint_url=runs.endpoints.moto, region_name=deploy.settings.region
    ).put_object(Bucket=bucket, Key=key, Body=body.getvalue())
    done, result = invoke_function(unit, runs.environment(unit), event)
    assert result is not None, f"{unit.id} raised:\n{done.stderr[-3000:]}"
    assert result["partitions_created"] == 1, result
    assert result["ignored_records"] == 0, result
    database = unit.environment.get("SIGNAL_CATALOG_GLUE_DATABASE") or ""
    glue = boto3.client(
        "glue", endpoint_url=runs.endpoints.moto, region_name=deploy.settings.region
    )
    partition = glue.get_partition(
        DatabaseName=database, TableName=table.name, PartitionValues=[dt_value, str(hour)]
    )["Partition"]
    assert partition["StorageDescriptor"]["Location"].startswith(f"s3://{bucket}/")


def object_created_event(
    pattern: dict[str, Any], now: dt.datetime, *, table: str
) -> tuple[dict[str, Any], str, str]:
    """An EventBridge "Object Created" event the rule's pattern matches, for a new object of
    the table's partition of `now`; (event, bucket, key)."""
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    bucket = pattern["detail"]["bucket"]["name"][0]
    (key_rule,) = pattern["detail"]["object"]["key"]
    deploy = synthesized()
    path = partition_path(table, now.strftime("%Y-%m-%d"), now.hour)
    key = f"{key_rule['prefix']}{path}/part-00000-test.parquet"
    event = s3_object_created(
        bucket,
        key,
        account=deploy.settings.account,
        region=deploy.settings.region,
        time=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    return event, bucket, key
