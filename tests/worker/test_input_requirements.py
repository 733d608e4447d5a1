"""Which input columns a model needs, from its options: one torch-free rule per handler, asked by the
handler and by the plan task alike."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import pytest

from nightshard_worker.contract import ModelSpec
from nightshard_worker.input_requirements import COLUMN_RULES, RequirementError, required_columns

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


def test_the_plan_side_asks_the_rules_without_importing_torch():
    probe = f"""
import json, sys
import nightshard.steps.plan as plan
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
