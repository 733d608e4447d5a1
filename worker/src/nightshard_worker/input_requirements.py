"""What input columns each built-in handler needs, torch-free.

The DAG's `plan` task checks a partition's Parquet schema against this before any pod starts, and the
worker checks the same table when it opens a file: one source of truth, no torch import on the
Airflow side.
"""

from __future__ import annotations

from typing import Any

from nightshard_worker.contract import ModelSpec

# Column kinds, matched against Arrow types by `arrow_type_matches_kind`.
NUMERIC = "numeric"
STRING = "string"
BINARY = "binary"
ANY = "any"

KINDS = (NUMERIC, STRING, BINARY, ANY)


class RequirementError(ValueError):
    """The model spec does not say which columns it needs."""


def required_columns(model: ModelSpec) -> dict[str, str]:
    """Column name -> kind that the model's handler reads, in the order it reads them."""
    options: dict[str, Any] = model.options or {}
    if model.handler == "tabular":
        features = options.get("feature_columns") or []
        if not features:
            raise RequirementError("tabular handler needs model.options.feature_columns (a list)")
        return {name: NUMERIC for name in features}
    if model.handler == "text_embedding":
        return {_option(options, "text_column", model.handler): STRING}
    if model.handler == "image_classification":
        return {_option(options, "image_column", model.handler): BINARY}
    if model.handler == "llm":
        # The prompt template names the columns; a value of any type is rendered as text.
        from nightshard_worker.llm_options import LlmOptionsError, parse_llm_options

        try:
            return {column: ANY for column in parse_llm_options(options).prompt.columns}
        except LlmOptionsError as error:
            raise RequirementError(str(error)) from None
    # A user handler ("package.module:Class") declares its columns in the config, so the plan can
    # check them without importing the handler (and torch) inside Airflow.
    declared = options.get("required_columns") or {}
    unknown = {kind for kind in declared.values() if kind not in KINDS}
    if unknown:
        raise RequirementError(
            f"model.options.required_columns uses unknown kinds {sorted(unknown)}; use {list(KINDS)}"
        )
    return dict(declared)


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


def _option(options: dict[str, Any], key: str, handler: str) -> str:
    value = options.get(key)
    if not value or not isinstance(value, str):
        raise RequirementError(f"{handler} handler needs model.options.{key} (a column name)")
    return value
