"""Athena's rules for execution parameters, checked on every query the API sends.

DuckDB runs every query locally and accepts `?` anywhere; Athena does not, and only AWS would
notice. So each query, as AthenaEngine sends it (the text, and the parameters in Athena's literal
syntax), is parsed with sqlglot's Trino dialect and checked against what AWS documents:

Amazon Athena User Guide, "Use parameterized queries", Considerations and limitations
(https://docs.aws.amazon.com/athena/latest/ug/querying-with-prepared-statements.html):
- "Currently, parameterized queries are supported only for SELECT, INSERT INTO, CTAS, and
  UNLOAD statements."
- "In parameterized queries, parameters are positional and are denoted by ?. Parameters are
  assigned values by their order in the query. Named parameters are not supported."
- "Currently, ? parameters can be placed only in the WHERE clause. Syntax like SELECT ? FROM
  table is not supported."
- "Question mark parameters cannot be placed in double or single quotes (that is, '?' and "?"
  are not valid syntax)."
- "For SQL execution parameters to be treated as strings, they must be enclosed in single quotes
  rather than double quotes."
- "Queries with execution parameters in the Athena console are limited to a maximum of 25
  question marks." The API sends its queries with StartQueryExecution, not the console, so this
  binds only a query an operator replays in the console: each representative query must fit.

Amazon Athena API Reference, StartQueryExecution
(https://docs.aws.amazon.com/athena/latest/APIReference/API_StartQueryExecution.html):
QueryString is 1-262144 characters; ExecutionParameters has at least 1 item (AthenaEngine omits
it for a query without parameters), each 1-1024 characters. Checked at the largest request the
API accepts (every filter at `max_filter_values` values of the longest length).

The builders are found in signal_api.core.queries itself (every public function returning a
Query); a builder this file cannot call, or an optional argument no call exercises, fails.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import typing
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from signal_api.adapters.athena_engine import athena_literal
from signal_api.core import params as request_params
from signal_api.core import queries
from signal_api.core.params import Granularity, TimeRange
from signal_api.core.queries import Param, Query
from signal_api.settings import ApiSettings

CONSOLE_MAX_QUESTION_MARKS = 25
MAX_QUERY_CHARS = 262_144
MAX_PARAMETER_CHARS = 1024
# the statements Athena takes parameters in (UNLOAD is not used, so not recognised here)
PARAMETERIZED_STATEMENTS = (exp.Query, exp.Insert)


def athena_violations(sql: str, values: Sequence[Param]) -> list[str]:
    """What in `sql` sent with the parameters `values` breaks Athena's documented rules."""
    try:
        statements = sqlglot.parse(sql, read="trino")
    except sqlglot.ParseError as exc:
        return [f"not Trino SQL: {exc}"]
    if len(statements) != 1 or statements[0] is None:
        return [f"{len(statements)} statements; StartQueryExecution runs one"]
    tree = statements[0]
    problems = [f"not parsed by sqlglot: {c.sql()}" for c in tree.find_all(exp.Command)]
    markers = list(tree.find_all(exp.Placeholder, exp.Parameter))
    named = [m for m in markers if isinstance(m, exp.Parameter) or m.this]
    problems += [f"named parameter {m.sql(dialect='trino')}" for m in named]
    if markers and not isinstance(tree, PARAMETERIZED_STATEMENTS) and not _is_ctas(tree):
        problems.append(f"parameters in a {tree.key.upper()} statement")
    for marker in markers:
        clause = _clause_of(marker)
        if clause != "where":
            context = marker.parent.sql(dialect="trino") if marker.parent else "?"
            problems.append(f"? in {clause}: {context}")
    if sql.count("?") != len(markers):
        problems.append(f"{sql.count('?') - len(markers)} '?' inside quotes or comments")
    if len(markers) != len(values):
        problems.append(f"{len(markers)} placeholders for {len(values)} parameter values")
    if not 1 <= len(sql) <= MAX_QUERY_CHARS:
        problems.append(f"query is {len(sql)} characters (1-{MAX_QUERY_CHARS})")
    return problems + [p for v in values for p in _value_violations(v)]


def _is_ctas(tree: exp.Expression) -> bool:
    return (
        isinstance(tree, exp.Create)
        and tree.kind == "TABLE"
        and isinstance(tree.expression, exp.Query)
    )


