"""Local AWS endpoints for Signal Stream: kinesalite (Kinesis), moto server (Glue, S3, Athena)."""

from __future__ import annotations
