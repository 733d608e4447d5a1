"""The `llm` handler with real weights (SmolLM2-135M-Instruct, GGUF, loaded once per module) and its
torch-free parts: prompt templates, options, token-budget batches (its columns: test_input_requirements.py)."""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
import pytest
import torch

from nightshard_worker.batching import plan_batches
from nightshard_worker.contract import ModelSpec, RuntimeSpec
from nightshard_worker.llm_options import LlmOptionsError, parse_llm_options
from nightshard_worker.metrics import StageClock, WorkerMetrics
from nightshard_worker.prompt_template import PromptTemplate, TemplateError

POSITIVE = ["I loved it, great product", "Works perfectly, very happy with it", "Excellent quality, would buy again",
            "Fantastic, exceeded my expectations"]
NEGATIVE = ["Terrible, it broke after a day", "Waste of money, awful", "Very disappointed, poor quality",
            "Horrible experience, do not buy"]
SENTIMENT = {"task": "classify", "prompt": "Is this review positive or negative?\nReview: {review}",
             "labels": ["positive", "negative"], "context_length": 96}


# -- torch-free: templates and options ---------------------------------------------------------------

@pytest.mark.parametrize("text, row, expected", [
    ("Review: {review}", {"review": "good"}, "Review: good"),
    ("{title} / {body} / {title}", {"title": "T", "body": "B"}, "T / B / T"),
    ("json {{\"stars\": {stars}}}", {"stars": 4}, 'json {"stars": 4}'),
])
def test_prompt_template_inserts_columns_and_keeps_escaped_braces(text, row, expected):
    template = PromptTemplate.parse(text)
    assert template.render(row) == expected
    assert template.columns == tuple(dict.fromkeys(name for name in row))


@pytest.mark.parametrize("text, message", [
    ("no column here", "names no column"),
    ("{review!r}", "not a column reference"),
    ("{review:>10}", "not a column reference"),
    ("{row.review}", "not a column reference"),
    ("{review", "literal brace"),
    ("", "non-empty template"),
])
def test_prompt_template_rejects_what_is_not_a_plain_column(text, message):
    with pytest.raises(TemplateError, match=message):
        PromptTemplate.parse(text)


def test_prompt_template_null_value_names_the_column():
    with pytest.raises(TemplateError, match="column 'body' is null"):
        PromptTemplate.parse("{title}: {body}").render({"title": "x", "body": None})


@pytest.mark.parametrize("options, message", [
    ({"prompt": "{a}"}, "task"),
    ({"task": "classify", "prompt": "{a}", "labels": ["only"]}, "at least two"),
    ({"task": "classify", "prompt": "{a}", "labels": ["x", "x"]}, "repeats"),
    ({"task": "generate", "prompt": "{a}", "labels": ["x", "y"]}, "are for task classify"),
    ({"task": "generate", "prompt": "{a}", "max_new_tokens": 0}, "max_new_tokens"),
    ({"task": "generate", "prompt": "{a}", "over_context": "cut"}, "over_context"),
    ({"task": "generate", "prompt": "{a}", "temperature": 0.7}, "unknown model.options"),
])
def test_llm_options_name_the_option_that_is_wrong(options, message):
    with pytest.raises(LlmOptionsError, match=message):
        parse_llm_options(options)


# -- the model ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def score():
    """score(options, table, **runtime) -> (outputs per good row, good rows, bad rows, batches)."""
    from nightshard_worker.batch_scorer import BatchScorer
    from nightshard_worker.handlers.llm import LlmHandler

    torch.set_num_threads(2)

    def run(options, table, batch_size=4, max_batch_tokens=4096, handler_hook=None):
        handler = LlmHandler(model_spec=ModelSpec(handler="llm", version="smollm2", options=options),
                             device=torch.device("cpu"), precision="fp32")
        if handler_hook:
            handler_hook(handler)
        metrics = WorkerMetrics()
        scorer = BatchScorer(handler=handler, runtime=RuntimeSpec(batch_size=batch_size, max_batch_tokens=max_batch_tokens),
                             device=torch.device("cpu"), metrics=metrics, clock=StageClock(metrics), stop=threading.Event())
        prepared = handler.preprocess(table)
        outputs = scorer.score(prepared, "test step")
        arrays = dict(zip([f.name for f in handler.output_fields], handler.to_arrow(outputs)))
        columns = {name: array.to_pylist() for name, array in arrays.items()}
        batches = plan_batches(prepared.good_count, batch_size, prepared.lengths, max_batch_tokens)
        return columns, prepared, batches, scorer

    return run


