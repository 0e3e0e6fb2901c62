"""Data: the Kinesis stream, the lake bucket, the Glue database and the Athena workgroup."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_s3 as s3
from constructs import Construct

from signal_aws import checkov
from signal_aws.settings import DeploySettings

LAKE_PREFIX = "lake"
ATHENA_RESULTS_PREFIX = "athena-results"
# mobile_logs.csv files uploaded for the producer task to replay (outside the lake: no partition)
INPUTS_PREFIX = "inputs"
# records the producer task could not put into the stream, one object per run (a task's disk
# goes with the task)
DEAD_LETTERS_PREFIX = "dead-letters"
CHECKPOINT_PREFIX = "checkpoints"
GLUE_ASSETS_PREFIX = "glue"


class DataStack(Stack):
    """What every other stack reads or writes; retained when the stack is deleted."""

    def __init__(self, scope: Construct, cid: str, *, settings: DeploySettings, **kw: Any) -> None:
        super().__init__(scope, cid, **kw)
        self.settings = settings
        provisioned = settings.stream_mode == "provisioned"
        self.stream = kinesis.Stream(
            self,
            "Stream",
            stream_name=settings.stream_name,
            stream_mode=(
                kinesis.StreamMode.PROVISIONED if provisioned else kinesis.StreamMode.ON_DEMAND
            ),
            shard_count=settings.shard_count if provisioned else None,
            encryption=kinesis.StreamEncryption.MANAGED,
            retention_period=Duration.hours(24),
        )
        raw_rules = [
            s3.LifecycleRule(
                id=f"{table}-to-ia-then-expire",
                prefix=f"{LAKE_PREFIX}/{table}/",
                transitions=[
                    s3.Transition(
                        storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                        transition_after=Duration.days(settings.raw_infrequent_access_days),
                    )
                ],
                expiration=Duration.days(settings.raw_expiry_days),
            )
            for table in ("events", "quarantine")
        ]
        # S3 server access logs go to a bucket of their own (S3's user guide: a bucket that
        # logs into itself logs its own log deliveries, without end)
        self.access_logs = s3.Bucket(
            self,
            "LakeAccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # the only one log delivery accepts
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="access-logs-expire",
                    expiration=Duration.days(settings.access_logs_expiry_days),
                )
            ],
        )
        checkov.skip(self.access_logs, *checkov.LOG_BUCKET)
        self.bucket = s3.Bucket(
            self,
            "Lake",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            versioned=True,
            event_bridge_enabled=True,  # new objects reach the catalog's partition Lambda
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="lake/",
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                *raw_rules,
                s3.LifecycleRule(
                    id="athena-results-expire",
                    prefix=f"{ATHENA_RESULTS_PREFIX}/",
                    expiration=Duration.days(settings.athena_results_expiry_days),
                ),
                s3.LifecycleRule(
                    id="replay-inputs-expire",
                    prefix=f"{INPUTS_PREFIX}/",
                    expiration=Duration.days(settings.replay_inputs_expiry_days),
                ),
                s3.LifecycleRule(
                    id="dead-letters-expire",
                    prefix=f"{DEAD_LETTERS_PREFIX}/",
                    expiration=Duration.days(settings.dead_letters_expiry_days),
                ),
                s3.LifecycleRule(
                    id="noncurrent-versions-expire",
                    noncurrent_version_expiration=Duration.days(30),
                ),
            ],
        )
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=self.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=settings.glue_database,
                description="Signal Stream lake: events, quarantine, KPI partials, batches.",
                location_uri=self.lake_uri,
            ),
        )
        self.workgroup = athena.CfnWorkGroup(
            self,
            "Workgroup",
            name=f"{settings.prefix}",
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=settings.athena_bytes_scanned_cutoff,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{self.bucket.bucket_name}/{ATHENA_RESULTS_PREFIX}/",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"
                    ),
                ),
            ),
        )
        # read by the smoke command after deploy (deploy/smoke, --outputs outputs.json)
        CfnOutput(self, "StreamName", value=self.stream.stream_name)

    @property
    def lake_uri(self) -> str:
        """s3://bucket/lake"""
        return f"s3://{self.bucket.bucket_name}/{LAKE_PREFIX}"

    @property
    def glue_database_arn(self) -> str:
        return f"arn:aws:glue:{self.region}:{self.account}:database/{self.settings.glue_database}"

    @property
    def glue_tables_arn(self) -> str:
        return f"arn:aws:glue:{self.region}:{self.account}:table/{self.settings.glue_database}/*"

    def glue_table_arn(self, table: str) -> str:
        """One table of the database."""
        database = self.settings.glue_database
        return f"arn:aws:glue:{self.region}:{self.account}:table/{database}/{table}"

    @property
    def glue_catalog_arn(self) -> str:
        return f"arn:aws:glue:{self.region}:{self.account}:catalog"

    @property
    def workgroup_arn(self) -> str:
        return f"arn:aws:athena:{self.region}:{self.account}:workgroup/{self.workgroup.name}"
