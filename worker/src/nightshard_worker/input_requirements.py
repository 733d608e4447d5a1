"""What input columns each handler needs, and whether a file's columns meet them, torch-free.

The DAG's `plan` task checks every Parquet footer of a partition with `schema_problem` before any pod
starts, and the worker checks each file again with it when it opens it: one source of truth, no torch
import on the Airflow side.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from nightshard_worker.contract import ModelSpec
from nightshard_worker.llm_options import LlmOptionsError, parse_llm_options

# Column kinds, matched against Arrow types by `arrow_type_matches_kind`.
NUMERIC = "numeric"
STRING = "string"
BINARY = "binary"
ANY = "any"

KINDS = (NUMERIC, STRING, BINARY, ANY)


class RequirementError(ValueError):
    """The model spec does not say which columns it needs."""


# A column rule: which input columns a handler reads, of which kind, from which model options. One per
# built-in handler, registered by name below; the handler's __init__ (`ModelHandler.column_rule`) and the
# plan task (`required_columns`, no torch) both ask it, so a new handler adds a rule, not a branch.
ColumnRule = Callable[[dict[str, Any]], dict[str, str]]


def tabular_columns(options: dict[str, Any]) -> dict[str, str]:
    """`feature_columns`: the numeric columns, in feature order."""
    features = options.get("feature_columns") or []
    if not features:
        raise RequirementError("tabular handler needs model.options.feature_columns (a list of column names)")
    return {name: NUMERIC for name in features}


def text_embedding_columns(options: dict[str, Any]) -> dict[str, str]:
    """`text_column`: the one string column."""
    return {_column_option(options, "text_column", "text_embedding"): STRING}


def image_classification_columns(options: dict[str, Any]) -> dict[str, str]:
    """`image_column`: the one column of encoded image bytes."""
    return {_column_option(options, "image_column", "image_classification"): BINARY}


def llm_columns(options: dict[str, Any]) -> dict[str, str]:
    """The columns the prompt template names; a value of any type is rendered as text."""
    try:
        return {column: ANY for column in parse_llm_options(options).prompt.columns}
    except LlmOptionsError as error:
        raise RequirementError(str(error)) from None


def declared_columns(options: dict[str, Any]) -> dict[str, str]:
    """A user handler ("package.module:Class") declares its columns in the config, so the plan can
    check them without importing the handler (and torch) inside Airflow."""
    declared = options.get("required_columns") or {}
    unknown = {kind for kind in declared.values() if kind not in KINDS}
    if unknown:
        raise RequirementError(
            f"model.options.required_columns uses unknown kinds {sorted(unknown)}; use {list(KINDS)}"
        )
    return dict(declared)


COLUMN_RULES: dict[str, ColumnRule] = {
    "tabular": tabular_columns,
    "text_embedding": text_embedding_columns,
    "image_classification": image_classification_columns,
    "llm": llm_columns,
}


def required_columns(model: ModelSpec) -> dict[str, str]:
    """Column name -> kind that the model's handler reads, in the order it reads them."""
    rule = COLUMN_RULES.get(model.handler, declared_columns)
    return rule(dict(model.options or {}))


def arrow_type_matches_kind(arrow_type_name: str, kind: str) -> bool:
    """True when an Arrow type (as `str(pa_type)`) can be read as the given column kind."""
    name = arrow_type_name.lower()
    if kind == ANY:
        return True
    if kind == NUMERIC:
        return name.startswith(("int", "uint", "float", "double", "halffloat", "decimal", "bool"))
    if kind == STRING:
        return name in ("string", "large_string", "utf8", "large_utf8", "string_view")
    if kind == BINARY:
        return name in ("binary", "large_binary", "binary_view") or name.startswith("fixed_size_binary")
    raise RequirementError(f"unknown column kind {kind!r}")


def schema_problem(columns: Mapping[str, str], required: Mapping[str, str], id_column: str) -> str | None:
    """Why a file with `columns` (name -> Arrow type string) cannot be scored by a model reading `required`
    (name -> kind) and `id_column`: the first column missing or of the wrong kind, what the model needs and
    what the file has. None when the file fits. The caller adds which file, and what to do."""
    needed = {id_column: ANY, **required}
    for column, kind in needed.items():
        if column not in columns:
            listed = ", ".join(f"{name} ({'the id column, input.id_column' if name == id_column else need})"
                               for name, need in needed.items())
            return f"column '{column}' is missing; the model needs {listed}. Found: {', '.join(columns) or 'none'}"
        if not arrow_type_matches_kind(columns[column], kind):
            return f"column '{column}' has type {columns[column]}, the model needs a {kind} column"
    return None


def _column_option(options: dict[str, Any], key: str, handler: str) -> str:
    value = options.get(key)
    if not value or not isinstance(value, str):
        raise RequirementError(f"{handler} handler needs model.options.{key} (a column name)")
    return value
