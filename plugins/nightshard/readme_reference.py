"""Keeps README's config reference equal to the schema: `python -m nightshard.readme_reference`."""

from __future__ import annotations

from pathlib import Path

from nightshard.config_reference import render_reference

README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"


def with_reference(readme: str) -> str:
    before, rest = readme.split(START, 1)
    _, after = rest.split(END, 1)
    return f"{before}{START}\n{render_reference()}{END}{after}"


if __name__ == "__main__":
    README.write_text(with_reference(README.read_text()))
