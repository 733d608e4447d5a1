"""The pipeline config reference, docs/config.md, written from the schema: `python -m nightshard_dev.config_reference`.

A test fails when the page and the schema differ.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nightshard.config.pipeline_config import pipeline_schema


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


CONFIG_PAGE = Path(__file__).resolve().parents[2] / "docs" / "config.md"
PAGE_INTRO = """# Pipeline config reference

Every key of a pipeline config (`dags/pipelines/<name>.yaml`), its type, default and meaning.
Generated from the schema by `python -m nightshard_dev.config_reference`; a test keeps it current.
A minimal config and how a config becomes a DAG: README's "Adding a pipeline".

"""


def render_page() -> str:
    return PAGE_INTRO + render_reference()


if __name__ == "__main__":
    CONFIG_PAGE.write_text(render_page())
