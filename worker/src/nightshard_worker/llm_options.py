"""The `llm` handler's options, parsed and checked without torch (the plan task runs this too).

    model:
      handler: llm
      options:
        task: classify                 # or generate
        prompt: "Review: {review}\nIs this review positive or negative?"
        labels: [positive, negative]   # classify only: the fixed label set
        system: "You label reviews."   # optional system message for the chat template
        answer_prefix: "This review is"  # optional: the answer starts so; labels are scored after it
        calibrate: true                # classify: divide out the labels' prior on a content-free row
        max_new_tokens: 32             # generate only
        stop: ["\n\n"]                 # generate only: the answer ends before the first stop string
        over_context: quarantine       # or truncate: cut the prompt's column text to fit, row marked
        context_length: 2048           # optional, at most the model's own context
        kv_tokens: 16384               # KV cache a GPU holds beside its layers when the model is split
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nightshard_worker.prompt_template import PromptTemplate, TemplateError

TASKS = ("classify", "generate")
OVER_CONTEXT = ("quarantine", "truncate")
DEFAULT_MAX_NEW_TOKENS = 32  # a label, a field or a sentence; summaries set more on purpose
KNOWN_OPTIONS = {"task", "prompt", "labels", "system", "answer_prefix", "calibrate", "max_new_tokens", "stop", "over_context",
                 "context_length", "chat_template", "kv_tokens"}


class LlmOptionsError(ValueError):
    """model.options of an llm pipeline that cannot work; the message names the option."""


@dataclass(frozen=True)
class LlmOptions:
    task: str
    prompt: PromptTemplate
    labels: tuple[str, ...] = ()
    system: str | None = None
    answer_prefix: str = ""
    # Small models favour one label whatever the row says; scoring the template with empty columns
    # measures that prior once, and dividing it out ("contextual calibration", Zhao et al. 2021)
    # leaves what the row itself changes.
    calibrate: bool = False
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    stop: tuple[str, ...] = ()
    over_context: str = "quarantine"
    context_length: int | None = None
    chat_template: bool = True  # apply the model's chat template around the rendered prompt
    kv_tokens: int = 16384  # the KV cache planned per device when split: runtime.max_batch_tokens' default

    @property
    def new_tokens(self) -> int:
        """Tokens generated per row: what the KV cache holds beyond the prompt (none for classify)."""
        return self.max_new_tokens if self.task == "generate" else 0


def parse_llm_options(options: dict[str, Any] | None) -> LlmOptions:
    options = dict(options or {})
    unknown = sorted(set(options) - KNOWN_OPTIONS)
    if unknown:
        raise LlmOptionsError(f"llm handler: unknown model.options {unknown}; known: {sorted(KNOWN_OPTIONS)}")
    task = options.get("task")
    if task not in TASKS:
        raise LlmOptionsError(f"llm handler needs model.options.task, one of {list(TASKS)}; got {task!r}")
    try:
        prompt = PromptTemplate.parse(options.get("prompt"))
    except TemplateError as error:
        raise LlmOptionsError(str(error)) from None
    labels = tuple(options.get("labels") or ())
    if task == "classify":
        if len(labels) < 2 or not all(isinstance(label, str) and label.strip() for label in labels):
            raise LlmOptionsError("llm classify needs model.options.labels: at least two non-empty strings")
        if len(set(labels)) != len(labels):
            raise LlmOptionsError(f"llm classify: model.options.labels repeats a label: {list(labels)}")
    elif labels or options.get("calibrate"):
        raise LlmOptionsError("model.options.labels and calibrate are for task classify; generate writes free text")
    max_new_tokens = options.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS)
    if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) or max_new_tokens < 1:
        raise LlmOptionsError(f"model.options.max_new_tokens must be an integer >= 1, got {max_new_tokens!r}")
    stop = options.get("stop") or ()
    stop = (stop,) if isinstance(stop, str) else tuple(stop)
    if not all(isinstance(item, str) and item for item in stop):
        raise LlmOptionsError(f"model.options.stop must be non-empty strings, got {list(stop)}")
    over_context = options.get("over_context", "quarantine")
    if over_context not in OVER_CONTEXT:
        raise LlmOptionsError(f"model.options.over_context must be one of {list(OVER_CONTEXT)}, got {over_context!r}")
    context_length = options.get("context_length")
    if context_length is not None and (not isinstance(context_length, int) or context_length < 8):
        raise LlmOptionsError(f"model.options.context_length must be an integer >= 8, got {context_length!r}")
    answer_prefix = options.get("answer_prefix") or ""
    if not isinstance(answer_prefix, str):
        raise LlmOptionsError(f"model.options.answer_prefix must be a string, got {answer_prefix!r}")
    return LlmOptions(task=task, prompt=prompt, labels=labels, system=options.get("system"),
                      answer_prefix=answer_prefix, calibrate=bool(options.get("calibrate", False)),
                      max_new_tokens=max_new_tokens, stop=stop, over_context=over_context,
                      context_length=context_length, chat_template=bool(options.get("chat_template", True)),
                      kv_tokens=int(options.get("kv_tokens") or 16384))
