"""Processing: the stream processor as a continuous Glue 6.0 streaming job, installed from the
bundle its packaging command builds (glue_packaging/package.sh), and started by the deploy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, CustomResource, Duration, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from signal_aws import checkov, job_run_handler
from signal_aws.settings import DeploySettings
from signal_aws.stacks.data import CHECKPOINT_PREFIX, GLUE_ASSETS_PREFIX, DataStack
from signal_aws.stacks.logging import log_group, logs_key_statement

METRICS_NAMESPACE = "SignalStream/StreamProcessor"  # the processor's CloudWatchMetrics


class BundleMissingError(RuntimeError):
    """The Glue bundle has not been built."""


def read_manifest(bundle: Path) -> dict[str, Any]:
    """The bundle's manifest.json, or a plain error naming the command that builds it."""
    manifest = bundle / "manifest.json"
    if not manifest.is_file():
        raise BundleMissingError(
            f"{manifest} does not exist: build the processor's Glue bundle first "
            "(bash services/stream-processor/glue_packaging/package.sh)"
        )
    data: dict[str, Any] = json.loads(manifest.read_text("utf-8"))
    return data


class ProcessingStack(Stack):
    """The Glue streaming job, its role and its uploaded script and wheels."""

    def __init__(
        self,
        scope: Construct,
        cid: str,
        *,
        settings: DeploySettings,
        data: DataStack,
        **kw: Any,
    ) -> None:
        super().__init__(scope, cid, **kw)
        manifest = read_manifest(settings.bundle_dir)
        version = str(manifest["version"])
        if version != settings.versions["stream-processor"]:
            raise BundleMissingError(
                f"the Glue bundle is version {version} but the processor is "
                f"{settings.versions['stream-processor']}: rebuild it (glue_packaging/package.sh)"
            )
        prefix = f"{GLUE_ASSETS_PREFIX}/stream-processor/{version}"
        upload = s3deploy.BucketDeployment(
            self,
            "Bundle",
            sources=[s3deploy.Source.asset(str(settings.bundle_dir))],
            destination_bucket=data.bucket,
            destination_key_prefix=prefix,
            prune=False,
            retain_on_delete=True,
        )
        base = f"s3://{data.bucket.bucket_name}/{prefix}"
        self.job_name = f"{settings.prefix}-stream-processor"
        self.role = iam.Role(
            self,
            "JobRole",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description=f"Glue job {self.job_name}: read the stream, write the lake",
        )
        data.stream.grant_read(self.role)
        data.bucket.grant_read(self.role, f"{GLUE_ASSETS_PREFIX}/*")
        data.bucket.grant_read_write(self.role, "lake/*")
        data.bucket.grant_read_write(self.role, f"{CHECKPOINT_PREFIX}/*")
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ProcessorConsumerLag",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],  # PutMetricData has no resource; the namespace is the scope
                conditions={"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="GlueJobMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": "Glue"}},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ContinuousLogging",
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[f"arn:aws:logs:{self.region}:{self.account}:log-group:/aws-glue/*"],
            )
        )
        # the job's logs are encrypted with a key of its own (Glue security configuration)
        key = kms.Key(self, "JobKey", enable_key_rotation=True, description="Glue job logs")
        key.add_to_resource_policy(logs_key_statement(self, "/aws-glue/*"))
        key.grant_encrypt_decrypt(self.role)
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="EncryptedLogs",
                actions=["logs:AssociateKmsKey"],
                resources=[f"arn:aws:logs:{self.region}:{self.account}:log-group:/aws-glue/*"],
            )
        )
        security = glue.CfnSecurityConfiguration(
            self,
            "Security",
            name=f"{settings.prefix}-stream-processor",
            encryption_configuration=glue.CfnSecurityConfiguration.EncryptionConfigurationProperty(
                cloud_watch_encryption=glue.CfnSecurityConfiguration.CloudWatchEncryptionProperty(
                    cloud_watch_encryption_mode="SSE-KMS", kms_key_arn=key.key_arn
                ),
                job_bookmarks_encryption=(
                    glue.CfnSecurityConfiguration.JobBookmarksEncryptionProperty(
                        job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=key.key_arn
                    )
                ),
                s3_encryptions=[
                    glue.CfnSecurityConfiguration.S3EncryptionProperty(s3_encryption_mode="SSE-S3")
                ],
            ),
        )
        wheels = [f"{base}/{path}" for path in manifest["additional_python_modules"]]
        self.job = glue.CfnJob(
            self,
            "Job",
            name=self.job_name,
            description=f"signal-stream-processor {version}: Kinesis → validate → dedup → lake",
            role=self.role.role_arn,
            glue_version=str(manifest.get("glue_version", "6.0")),
            command=glue.CfnJob.JobCommandProperty(
                name="gluestreaming",
                python_version="3",
                script_location=f"{base}/{manifest['script']}",
            ),
            worker_type=settings.glue_worker_type,
            number_of_workers=settings.glue_workers,
            max_retries=0,  # a streaming job restarts from its checkpoint; see monitoring
            security_configuration=security.name,
            # No Timeout: a streaming run with one under 7 days ends in TIMEOUT and is never
            # restarted; without one Glue restarts it after 7 days, in this window (GMT)
            maintenance_window=settings.glue_maintenance_window,
            default_arguments={
                "--stream": settings.stream_name,
                "--region": self.region,
                "--lake_root": data.lake_uri,
                "--checkpoint": f"s3://{data.bucket.bucket_name}/{CHECKPOINT_PREFIX}/processor",
                "--trigger_seconds": str(settings.trigger_seconds),
                "--publish_metrics": "true",
                "--additional-python-modules": ",".join(wheels),
                "--python-modules-installer-option": str(
                    manifest.get("python_modules_installer_option", "--no-deps")
                ),
                "--enable-continuous-cloudwatch-log": "true",
                "--enable-continuous-log-filter": "true",
                "--enable-metrics": "true",
                "--enable-observability-metrics": "true",
                "--job-language": "python",
            },
            tags={"service": "stream-processor", "version": version},
        )
        self.job.node.add_dependency(upload)
        # named by a string, so CloudFormation must be told to create it first
        self.job.add_dependency(security)
        # read by the smoke command after deploy (deploy/smoke, --outputs outputs.json)
        CfnOutput(self, "GlueJobName", value=self.job.ref)
        self.job_run = self._job_run(version)

    def _job_run(self, version: str) -> CustomResource:
        """A custom resource that starts the job when deployed, restarts it when its
        definition changes and stops it when destroyed (signal_aws/job_run_handler.py)."""
        starter = lambda_.Function(
            self,
            "JobRunHandler",
            description=f"Starts and stops the Glue job {self.job_name} with the stack",
            runtime=lambda_.Runtime.PYTHON_3_14,  # cdk-nag L1: the latest
            architecture=lambda_.Architecture.X86_64,
            handler="index.handler",
            code=lambda_.Code.from_inline(Path(job_run_handler.__file__).read_text("utf-8")),
            timeout=Duration.minutes(14),  # stopping a run waits for it to end
            log_group=log_group(self, "JobRunHandlerLogs"),
        )
        checkov.skip(starter, *checkov.DEPLOY_TIME_FUNCTION)
        job_arn = f"arn:aws:glue:{self.region}:{self.account}:job/{self.job_name}"
        starter.add_to_role_policy(
            iam.PolicyStatement(
                sid="OneRunOfTheJob",
                actions=["glue:StartJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"],
                resources=[job_arn],
            )
        )
        job = self.job
        run = CustomResource(
            self,
            "JobRun",
            service_token=starter.function_arn,
            resource_type="Custom::GlueJobRun",
            properties={
                "JobName": self.job_name,
                # what the run was started with: a change restarts it
                "Job": {
                    "Version": version,
                    "WorkerType": job.worker_type,
                    "NumberOfWorkers": str(job.number_of_workers),
                    "GlueVersion": job.glue_version,
                    "Arguments": job.default_arguments,
                },
            },
        )
        run.node.add_dependency(job)
        return run
