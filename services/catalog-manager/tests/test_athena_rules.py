"""Athena's rules for execution parameters, checked on every SQL text the catalog gives Athena.

The catalog manager sends Athena two kinds of SQL, neither with parameters: `validate`'s smoke
query (AthenaSmokeEngine.smoke, StartQueryExecution without ExecutionParameters) and the
per-minute views (stored in Glue as Presto view text, which Athena runs when the view is read).
So each must be one statement of Athena's (Trino) dialect, parsed with sqlglot, without a `?`:
Amazon Athena User Guide, "Use parameterized queries", Considerations and limitations
(https://docs.aws.amazon.com/athena/latest/ug/querying-with-prepared-statements.html):
"Currently, ? parameters can be placed only in the WHERE clause. Syntax like SELECT ? FROM
table is not supported."; "Question mark parameters cannot be placed in double or single quotes";
"parameterized queries are supported only for SELECT, INSERT INTO, CTAS, and UNLOAD statements"
(a view's DDL is none of them); and a `?` with no value sent is unbound. Amazon Athena API
Reference, StartQueryExecution: QueryString is 1-262144 characters.

The SQL is found in the code: every function of signal_catalog whose body writes text starting
with a SQL keyword. Each must be called here, or be named as never reaching Athena (with why).
"""

from __future__ import annotations

import ast
import base64
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

import signal_catalog
from signal_catalog.adapters.query import smoke_query
from signal_catalog.core.views import kpi_views, view_name, view_table_input
from signal_common.lake import ALL_TABLES

MAX_QUERY_CHARS = 262_144
_SQL_START = re.compile(r"\s*(SELECT|WITH|CREATE|INSERT|ALTER|DROP|MSCK|SHOW|DESCRIBE|UNLOAD)\b")


def violations(sql: str) -> list[str]:
    """What in `sql`, sent to Athena without parameters, breaks its documented rules."""
    try:
        statements = sqlglot.parse(sql, read="trino")
    except sqlglot.ParseError as exc:
        return [f"not Trino SQL: {exc}"]
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        return [f"not one SELECT statement: {len(statements)} statements"]
    problems = [f"not parsed by sqlglot: {c.sql()}" for c in statements[0].find_all(exp.Command)]
    problems += [
        f"parameter {p.sql(dialect='trino')} with no value sent"
        for p in statements[0].find_all(exp.Placeholder, exp.Parameter)
    ]
    if "?" in sql:
        problems.append("'?' in the text (a parameter, or one in quotes)")
    if not 1 <= len(sql) <= MAX_QUERY_CHARS:
        problems.append(f"{len(sql)} characters (1-{MAX_QUERY_CHARS})")
    return problems


def _presto_view_sql(table_input: dict[str, object]) -> str:
    """The SQL Athena runs for a view: originalSql of the base64 JSON in ViewOriginalText."""
    text = str(table_input["ViewOriginalText"])
    encoded = text.removeprefix("/* Presto View: ").removesuffix(" */")
    return str(json.loads(base64.b64decode(encoded))["originalSql"])


def sql_writers() -> set[str]:
    """`module:qualified.name` of every function in signal_catalog that writes SQL text."""
    root = Path(signal_catalog.__file__).parent
    found = set()
    for path in sorted(root.rglob("*.py")):
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        found |= {f"{module}:{name}" for name in _writers(ast.parse(path.read_text()))}
    return found


def _writers(tree: ast.AST, prefix: str = "") -> set[str]:
    found = set()
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.ClassDef):
            found |= _writers(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            name = f"{prefix}{node.name}"
            if any(_SQL_START.match(text) for text in _leading_texts(node)):
                found.add(name)
            found |= _writers(node, f"{name}.")
        else:  # a def inside an if, with or try block
            found |= _writers(node, prefix)
    return found


def _leading_texts(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    """How each string and f-string in `function` (not its docstring) begins."""
    docstring = ast.get_docstring(function, clean=False)
    parts = {id(v) for n in ast.walk(function) if isinstance(n, ast.JoinedStr) for v in n.values}
    texts = []
    for node in ast.walk(function):
        if isinstance(node, ast.JoinedStr) and node.values:
            first = node.values[0]
            texts.append(first.value if isinstance(first, ast.Constant) else "")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in parts
            and node.value != docstring
        ):
            texts.append(node.value)
    return [t for t in texts if isinstance(t, str)]


# what each SQL writer gives Athena, for every table it is used with
SENT_TO_ATHENA: dict[str, Callable[[], list[str]]] = {
    "signal_catalog.adapters.query:smoke_query": lambda: (
        [smoke_query(t.name) for t in ALL_TABLES]
        + [smoke_query(view_name(t)) for t in kpi_views(list(ALL_TABLES))]
    ),
    "signal_catalog.core.views:view_sql": lambda: [
        _presto_view_sql(view_table_input(t, "mobile_network_aggregations"))
        for t in kpi_views(list(ALL_TABLES))
    ],
}
NEVER_SENT_TO_ATHENA = {
    "signal_catalog.adapters.query:DuckDBSmokeEngine.smoke": (
        "DuckDB's own view over local Parquet (read_parquet), only in the duckdb engine"
    ),
}


def test_checker_finds_what_athena_refuses() -> None:
    assert any("with no value sent" in p for p in violations("SELECT a FROM t WHERE a = ?"))
    assert any("'?' in the text" in p for p in violations("SELECT a FROM t WHERE a = '?'"))
    assert any("not one SELECT" in p for p in violations("SELECT 1; SELECT 2"))
    assert any("not one SELECT" in p for p in violations("DROP TABLE t"))
    assert any("not Trino SQL" in p for p in violations("SELECT a FROM"))
    assert violations("SELECT * FROM status_count LIMIT 10") == []


def test_discovery_finds_sql_in_code() -> None:
    writers = sql_writers()
    assert "signal_catalog.core.views:view_sql" in writers
    assert "signal_catalog.core.views:view_columns" not in writers  # expressions, not statements


def test_every_sql_writer_is_covered() -> None:
    """A new function writing SQL must say what it sends Athena, or that it sends nothing."""
    writers = sql_writers()
    covered = set(SENT_TO_ATHENA) | set(NEVER_SENT_TO_ATHENA)
    assert writers == covered, {
        "not covered here": sorted(writers - covered),
        "no longer writes SQL": sorted(covered - writers),
    }


@pytest.mark.parametrize("writer", sorted(SENT_TO_ATHENA))
def test_sql_sent_to_athena_meets_its_rules(writer: str) -> None:
    texts = SENT_TO_ATHENA[writer]()
    assert texts
    for sql in texts:
        assert violations(sql) == [], sql
