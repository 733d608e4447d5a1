"""Strict validation of a rendered object against a vendored CustomResourceDefinition, offline.

What the API server does on create for a CRD's structural schema: unknown fields rejected (no
pruning), types, enums, required, patterns, bounds, int-or-string, and every x-kubernetes-validations
CEL rule evaluated with cel-python. Transition rules (those reading oldSelf) only apply to updates
and are skipped. ObjectMeta is the API server's own business and is not checked here.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import celpy
import re2  # Kubernetes patterns are RE2 (Go) syntax, e.g. a (?i) flag mid-pattern
import yaml

CRD_ROOT = Path(__file__).with_name("kueue_crds")
KUEUE_VERSIONS = ("v0.13.4", "v0.19.2")


@cache
def crd_schemas(kueue_version: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema of every served version of the vendored CRDs."""
    schemas = {}
    for path in sorted((CRD_ROOT / kueue_version).glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                schemas[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return schemas


@cache
def _program(rule: str) -> Any:
    environment = celpy.Environment()
    return environment.program(environment.compile(rule))


def validate_object(document: dict[str, Any], kueue_version: str) -> list[str]:
    """Every way `document` breaks its CRD, as `path: problem` lines; empty when it would be accepted."""
    key = (document.get("apiVersion"), document.get("kind"))
    schema = crd_schemas(kueue_version).get(key)
    if schema is None:
        return [f"{key[0]} {key[1]} is not served by Kueue {kueue_version}"]
    errors: list[str] = []
    body = {k: v for k, v in document.items() if k != "metadata"}
    schema = {**schema, "properties": {k: v for k, v in schema.get("properties", {}).items() if k != "metadata"}}
    _check(body, schema, "", errors)
    return errors


def _type_ok(value: Any, schema: dict[str, Any]) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    expected = schema.get("type")
    return {
        None: True,
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
    }[expected]


def _check(value: Any, schema: dict[str, Any], path: str, errors: list[str]) -> None:
    where = path or "<root>"
    if not _type_ok(value, schema):
        errors.append(f"{where}: {value!r} is not of type {schema.get('type') or 'int-or-string'}")
        return
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str):
        if "pattern" in schema and not re2.search(schema["pattern"], value):
            errors.append(f"{where}: {value!r} does not match {schema['pattern']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{where}: longer than {schema['maxLength']}")
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(f"{where}: shorter than {schema['minLength']}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: {value} < minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: {value} > maximum {schema['maximum']}")
    for option in ("anyOf", "oneOf"):
        if option in schema:
            matches = sum(1 for sub in schema[option] if not _sub_errors(value, sub, path))
            if not matches or (option == "oneOf" and matches > 1):
                errors.append(f"{where}: {value!r} matches none of {option}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{where}: required field {name!r} is missing")
        for name, child in value.items():
            child_path = f"{path}.{name}" if path else name
            if name in properties:
                _check(child, properties[name], child_path, errors)
            elif isinstance(schema.get("additionalProperties"), dict):
                _check(child, schema["additionalProperties"], child_path, errors)
            elif not schema.get("x-kubernetes-preserve-unknown-fields") and schema.get("additionalProperties") is not True:
                errors.append(f"{child_path}: unknown field (the API server rejects it in strict mode)")
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            errors.append(f"{where}: more than {schema['maxProperties']} properties")
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{where}: more than {schema['maxItems']} items")
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(f"{where}: fewer than {schema['minItems']} items")
        for index, item in enumerate(value):
            _check(item, schema.get("items", {}), f"{path}[{index}]", errors)
    for validation in schema.get("x-kubernetes-validations", []):
        rule = validation["rule"]
        if "oldSelf" in rule:
            continue  # a transition rule: only evaluated on update
        try:
            accepted = _program(rule).evaluate({"self": celpy.json_to_cel(value)})
        except Exception as error:  # noqa: BLE001 (a rule that cannot run is reported, not hidden)
            errors.append(f"{where}: CEL rule {rule!r} could not be evaluated: {error}")
            continue
        if not bool(accepted):
            errors.append(f"{where}: {validation.get('message') or rule}")


def _sub_errors(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    errors: list[str] = []
    _check(value, schema, path, errors)
    return errors