def _clause_of(marker: exp.Expression) -> str:
    """The clause of the innermost query that holds `marker` ("where", "expressions" for the
    select list, "order", "joins", "limit", ...), noting a window it sits in on the way."""
    node, window = marker, ""
    while node.parent is not None:
        if isinstance(node.parent, exp.Window):
            window = " (window)"
        if isinstance(node.parent, exp.Query):
            return node.arg_key + window
        node = node.parent
    return "no query clause"


def _value_violations(value: Param) -> list[str]:
    """A value as AthenaEngine sends it must be one Trino literal: strings single-quoted."""
    sent = athena_literal(value)
    problems = []
    if not 1 <= len(sent) <= MAX_PARAMETER_CHARS:
        problems.append(f"parameter of {len(sent)} characters (1-{MAX_PARAMETER_CHARS})")
    parsed = sqlglot.parse_one(sent, read="trino")
    if not isinstance(parsed, exp.Literal) or parsed.is_string != isinstance(value, str):
        problems.append(f"parameter {sent} is not a {type(value).__name__} literal")
    elif parsed.this != str(value):
        problems.append(f"parameter {sent} reads back as {parsed.this!r}, not {value!r}")
    return problems


# --- the checker itself: it must catch what Athena refuses and pass what it accepts ---------


@pytest.mark.parametrize(
    ("sql", "values", "expected"),
    [
        ("SELECT ? FROM t", ["x"], "? in expressions"),
        ("SELECT SUM(CASE WHEN a >= ? THEN n ELSE 0 END) FROM t", [1], "? in expressions"),
        ("SELECT element_at(m, ?) FROM t WHERE a = 1", ["k"], "? in expressions"),
        (
            "SELECT ROW_NUMBER() OVER (ORDER BY SUM(CASE WHEN s = ? THEN 1 END)) FROM t",
            ["x"],
            "? in expressions (window)",
        ),
        ("SELECT a FROM t ORDER BY a = ?", ["x"], "? in order"),
        ("SELECT a FROM t LIMIT ?", [3], "? in limit"),
        ("SELECT a FROM t JOIN u ON t.a = u.a AND u.b = ?", ["x"], "? in joins"),
        ("SELECT a FROM t GROUP BY a HAVING COUNT(*) > ?", [1], "? in having"),
        ("SELECT a FROM t WHERE a IN (SELECT ? FROM u)", ["x"], "? in expressions"),
        ("SELECT a FROM t WHERE a = '?'", [], "'?' inside quotes"),
        ('SELECT "?" FROM t WHERE a = ?', ["x"], "'?' inside quotes"),
        ("SELECT a FROM t WHERE a = :name", ["x"], "named parameter"),
        ("SELECT a FROM t WHERE a = ? AND b = ?", ["x"], "2 placeholders for 1"),
        ("SELECT a FROM t WHERE a = ?", ["x" * 1100], "parameter of 1102 characters"),
        ("SELECT a FROM t; SELECT b FROM t", [], "2 statements"),
        ("SELECT a FROM", [], "not Trino SQL"),
    ],
)
def test_checker_finds_what_athena_refuses(sql: str, values: list[Param], expected: str) -> None:
    assert any(expected in p for p in athena_violations(sql, values)), athena_violations(
        sql, values
    )


@pytest.mark.parametrize(
    ("sql", "values"),
    [
        ("SELECT 1 AS ok", []),
        ("SELECT a FROM t WHERE a IN (?, ?) AND b >= CAST(? AS TIMESTAMP)", ["x", "O'Neil", "t"]),
        ("SELECT a FROM (SELECT * FROM t WHERE dt = ? OFFSET 0) s WHERE s.h <= ?", ["d", 3]),
        ("WITH b AS (SELECT * FROM t WHERE a = ?) SELECT * FROM b WHERE b.n <= ?", ["x", 2]),
    ],
)
def test_checker_passes_what_athena_accepts(sql: str, values: list[Param]) -> None:
    assert athena_violations(sql, values) == []


# --- every builder of signal_api.core.queries, called on every branch ------------------------


