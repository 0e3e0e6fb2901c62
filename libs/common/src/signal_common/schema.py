"""The telemetry event, declared once; every other form of it is derived from EVENT_FIELDS.

Derived here: the pydantic model (`TelemetryEvent`), the Arrow schema, the Glue/Athena (Hive)
column list and the JSON Schema; nothing here imports pyspark. `tests/test_schema.py` proves the
forms agree field by field.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import pyarrow as pa
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    create_model,
)

SCHEMA_VERSION = 1

# A record larger than this is quarantined as `oversize` without parsing (Kinesis allows 1 MiB;
# a real event is ~400 bytes, so anything this big is a broken or hostile client).
MAX_EVENT_BYTES = 16 * 1024

# Reason codes of quarantined records, shared by the producer's malformed-record scenario, the
# stream processor's validation and the API's quarantine metrics. A record with several problems
# is quarantined under the first one, in EVENT_FIELDS order (extra fields after all declared ones).
QUARANTINE_REASONS: tuple[str, ...] = (
    "oversize",  # payload larger than MAX_EVENT_BYTES
    "invalid_json",  # not UTF-8 JSON
    "not_an_object",  # JSON, but not an object
    "missing",  # a required field is absent
    "wrong_type",  # a field has the wrong JSON type (e.g. "-85" for signal_dbm)
    "out_of_range",  # a number or string length outside the declared range
    "unknown_enum",  # a value outside the declared enum
    "extra_field",  # an attribute the schema does not declare
    # valid by the schema, but event_time is implausibly far ahead of the record's arrival or
    # behind it (tolerances are the processor's settings); it would land outside every query
    "implausible_time",
)


class NetworkType(enum.StrEnum):
    G2 = "2G"
    G3 = "3G"
    G4 = "4G"
    G5 = "5G"


class Provider(enum.StrEnum):
    GPS = "gps"
    NETWORK = "network"
    FUSED = "fused"


class Status(enum.StrEnum):
    IN_SERVICE = "IN_SERVICE"
    OUT_OF_SERVICE = "OUT_OF_SERVICE"
    EMERGENCY_ONLY = "EMERGENCY_ONLY"
    POWER_OFF = "POWER_OFF"


class Activity(enum.StrEnum):
    STILL = "STILL"
    WALKING = "WALKING"
    RUNNING = "RUNNING"
    ON_BICYCLE = "ON_BICYCLE"
    IN_VEHICLE = "IN_VEHICLE"
    UNKNOWN = "UNKNOWN"


Kind = Literal["string", "enum", "timestamp", "int", "long", "double"]


@dataclass(frozen=True)
class FieldSpec:
    """One attribute of the event: its type, unit, allowed values and meaning."""

    name: str
    kind: Kind
    description: str
    unit: str | None = None
    required: bool = True
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    enum: type[enum.StrEnum] | None = None

    @property
    def allowed_values(self) -> tuple[str, ...] | None:
        return tuple(member.value for member in self.enum) if self.enum else None


EVENT_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(
        "event_id", "string", "Unique id of the event; the deduplication key.", max_length=64
    ),
    FieldSpec("device_id", "string", "Pseudonymous id of the reporting device.", max_length=64),
    FieldSpec("event_time", "timestamp", "When the phone took the measurement (UTC).", unit="UTC"),
    FieldSpec("operator", "string", "Mobile network operator name.", max_length=64),
    FieldSpec("network_type", "enum", "Radio access technology generation.", enum=NetworkType),
    FieldSpec(
        "signal_dbm",
        "int",
        "Received signal power (RSSI for 2G, RSCP for 3G, RSRP for 4G, SS-RSRP for 5G).",
        unit="dBm",
        minimum=-150,
        maximum=-20,
    ),
    FieldSpec("provider", "enum", "Location provider that produced the fix.", enum=Provider),
    FieldSpec(
        "gps_precision_m",
        "double",
        "Horizontal accuracy radius of the location fix.",
        unit="m",
        minimum=0,
        maximum=100_000,
    ),
    FieldSpec("latitude", "double", "WGS84 latitude.", unit="deg", minimum=-90, maximum=90),
    FieldSpec("longitude", "double", "WGS84 longitude.", unit="deg", minimum=-180, maximum=180),
    FieldSpec("postal_code", "string", "Postal code of the location.", max_length=16),
    FieldSpec("status", "enum", "Service state of the phone's radio.", enum=Status),
    FieldSpec("activity", "enum", "Detected user activity.", enum=Activity),
    FieldSpec(
        "speed_kmh",
        "double",
        "Ground speed.",
        unit="km/h",
        required=False,
        minimum=0,
        maximum=500,
    ),
    FieldSpec(
        "satellites",
        "int",
        "Satellites used in the fix.",
        unit="count",
        required=False,
        minimum=0,
        maximum=128,
    ),
    FieldSpec(
        "cell_id",
        "long",
        "Serving cell identity (CID/NCI).",
        required=False,
        minimum=0,
        maximum=2**36 - 1,
    ),
)

FIELDS_BY_NAME: Mapping[str, FieldSpec] = {f.name: f for f in EVENT_FIELDS}
EVENT_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in EVENT_FIELDS)

_ARROW_TYPES: Mapping[str, pa.DataType] = {
    "string": pa.string(),
    "enum": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "int": pa.int32(),
    "long": pa.int64(),
    "double": pa.float64(),
}
_HIVE_TYPES: Mapping[str, str] = {
    "string": "string",
    "enum": "string",
    "timestamp": "timestamp",
    "int": "int",
    "long": "bigint",
    "double": "double",
}
_JSON_TYPES: Mapping[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "enum": {"type": "string"},
    "timestamp": {"type": "string", "format": "date-time"},
    "int": {"type": "integer"},
    "long": {"type": "integer"},
    "double": {"type": "number"},
}


def hive_type(kind: Kind) -> str:
    """The Glue/Athena (Hive DDL) type of a field kind."""
    return _HIVE_TYPES[kind]


def arrow_type(kind: Kind) -> pa.DataType:
    """The Arrow type of a field kind."""
    return _ARROW_TYPES[kind]


def _as_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


def _python_type(spec: FieldSpec) -> Any:
    constraints: dict[str, Any] = {"description": spec.description}
    if spec.minimum is not None:
        constraints["ge"] = spec.minimum
    if spec.maximum is not None:
        constraints["le"] = spec.maximum
    if spec.max_length is not None:
        constraints["min_length"] = 1
        constraints["max_length"] = spec.max_length
    base: Any
    if spec.kind == "enum":
        assert spec.enum is not None
        base = Literal[spec.allowed_values]
    elif spec.kind == "timestamp":
        # Naive times are rejected: an event without a zone cannot be placed in a window.
        base = Annotated[AwareDatetime, AfterValidator(_as_utc)]
    elif spec.kind in ("int", "long"):
        base = Annotated[int, Strict()]  # "-85" or 3.5 on the wire is a wrong type
    elif spec.kind == "double":
        base = Annotated[float, Strict()]  # accepts JSON integers, rejects strings
    else:
        base = Annotated[str, Strict()]
    annotated = Annotated[base, Field(**constraints)]
    if spec.required:
        return (annotated, ...)
    return (annotated | None, Field(default=None, description=spec.description))


class _EventBase(BaseModel):
    # Unknown attributes are an error, not silently dropped; numbers are strict per field.
    model_config = ConfigDict(extra="forbid", frozen=True)


TelemetryEvent: type[BaseModel] = create_model(
    "TelemetryEvent",
    __base__=_EventBase,
    __doc__="A phone's telemetry report (schema version 1).",
    **{spec.name: _python_type(spec) for spec in EVENT_FIELDS},
)


@dataclass(frozen=True)
class FieldError:
    """Why one field of an event was rejected."""

    field: str
    reason: str  # one of QUARANTINE_REASONS
    message: str


_REASON_BY_PYDANTIC_TYPE = {
    "missing": "missing",
    "extra_forbidden": "extra_field",
    "literal_error": "unknown_enum",
    "greater_than_equal": "out_of_range",
    "less_than_equal": "out_of_range",
    "string_too_long": "out_of_range",
    "string_too_short": "out_of_range",
    "timezone_aware": "wrong_type",
    "finite_number": "out_of_range",
    # raised when validating raw JSON (TelemetryEvent.model_validate_json)
    "json_invalid": "invalid_json",
    "json_type": "invalid_json",
    "model_type": "not_an_object",
    "model_attributes_type": "not_an_object",
}


def _reason(error_type: str) -> str:
    if error_type in _REASON_BY_PYDANTIC_TYPE:
        return _REASON_BY_PYDANTIC_TYPE[error_type]
    # *_type, *_parsing and anything else pydantic may add: the value is not of the field's type
    return "wrong_type"


def field_errors(exc: ValidationError) -> list[FieldError]:
    """Field-level reasons for a rejected event, in pydantic's order."""
    return [
        FieldError(
            field=".".join(str(part) for part in err["loc"]) or "<event>",
            reason=_reason(err["type"]),
            message=err["msg"],
        )
        for err in exc.errors()
    ]


