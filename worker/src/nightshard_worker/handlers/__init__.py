"""Handler registry: built-in names, or "package.module:Class" for a user's own handler."""

from __future__ import annotations

import importlib

from nightshard_worker.errors import BadInputError
from nightshard_worker.handlers.base import ModelHandler, PreparedRows

# Imported lazily so that a tabular shard never pays for transformers' import time.
BUILTIN_HANDLERS = {
    "tabular": "nightshard_worker.handlers.tabular:TabularHandler",
    "text_embedding": "nightshard_worker.handlers.text_embedding:TextEmbeddingHandler",
    "image_classification": "nightshard_worker.handlers.image_classification:ImageClassificationHandler",
    "llm": "nightshard_worker.handlers.llm:LlmHandler",
}

__all__ = ["BUILTIN_HANDLERS", "ModelHandler", "PreparedRows", "handler_class"]


def handler_class(name: str) -> type[ModelHandler]:
    """The handler class for a registry name or a "package.module:Class" reference."""
    reference = BUILTIN_HANDLERS.get(name, name)
    if ":" not in reference:
        raise BadInputError(
            f"model.handler {name!r} is not a built-in handler ({', '.join(BUILTIN_HANDLERS)}) "
            "nor a 'package.module:Class' reference"
        )
    module_name, class_name = reference.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise BadInputError(
            f"model.handler {name!r}: cannot import module {module_name!r} ({error}); "
            "is the package installed in the worker image?"
        ) from error
    found = getattr(module, class_name, None)
    if not (isinstance(found, type) and issubclass(found, ModelHandler)):
        raise BadInputError(
            f"model.handler {name!r}: {module_name}.{class_name} is not a ModelHandler subclass"
        )
    return found