@dataclasses.dataclass(frozen=True)
class Call:
    """One call of a builder."""

    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __call__(self, builder: Callable[..., Query]) -> Query:
        return builder(*self.args, **self.kwargs)


def call(*args: Any, **kwargs: Any) -> Call:
    return Call(args, kwargs)


# crosses midnight and several hours, so every partition bound differs
WINDOW = TimeRange(
    dt.datetime(2026, 11, 22, 23, 10, tzinfo=dt.UTC),
    dt.datetime(2026, 11, 23, 1, 20, tzinfo=dt.UTC),
)
OPERATORS = ("Orange", "O'Neil")

CALLS: dict[str, tuple[Call, ...]] = {
    "signal_strength": (
        call(WINDOW, Granularity.M5),
        call(
            WINDOW,
            Granularity.M1,
            operators=OPERATORS,
            network_types=("4G", "5G"),
            by_network_type=False,
            histograms=True,
        ),
    ),
    "gps_precision": (
        call(WINDOW, Granularity.M15),
        call(WINDOW, Granularity.H1, providers=("gps",)),
    ),
    "status_counts": (
        call(WINDOW, Granularity.M5),
        call(WINDOW, Granularity.D1, postal_codes=("1000", "1010"), statuses=("IN_SERVICE",)),
        call(WINDOW, Granularity.M5, top=3),
        call(WINDOW, Granularity.H1, postal_codes=("1000",), statuses=("POWER_OFF",), top=1),
    ),
    "signal_quality": (
        call(WINDOW),
        call(WINDOW, operators=OPERATORS, network_types=("3G",)),
    ),
    "coverage": (call(WINDOW), call(WINDOW, postal_codes=("1000", "1020"), histograms=True)),
    "coverage_h3": (call(WINDOW, 7), call(WINDOW, 9)),
    "cells": (call(WINDOW),),
    "latest_window": (call(WINDOW),),
    "window_totals": (call(WINDOW),),
    "pipeline": (call(WINDOW),),
    "newest_batch": (call(WINDOW),),
    "lake_state": (call(WINDOW),),
    "ping": (call(),),
}


def discovered_builders() -> dict[str, Callable[..., Query]]:
    """Every public function of signal_api.core.queries that returns a Query."""
    found = {}
    for name, function in inspect.getmembers(queries, inspect.isfunction):
        if name.startswith("_") or function.__module__ != queries.__name__:
            continue
        if typing.get_type_hints(function).get("return") is Query:
            found[name] = function
    return found


def test_every_builder_is_called_here() -> None:
    """A new builder must get its calls in CALLS (and a removed one leave it)."""
    builders = set(discovered_builders())
    assert builders >= {"signal_strength", "pipeline", "ping"}  # discovery itself works
    assert builders == set(CALLS), {
        "not called here": sorted(builders - set(CALLS)),
        "no longer builders": sorted(set(CALLS) - builders),
    }


@pytest.mark.parametrize("name", sorted(discovered_builders()))
def test_every_optional_argument_is_exercised(name: str) -> None:
    """Each optional argument takes a non-default value (a non-empty one for a sequence) in some
    call, so the branch it opens is checked too (e.g. `top=` of status_counts)."""
    builder = discovered_builders()[name]
    signature = inspect.signature(builder)
    bound = [signature.bind(*c.args, **c.kwargs) for c in CALLS.get(name, ())]
    for parameter in signature.parameters.values():
        if parameter.default is inspect.Parameter.empty:
            continue
        given = [b.arguments[parameter.name] for b in bound if parameter.name in b.arguments]
        assert any(v != parameter.default and v != () for v in given), (
            f"no call of {name} sets {parameter.name}"
        )


def representative_queries() -> list[Any]:
    """Each call of each discovered builder, as a pytest parameter named `builder-n`."""
    builders = discovered_builders()
    return [
        pytest.param(c(builders[name]), id=f"{name}-{i}")
        for name in sorted(builders)
        for i, c in enumerate(CALLS.get(name, ()))
    ]


@pytest.mark.parametrize("query", representative_queries())
def test_query_meets_athenas_parameter_rules(query: Query) -> None:
    assert athena_violations(query.sql, query.params) == [], query.sql


@pytest.mark.parametrize("query", representative_queries())
def test_representative_query_fits_the_console(query: Query) -> None:
    assert len(query.params) <= CONSOLE_MAX_QUESTION_MARKS