def test_classify_labels_reviews_with_probabilities_quarantines_and_reruns_identically(score):
    reviews = POSITIVE + NEGATIVE + [None, "so long " * 60]
    table = pa.table({"review": pa.array(reviews)})

    outputs, prepared, _, _ = score(SENTIMENT, table)
    rerun, _, _, _ = score(SENTIMENT, table)
    other_batches, _, _, _ = score(SENTIMENT, table, batch_size=3)

    assert outputs["answer"] == ["positive"] * 4 + ["negative"] * 4
    assert rerun == outputs
    assert other_batches["answer"] == outputs["answer"]
    probabilities = np.array(outputs["label_probabilities"])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert (probabilities.max(axis=1) > 0.5).all()
    assert outputs["finish_reason"] == ["label"] * 8 and outputs["output_tokens"] == [0] * 8
    assert all(30 < tokens < 60 for tokens in outputs["input_tokens"])  # chat template + review
    assert prepared.bad_rows[8] == "column 'review' is null"
    assert prepared.bad_rows[9].startswith("prompt is ") and "over the context of 96 tokens" in prepared.bad_rows[9]

    # Multi-token labels: each label's tokens scored after the prompt, still one forward pass per batch.
    worded, _, _, _ = score({**SENTIMENT, "labels": ["very good", "very bad"]}, table)
    assert worded["answer"] == ["very good"] * 4 + ["very bad"] * 4


def test_generate_is_greedy_stops_on_stop_strings_reports_finish_and_splits_on_oom(score):
    reviews = POSITIVE[:2] + NEGATIVE[:2] + ["long review " * 40]
    table = pa.table({"review": pa.array(reviews)})
    options = {"task": "generate", "prompt": "Is this review positive or negative? Review: {review}",
               "max_new_tokens": 6, "stop": [" is"], "context_length": 80, "over_context": "truncate"}

    outputs, prepared, batches, _ = score(options, table)
    assert not prepared.bad_rows
    assert outputs["prompt_truncated"] == [False] * 4 + [True]
    assert outputs["input_tokens"][4] <= 80 - 6
    assert set(outputs["finish_reason"]) <= {"stop", "eos", "length"}
    for answer, reason, tokens in zip(outputs["answer"], outputs["finish_reason"], outputs["output_tokens"]):
        assert 1 <= tokens <= 6
        assert " is" not in answer  # the answer ends before the stop string
        if reason == "length":
            assert tokens == 6
    assert "stop" in outputs["finish_reason"]

    unstopped, _, _, _ = score({**options, "stop": [], "max_new_tokens": 3}, table)
    assert unstopped["finish_reason"] == ["length"] * 5 and unstopped["output_tokens"] == [3] * 5

    # A batch over two rows runs out of memory: halved, and the answers are the same.
    def fail_big_batches(handler):
        predict = handler.predict

        def predict_or_oom(batch):
            if len(batch["prompt_lengths"]) > 2:
                raise torch.cuda.OutOfMemoryError("test: out of memory")
            return predict(batch)
        handler.predict = predict_or_oom

    split, _, _, scorer = score(options, table, handler_hook=fail_big_batches)
    assert scorer.oom_splits >= 1
    assert split == outputs


