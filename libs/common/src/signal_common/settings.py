"""The settings base every service extends (each with its own env prefix)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_STREAM_NAME = "mobile_coverage_logs"
DEFAULT_GLUE_DATABASE = "mobile_network_aggregations"


class CommonSettings(BaseSettings):
    """Shared settings: AWS region and endpoints, stream, catalog database, lake root, logging.

    Endpoint URLs are empty in AWS and point at the local servers (kinesalite, moto) locally;
    nothing else differs between the two. Subclasses set `env_prefix`, e.g. SIGNAL_PRODUCER_.
    """

    model_config = SettingsConfigDict(env_prefix="SIGNAL_", extra="ignore")

    aws_region: str = Field("us-east-1", description="AWS region of every client.")
    kinesis_endpoint_url: str | None = Field(None, description="Kinesis endpoint (local runs).")
    glue_endpoint_url: str | None = Field(None, description="Glue endpoint (local runs).")
    s3_endpoint_url: str | None = Field(None, description="S3 endpoint (local runs).")
    athena_endpoint_url: str | None = Field(None, description="Athena endpoint (local runs).")
    stream_name: str = Field(DEFAULT_STREAM_NAME, description="Kinesis data stream name.")
    glue_database: str = Field(DEFAULT_GLUE_DATABASE, description="Glue Data Catalog database.")
    lake_root: str = Field(
        "file:///tmp/signal-stream/lake", description="Lake root URI (file:// or s3://)."
    )
    log_level: str = Field("INFO", description="Log level.")
    log_json: bool = Field(True, description="Log JSON lines (false: plain text).")
