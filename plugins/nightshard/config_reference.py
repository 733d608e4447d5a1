"""Prints the pipeline config reference (markdown) from the schema: `python -m nightshard.config_reference`.

README's config reference is this output; a test fails when the two differ.
"""

from __future__ import annotations

import json
from typing import Any

from nightshard.config import pipeline_schema


def reference_rows(schema: dict[str, Any], prefix: str = "") -> list[str]:
    rows = []
    required = set(schema.get("required", []))
    for name, child in schema.get("properties", {}).items():
        field = f"{prefix}{name}"
        if child.get("type") == "object" and "properties" in child:
            rows.append(f"| `{field}` | section | | {child.get('description', '')} |")
            rows.extend(reference_rows(child, f"{field}."))
            continue
        kind = " / ".join(f"`{v}`" for v in child["enum"]) if "enum" in child else _type_of(child)
        default = "**required**" if name in required else (
            f"`{json.dumps(child['default'])}`" if "default" in child else "")
        rows.append(f"| `{field}` | {kind} | {default} | {child.get('description', '')} |")
    return rows


def render_reference() -> str:
    lines = ["| field | type | default | meaning |", "|---|---|---|---|", *reference_rows(pipeline_schema())]
    return "\n".join(lines) + "\n"


def _type_of(schema: dict[str, Any]) -> str:
    kind = schema.get("type", "any")
    return " or ".join(kind) if isinstance(kind, list) else kind


if __name__ == "__main__":
    print(render_reference(), end="")