def test_the_shared_prefix_cache_answers_as_running_every_prompt_token(score):
    """The prompts' common start (chat template, system message, template text) is computed once and
    reused; answers and probabilities equal those of a handler that runs every token of every row."""
    table = pa.table({"review": pa.array(POSITIVE[:2] + NEGATIVE[:2])})

    def no_prefix_cache(handler):
        assert len(handler.shared_prefix) > 10  # the chat template alone is longer
        handler.shared_prefix = ()

    cached, _, _, _ = score(SENTIMENT, table)
    uncached, _, _, _ = score(SENTIMENT, table, handler_hook=no_prefix_cache)
    assert cached["answer"] == uncached["answer"]
    np.testing.assert_allclose(np.array(cached["label_probabilities"]), np.array(uncached["label_probabilities"]),
                               atol=1e-4)
    options = {"task": "generate", "prompt": "Is this review positive or negative? Review: {review}",
               "max_new_tokens": 4}
    generated, _, _, _ = score(options, table)
    generated_uncached, _, _, _ = score(options, table, handler_hook=no_prefix_cache)
    assert generated["answer"] == generated_uncached["answer"]
    assert generated["finish_reason"] == generated_uncached["finish_reason"]


def test_a_batch_with_a_row_off_the_cached_prefix_runs_from_its_first_token(score):
    """The cache is used only for a batch whose every row starts with the cached tokens: here the
    cached prefix is made one token longer than the template's, the first word of one review, so a
    batch holding another review must run whole and still answer as a handler without a cache."""
    table = pa.table({"review": pa.array([POSITIVE[0], NEGATIVE[0], POSITIVE[0] + " " + POSITIVE[1]])})
    offsets = []

    def prefix_one_token_into_the_first_review(handler):
        first = handler.prompt_ids(handler.llm.prompt.render({"review": POSITIVE[0]}))
        handler.shared_prefix = tuple(first[:len(handler.shared_prefix) + 1])
        reusable = handler._reusable_prefix

        def recorded(ids, lengths):
            offsets.append(reusable(ids, lengths))
            return offsets[-1]
        handler._reusable_prefix = recorded

    def no_prefix_cache(handler):
        handler.shared_prefix = ()

    for batch_size in (1, 3):  # alone each row is on or off the prefix; together the batch is off it
        offsets.clear()
        cached, _, _, _ = score(SENTIMENT, table, batch_size=batch_size,
                                handler_hook=prefix_one_token_into_the_first_review)
        uncached, _, _, _ = score(SENTIMENT, table, batch_size=batch_size, handler_hook=no_prefix_cache)
        assert cached["answer"] == uncached["answer"] == ["positive", "negative", "positive"]
        np.testing.assert_allclose(np.array(cached["label_probabilities"]),
                                   np.array(uncached["label_probabilities"]), atol=1e-4)
        used = sorted(offset > 0 for offset in offsets)
        assert used == ([False, True, True] if batch_size == 1 else [False])


def test_token_budget_counts_new_tokens_and_packs_rows_of_alike_prompt_length(score):
    reviews = [POSITIVE[0], "ok", NEGATIVE[0] + " " + NEGATIVE[1] * 3, "fine", POSITIVE[1] * 2, NEGATIVE[2]]
    table = pa.table({"review": pa.array(reviews)})
    new_tokens = 16
    options = {"task": "generate", "prompt": "{review}", "max_new_tokens": new_tokens, "context_length": 256}
    from nightshard_worker.handlers.llm import LlmHandler

    handler = LlmHandler(model_spec=ModelSpec(handler="llm", version="smollm2", options=options),
                         device=torch.device("cpu"), precision="fp32")
    prepared = handler.preprocess(table)
    prompt_lengths = prepared.tensors["prompt_lengths"].numpy()
    np.testing.assert_array_equal(prepared.lengths, prompt_lengths + new_tokens)
    budget = int(2 * (prompt_lengths.max() + new_tokens))
    batches = plan_batches(prepared.good_count, 64, prepared.lengths, budget)
    for batch in batches:  # KV cache per batch: rows x (longest prompt + new tokens) within budget
        assert len(batch) == 1 or len(batch) * (prompt_lengths[batch].max() + new_tokens) <= budget
    order = np.concatenate(batches)
    assert list(prompt_lengths[order]) == sorted(prompt_lengths)


