"""Deployment settings (environment prefix SIGNAL_AWS_): names and sizes, with defaults that
synthesize offline (a pinned account and region, so nothing is looked up)."""

from __future__ import annotations

import tomllib
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def repo_root() -> Path:
    """The repository root (the directory holding pants.toml) above this file."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pants.toml").exists():
            return parent
    return Path.cwd()


class DeploySettings(BaseSettings):
    """What the CDK app deploys and how big it is."""

    model_config = SettingsConfigDict(env_prefix="SIGNAL_AWS_", extra="ignore")

    account: str = Field("111111111111", description="AWS account (pinned: no lookups).")
    region: str = Field("eu-west-1", description="AWS region.")
    prefix: str = Field("signal-stream", description="Prefix of resource names.")
    availability_zones: list[str] = Field(
        default_factory=list,
        description="AZs of the VPC (default <region>a and <region>b: named, so synthesis "
        "looks nothing up and never writes placeholder AZs).",
    )
    stream_name: str = Field("mobile_coverage_logs", description="Kinesis data stream.")
    stream_mode: Literal["on_demand", "provisioned"] = Field("on_demand")
    shard_count: int = Field(4, ge=1, description="Shards when provisioned.")
    glue_database: str = Field("mobile_network_aggregations", description="Glue database.")
    glue_worker_type: Literal["G.025X", "G.1X", "G.2X"] = Field("G.1X")
    glue_workers: int = Field(2, ge=2, description="Glue workers (DPUs for G.1X).")
    glue_maintenance_window: str = Field(
        "Sun:3",
        pattern=r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun):([01]?[0-9]|2[0-3])$",
        description="Day and hour (GMT) in whose next 3 hours Glue restarts the streaming job "
        "once it has run 7 days (Glue API: Job.MaintenanceWindow).",
    )
    trigger_seconds: int = Field(20, ge=1, description="Processor micro-batch interval.")
    catalog_mode: Literal["register", "projection"] = Field(
        "register",
        description="register: a Lambda adds partitions as files land (plus a scheduled sync); "
        "projection: Athena partition projection, only the scheduled sync.",
    )
    catalog_lambda_reserved_concurrency: int | None = Field(
        None,
        ge=1,
        description="Reserved concurrency of the partition Lambda (default none: Lambda refuses "
        "a reservation that leaves the account's unreserved concurrency under its minimum, "
        "which a new account's reduced quota always would).",
    )
    catalog_sync_minutes: int = Field(60, ge=5, description="Schedule of `signal-catalog sync`.")
    compaction_minutes: int = Field(
        60, ge=5, description="Schedule of `signal-catalog compact` (closed hours into one file)."
    )
    compaction_grace_s: int = Field(
        3600, ge=0, description="Compact an hour partition once it ended this long ago."
    )
    compaction_reader_grace_s: int = Field(
        1800,
        ge=0,
        description="Delete replaced files once the compacted file is this old: longer than "
        "the longest Athena query of the workgroup.",
    )
    crawlers: bool = Field(False, description="Also create the seed's Glue crawlers.")
    certificate_arn: str | None = Field(None, description="ACM certificate: HTTPS listener.")
    alarm_email: str | None = Field(None, description="Subscribed to the alarm topic.")
    alert_email: str | None = Field(
        None, description="Subscribed to the alert topic (the evaluator's firing/resolved)."
    )
    api_tasks: int = Field(2, ge=1)
    api_max_tasks: int = Field(6, ge=1)
    dashboard_tasks: int = Field(2, ge=1)
    dashboard_max_tasks: int = Field(4, ge=1)
    athena_bytes_scanned_cutoff: int = Field(10 * 1024**3, ge=10 * 1024**2)
    raw_infrequent_access_days: int = Field(30, ge=30)
    raw_expiry_days: int = Field(400, ge=31)
    athena_results_expiry_days: int = Field(7, ge=1)
    access_logs_expiry_days: int = Field(
        90, ge=1, description="Days the lake bucket's S3 access logs are kept."
    )
    replay_inputs_expiry_days: int = Field(
        30, ge=1, description="Days a CSV uploaded under inputs/ for the producer task is kept."
    )
    dead_letters_expiry_days: int = Field(
        90, ge=1, description="Days the producer task's dead letters (dead-letters/) are kept."
    )
    glue_bundle_dir: Path | None = Field(
        None, description="The processor's Glue bundle (default dist/glue/stream-processor)."
    )
    image_context_dir: Path | None = Field(
        None, description="Docker contexts with the service pex files (default dist/)."
    )

    @property
    def zones(self) -> list[str]:
        """The VPC's availability zones."""
        return self.availability_zones or [f"{self.region}a", f"{self.region}b"]

    @property
    def bundle_dir(self) -> Path:
        """Where the Glue bundle is (built by glue_packaging/package.sh)."""
        return self.glue_bundle_dir or repo_root() / "dist/glue/stream-processor"

    @property
    def context_dir(self) -> Path:
        """The Docker build context: `./pants package` output (dist/)."""
        return self.image_context_dir or repo_root() / "dist"

    @cached_property
    def versions(self) -> dict[str, str]:
        """Each service's version, from its pyproject.toml."""
        root = repo_root()
        found: dict[str, str] = {}
        for service in (
            "producer",
            "stream-processor",
            "catalog-manager",
            "metrics-api",
            "dashboard",
        ):
            text = (root / "services" / service / "pyproject.toml").read_text("utf-8")
            found[service] = str(tomllib.loads(text)["project"]["version"])
        return found
