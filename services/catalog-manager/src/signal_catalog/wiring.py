"""Build clients and adapters from settings (the only place boto3 clients are created)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from signal_catalog.adapters.glue import GlueCatalog, RetryPolicy
from signal_catalog.adapters.lake import Lake, open_lake
from signal_catalog.adapters.query import AthenaSmokeEngine, DuckDBSmokeEngine, SmokeEngine
from signal_catalog.settings import CatalogSettings, EngineChoice


def client_config(settings: CatalogSettings) -> Config:
    """botocore retries throttling, 5xx and connection errors (its standard or adaptive mode,
    `total_max_attempts` including the first call); adapters.retry adds only Glue's
    ConcurrentModificationException, which botocore treats as final."""
    return Config(
        retries={"mode": settings.retry_mode, "total_max_attempts": settings.max_attempts},
        connect_timeout=5,
        read_timeout=60,
    )


def glue_client(settings: CatalogSettings) -> Any:
    """A boto3 Glue client for the settings' region and endpoint."""
    return boto3.client(
        "glue",
        region_name=settings.aws_region,
        endpoint_url=settings.glue_endpoint_url,
        config=client_config(settings),
    )


def s3_client(settings: CatalogSettings) -> Any:
    """A boto3 S3 client for the settings' region and endpoint."""
    return boto3.client(
        "s3",
        region_name=settings.aws_region,
        endpoint_url=settings.s3_endpoint_url,
        config=client_config(settings),
    )


def catalog_from(settings: CatalogSettings) -> GlueCatalog:
    """The Glue database of the settings."""
    return GlueCatalog(
        glue_client(settings),
        settings.glue_database,
        retry=RetryPolicy(settings.max_attempts, settings.backoff_base_s, settings.backoff_max_s),
    )


def lake_from(settings: CatalogSettings) -> Lake:
    """The lake at the settings' lake root."""
    return open_lake(settings.lake_root, s3_client_factory=lambda: s3_client(settings))


def engine_from(settings: CatalogSettings) -> SmokeEngine:
    """The query engine of `validate`."""
    if settings.engine() is EngineChoice.ATHENA:
        return AthenaSmokeEngine(
            database=settings.glue_database,
            region=settings.aws_region,
            workgroup=settings.athena_workgroup,
            output_location=settings.athena_output_location,
            endpoint_url=settings.athena_endpoint_url,
        )
    return DuckDBSmokeEngine()