def _largest(c: Call, builder: Callable[..., Query]) -> Call:
    """`c` with every filter at the most values the API accepts, each as long as allowed and
    made of quotes (which athena_literal doubles)."""
    defaults = inspect.signature(request_params.filter_values).parameters
    max_length: int = defaults["max_length"].default
    max_values: int = ApiSettings.model_fields["max_filter_values"].default
    bound = inspect.signature(builder).bind(*c.args, **c.kwargs)
    for key, value in bound.arguments.items():
        if isinstance(value, tuple | list) and value and all(isinstance(v, str) for v in value):
            bound.arguments[key] = tuple(
                f"{i:02d}" + "'" * (max_length - 2) for i in range(max_values)
            )
    return Call(bound.args, bound.kwargs)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_largest_request_fits_start_query_execution(name: str) -> None:
    builder = discovered_builders()[name]
    for c in CALLS[name]:
        query = _largest(c, builder)(builder)
        assert athena_violations(query.sql, query.params) == [], query.sql


def test_inlined_literals_take_only_plain_values() -> None:
    """What queries.py splices where Athena takes no `?` refuses anything but a plain word or
    an instant, so request text could not pass through it."""
    assert queries._constant("OUT_OF_SERVICE") == "'OUT_OF_SERVICE'"
    for text in ("x' OR '1'='1", "a b", "", "née"):
        with pytest.raises(ValueError, match="not a plain constant"):
            queries._constant(text)
    moment = dt.datetime(2026, 11, 23, 1, 5, 7, 123456, tzinfo=dt.UTC)
    assert queries._timestamp(moment) == "CAST('2026-11-23 01:05:07.123' AS TIMESTAMP)"


# The functions #24's columns need, as Athena engine version 3 documents them. Athena engine v3
# "is based on Trino" and takes Trino's functions ("Functions in Amazon Athena",
# https://docs.aws.amazon.com/athena/latest/ug/functions-env3.html), and Athena has no function
# for a DataSketches HLL (its own approx_set/HyperLogLog is another format), so the API reads the
# sketches as text and unites them itself. Trino 4xx docs:
# - array_agg(x) → array<[same as input]> (https://trino.io/docs/current/functions/aggregate.html)
# - array_join(x, delimiter) → varchar: "Concatenates the elements of the given array using the
#   delimiter"; null elements are skipped without a null_replacement
#   (https://trino.io/docs/current/functions/array.html)
# - to_base64(binary) → varchar (https://trino.io/docs/current/functions/binary.html)
PARTIAL_COLUMN_FUNCTIONS = {"ArrayAgg", "ArrayToString", "ToBase64"}


@pytest.mark.parametrize(
    "query",
    [
        queries.signal_strength(WINDOW, Granularity.M1, histograms=True),
        queries.coverage(WINDOW, histograms=True),
        queries.gps_precision(WINDOW, Granularity.H1),
        queries.status_counts(WINDOW, Granularity.H1, top=2),
        queries.signal_quality(WINDOW),
    ],
    ids=lambda q: q.name,
)
def test_sketches_and_histograms_are_read_with_functions_athena_documents(query: Query) -> None:
    """Each query reading devices_hll (and signal_hist) does so with array_agg, array_join and
    to_base64 as Trino parses them, and guards each with COUNT(column) = COUNT(*) so a partial
    older than the column makes the figure unknown, not smaller."""
    tree = sqlglot.parse_one(query.sql, read="trino")
    names = {type(node).__name__ for node in tree.walk()}
    assert names >= PARTIAL_COLUMN_FUNCTIONS, PARTIAL_COLUMN_FUNCTIONS - names
    guarded = {
        column.name
        for case in tree.find_all(exp.Case)
        for eq in case.find_all(exp.EQ)
        for column in eq.find_all(exp.Column)
    }
    expected = {"devices_hll"}
    if "signal_hist" in query.sql:
        expected.add("signal_hist")
    assert expected <= guarded
    # the whole text is Trino: it round-trips through sqlglot's Trino dialect unchanged in meaning
    again = sqlglot.parse_one(tree.sql(dialect="trino"), read="trino")
    assert again == tree