def test_model_split_layer_wise_over_three_devices_answers_as_the_unsplit_model(score):
    """The CPU stands in for three GPUs: the same device map and accelerate hooks as on CUDA."""
    import copy

    from nightshard_worker.handlers.llm import footprint_of, split_over_devices
    from nightshard_worker.placement import PlacementError, place_layers

    table = pa.table({"review": pa.array(POSITIVE[:2] + NEGATIVE[:2])})
    generate = {"task": "generate", "prompt": "Is this review positive or negative? Review: {review}",
                "max_new_tokens": 4, "context_length": 96}
    unsplit_labels, _, _, _ = score(SENTIMENT, table)
    unsplit_text, _, _, _ = score(generate, table)

    placements = {}

    def split(handler):
        footprint = footprint_of(handler.model)
        # Device 0 holds the embeddings and 8 layers, the others 16: 30 layers need three devices.
        budget = footprint.other_bytes + 8 * (footprint.layer_bytes + 512 * footprint.kv_bytes_per_token)
        plan = place_layers(footprint, kv_tokens=512, devices=4, budget_bytes=budget)
        assert plan.devices_used == 3 and sum(plan.layers_per_device) == footprint.layers
        assert all(used <= budget for used in plan.bytes_per_device)
        with pytest.raises(PlacementError, match=r"fits nowhere: it needs .* GiB .* 2 device\(s\)"):
            place_layers(footprint, kv_tokens=512, devices=2, budget_bytes=budget)
        handler.model = split_over_devices(copy.deepcopy(handler.model), plan, [torch.device("cpu")] * 3)
        placements[handler.llm.task] = handler.model.hf_device_map

    split_labels, _, _, _ = score(SENTIMENT, table, handler_hook=split)
    split_text, _, _, _ = score(generate, table, handler_hook=split)
    assert len(placements["classify"]) > 30  # every layer mapped
    assert split_labels["answer"] == unsplit_labels["answer"]
    np.testing.assert_allclose(split_labels["label_probabilities"], unsplit_labels["label_probabilities"], atol=1e-5)
    assert split_text == unsplit_text


def test_plan_states_the_placement_and_refuses_with_numbers_a_model_that_fits_nowhere():
    from nightshard_worker import model_files
    from nightshard_worker.placement import PlacementError, placement_for_plan

    gguf = model_files.smollm2_gguf()
    def on_gke(gpus):
        return {"kind": "gke", "gke": {"gpus_per_pod": gpus, "accelerator": "nvidia-tesla-t4"}}

    assert placement_for_plan(gguf, precision="fp32", kv_tokens=16384, backend={"kind": "local"}).startswith("one device")
    assert placement_for_plan(gguf, precision="fp32", kv_tokens=16384, backend=on_gke(1)).startswith(
        "30 layers on 1 of 1 devices")
    # 800k tokens of bf16 KV cache (17 GiB) do not fit one 16 GiB T4, they fit two, split layer-wise.
    assert placement_for_plan(gguf, precision="bf16", kv_tokens=800_000, backend=on_gke(2)).startswith(
        "30 layers on 2 of 2 devices")
    with pytest.raises(PlacementError, match=r"fits nowhere: it needs 17\.\d+ GiB .* 1 device\(s\) x 13\.60 GiB"):
        placement_for_plan(gguf, precision="bf16", kv_tokens=800_000, backend=on_gke(1))


def test_progress_line_and_summary_report_tokens_per_second():
    from nightshard_worker.contract import ShardResult
    from nightshard_worker.progress import ProgressReporter, summary

    def reporter_for(**tokens):
        return ProgressReporter(shard_id="0001", total_rows=100, rows_done=lambda: 40, queue_depths=lambda: "q",
                                interval_seconds=10.0, resumed_rows=0, **tokens)

    reporter = reporter_for(tokens_done=lambda: 2400)
    assert "tokens=2400 " in reporter.line() and "tokens/s" in reporter.line()
    assert "tokens" not in reporter_for().line()
    result = ShardResult(shard_id="0001", status="succeeded", spec_fingerprint="f", wall_seconds=10.0,
                         input_tokens=2000, output_tokens=400)
    assert "tokens: input 2000, output 400, 240.0 tokens/s" in summary(result)
