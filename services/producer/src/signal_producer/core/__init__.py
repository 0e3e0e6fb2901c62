"""Pure producer logic: event generation, scenarios, replay mapping, batching and pacing."""

from __future__ import annotations

from signal_producer.core.generator import GeneratorConfig, generate_records
from signal_producer.core.records import GeneratedRecord, RecordKind

__all__ = ["GeneratedRecord", "GeneratorConfig", "RecordKind", "generate_records"]
