"""Which input columns a model needs, from its options, and whether a file's columns meet them: torch-free
rules asked by the worker and by the plan task alike."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import pytest

from nightshard_worker.contract import ModelSpec
from nightshard_worker.input_requirements import (
    COLUMN_RULES,
    RequirementError,
    required_columns,
    schema_problem,
)

PROMPT = {"task": "classify", "prompt": "{title}: {review}", "labels": ["positive", "negative"]}


@pytest.mark.parametrize("handler, options, expected", [
    ("tabular", {"feature_columns": ["f0", "f1"]}, {"f0": "numeric", "f1": "numeric"}),
    ("text_embedding", {"text_column": "body", "max_length": 64}, {"body": "string"}),
    ("image_classification", {"image_column": "jpeg"}, {"jpeg": "binary"}),
    ("llm", PROMPT, {"title": "any", "review": "any"}),
    ("mypackage.handlers:Mine", {"required_columns": {"a": "numeric", "b": "any"}}, {"a": "numeric", "b": "any"}),
    ("mypackage.handlers:Mine", {}, {}),
])
def test_each_handler_needs_the_columns_its_options_name_in_read_order(handler, options, expected):
    columns = required_columns(ModelSpec(handler=handler, version="1", options=options))
    assert columns == expected and list(columns) == list(expected)


@pytest.mark.parametrize("handler, options, message", [
    ("tabular", {}, "tabular handler needs model.options.feature_columns"),
    ("text_embedding", {"text_column": ""}, "text_embedding handler needs model.options.text_column"),
    ("image_classification", {"image_column": 3}, "image_classification handler needs model.options.image_column"),
    ("llm", {**PROMPT, "prompt": "{review:10}"}, "not a column reference"),
    ("mypackage.handlers:Mine", {"required_columns": {"a": "float"}}, "unknown kinds"),
])
def test_options_that_name_no_usable_column_say_which_option_to_set(handler, options, message):
    with pytest.raises(RequirementError, match=message):
        required_columns(ModelSpec(handler=handler, version="1", options=options))


def test_every_built_in_handler_reads_its_columns_through_the_rule_the_plan_asks():
    from nightshard_worker.handlers import BUILTIN_HANDLERS

    assert set(COLUMN_RULES) == set(BUILTIN_HANDLERS)
    for name, reference in BUILTIN_HANDLERS.items():
        module_name, class_name = reference.split(":")
        handler = getattr(importlib.import_module(module_name), class_name)
        assert handler.column_rule is COLUMN_RULES[name], name


def test_a_handler_refuses_options_its_rule_refuses_as_bad_input():
    import torch

    from nightshard_worker.errors import BadInputError
    from nightshard_worker.handlers.tabular import TabularHandler

    with pytest.raises(BadInputError, match="tabular handler needs model.options.feature_columns"):
        TabularHandler(model_spec=ModelSpec(handler="tabular", version="1", artifact="unused.pt"),
                       device=torch.device("cpu"), precision="fp32")


FILE = {"id": "int64", "title": "large_string", "score": "float", "photo": "binary", "flag": "bool"}


@pytest.mark.parametrize("required, problem", [
    ({"score": "numeric", "flag": "numeric", "title": "string", "photo": "binary"}, None),
    ({"title": "any", "photo": "any"}, None),  # any type is read as text
    ({}, None),  # extra columns, in any order, are no problem
    ({"score": "numeric", "body": "string"},
     "column 'body' is missing; the model needs id (the id column, input.id_column), score (numeric), "
     "body (string). Found: id, title, score, photo, flag"),
    ({"title": "numeric"}, "column 'title' has type large_string, the model needs a numeric column"),
    ({"photo": "string"}, "column 'photo' has type binary, the model needs a string column"),
    ({"score": "binary", "missing": "numeric"}, "column 'score' has type float, the model needs a binary column"),
])
def test_schema_problem_names_the_first_column_missing_or_of_the_wrong_kind(required, problem):
    assert schema_problem(FILE, required, "id") == problem


def test_schema_problem_names_a_missing_id_column_as_the_id_column():
    problem = schema_problem({"x": "double"}, {"x": "numeric"}, "customer_id")
    assert problem == ("column 'customer_id' is missing; the model needs customer_id (the id column, "
                       "input.id_column), x (numeric). Found: x")


def test_the_plan_side_asks_the_rules_without_importing_torch():
    probe = f"""
import json, sys
import nightshard.planning.plan_task as plan
from nightshard_worker.contract import ModelSpec
for handler, options in {json.dumps([[name, options] for name, options in [
        ("tabular", {"feature_columns": ["f0"]}), ("text_embedding", {"text_column": "t"}),
        ("image_classification", {"image_column": "i"}), ("llm", PROMPT)]])}:
    plan.required_columns(ModelSpec(handler=handler, version="1", options=options))
print(json.dumps([m for m in ("torch", "transformers") if m in sys.modules]))
"""
    output = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            env={**os.environ}).stdout
    assert json.loads(output.strip().splitlines()[-1]) == []
