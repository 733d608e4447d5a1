"""Prompt templates over row columns: `{column}` inserts a column's value, `{{` and `}}` are braces.

Torch-free, so the DAG's `plan` task parses the same template the worker renders and names a
missing column before any pod starts. Nothing else is allowed inside braces (no format specs,
attributes or indexing): a template is data from a config file, never code.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any


class TemplateError(ValueError):
    """A template that cannot be parsed or rendered; the message names the template and the place."""


@dataclass(frozen=True)
class PromptTemplate:
    text: str
    columns: tuple[str, ...]  # each column the template names, in first-use order
    _parts: tuple[tuple[str, str | None], ...]  # (literal text, column or None)

    @classmethod
    def parse(cls, text: str) -> PromptTemplate:
        if not isinstance(text, str) or not text.strip():
            raise TemplateError("model.options.prompt must be a non-empty template string, e.g. 'Review: {text}'")
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as error:
            raise TemplateError(f"prompt template {text!r}: {error}; write a literal brace as {{{{ or }}}}") from None
        parts, columns = [], []
        for literal, name, spec, conversion in parsed:
            if name is not None:
                if not name.isidentifier() or spec or conversion:
                    shown = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
                    raise TemplateError(
                        f"prompt template {text!r}: {{{shown}}} is not a column reference; use {{column_name}} "
                        "(letters, digits, underscores), and {{{{ }}}} for literal braces"
                    )
                if name not in columns:
                    columns.append(name)
            parts.append((literal, name))
        if not columns:
            raise TemplateError(f"prompt template {text!r} names no column; use {{column_name}} to insert one")
        return cls(text=text, columns=tuple(columns), _parts=tuple(parts))

    def render(self, row: dict[str, Any]) -> str:
        """The prompt for one row; a null value is a TemplateError naming the column."""
        pieces = []
        for literal, name in self._parts:
            pieces.append(literal)
            if name is not None:
                value = row[name]
                if value is None:
                    raise TemplateError(f"column {name!r} is null")
                pieces.append(value if isinstance(value, str) else str(value))
        return "".join(pieces)