def validate_event(payload: Mapping[str, Any]) -> BaseModel:
    """Parse and validate one event; raises pydantic.ValidationError with field-level errors."""
    return TelemetryEvent.model_validate(payload)


def event_to_json_dict(event: BaseModel) -> dict[str, Any]:
    """The event as JSON-ready values (event_time as ISO-8601 with 'Z')."""
    return event.model_dump(mode="json")


def event_to_json(event: BaseModel) -> str:
    """The canonical compact JSON encoding of an event (what goes on the stream)."""
    return json.dumps(event_to_json_dict(event), separators=(",", ":"))


def arrow_schema() -> pa.Schema:
    """The event as an Arrow schema (Parquet files of the `events` table use it)."""
    return pa.schema(
        [
            pa.field(
                f.name,
                arrow_type(f.kind),
                nullable=not f.required,
                metadata={"description": f.description, "unit": f.unit or ""},
            )
            for f in EVENT_FIELDS
        ]
    )


def glue_columns() -> list[dict[str, str]]:
    """The event as Glue/Athena columns (Hive types), in declaration order."""
    return [
        {"Name": f.name, "Type": hive_type(f.kind), "Comment": _comment(f)} for f in EVENT_FIELDS
    ]


def _comment(spec: FieldSpec) -> str:
    unit = f" [{spec.unit}]" if spec.unit else ""
    return f"{spec.description}{unit}"[:255]


def json_schema() -> dict[str, Any]:
    """The event as a JSON Schema (draft 2020-12)."""
    properties: dict[str, Any] = {}
    for f in EVENT_FIELDS:
        prop: dict[str, Any] = dict(_JSON_TYPES[f.kind])
        prop["description"] = f.description
        if f.unit:
            prop["x-unit"] = f.unit
        if f.allowed_values is not None:
            prop["enum"] = list(f.allowed_values)
        if f.minimum is not None:
            prop["minimum"] = f.minimum
        if f.maximum is not None:
            prop["maximum"] = f.maximum
        if f.max_length is not None:
            prop["minLength"] = 1
            prop["maxLength"] = f.max_length
        if not f.required:
            prop = {"anyOf": [prop, {"type": "null"}], "description": f.description}
        properties[f.name] = prop
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://signal-stream.dev/schemas/telemetry-event/v{SCHEMA_VERSION}.json",
        "title": "TelemetryEvent",
        "type": "object",
        "properties": properties,
        "required": [f.name for f in EVENT_FIELDS if f.required],
        "additionalProperties": False,
    }
