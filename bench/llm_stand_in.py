"""SmolLM2-135M's architecture with random weights, for the GPU check: the GGUF (98 MB) does not fit
the 64 MiB a device call may carry, its config and tokenizer (~3 MB) do.

    python -m bench.llm_stand_in export --out .whl/smollm2-config      # HERE: config + tokenizer from the GGUF
    python -m bench.llm_stand_in build --config .whl/smollm2-config --out /tmp/smollm2-random   # THERE
    python -m bench.llm_stand_in check-split --model /tmp/smollm2-random --device cuda           # THERE

Speed does not depend on the weights' values, so tokens/s of the stand-in are SmolLM2's; its
answers are noise (generate runs to max_new_tokens). `check-split` places the layers over three
devices that are all the one GPU, through the same device map and hooks a multi-GPU pod uses, and
checks the answers equal the unsplit model's.
"""

from __future__ import annotations

import argparse
import copy
import json


def export(out: str) -> None:
    import os

    from transformers import AutoConfig, AutoTokenizer

    from nightshard_worker import model_files

    folder, name = os.path.split(model_files.smollm2_gguf())
    AutoConfig.from_pretrained(folder, gguf_file=name).save_pretrained(out)
    AutoTokenizer.from_pretrained(folder, gguf_file=name).save_pretrained(out)


def build(config_dir: str, out: str) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(config_dir))
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(config_dir).save_pretrained(out)


def check_split(model_dir: str, device_name: str) -> dict:
    import numpy as np
    import pyarrow as pa
    import torch

    from nightshard_worker.contract import ModelSpec
    from nightshard_worker.handlers.llm import LlmHandler, footprint_of, split_over_devices
    from nightshard_worker.placement import place_layers

    device = torch.device(device_name)
    table = pa.table({"review": pa.array(["great value, works well", "broke after a day", "fine", "awful"])})
    report = {}
    for task, options in {
        "classify": {"task": "classify", "prompt": "Review: {review}", "labels": ["positive", "negative"]},
        "generate": {"task": "generate", "prompt": "Review: {review}", "max_new_tokens": 8},
    }.items():
        handler = LlmHandler(model_spec=ModelSpec(handler="llm", version="stand-in", artifact=model_dir,
                                                  options=options),
                             device=device, precision="fp32")
        prepared = handler.preprocess(table)
        batch = {name: tensor.to(device) for name, tensor in
                 handler.collate(prepared, np.arange(prepared.good_count)).items()}
        with torch.inference_mode():
            unsplit = handler.predict(batch)
        footprint = footprint_of(handler.model)
        budget = footprint.other_bytes + 8 * (footprint.layer_bytes + 512 * footprint.kv_bytes_per_token)
        plan = place_layers(footprint, kv_tokens=512, devices=4, budget_bytes=budget)
        handler.model = split_over_devices(copy.deepcopy(handler.model), plan, [device] * plan.devices_used)
        with torch.inference_mode():
            split = handler.predict(batch)
        equal = list(unsplit["answer"]) == list(split["answer"])
        if task == "classify":
            equal = equal and bool(np.allclose(unsplit["label_probabilities"], split["label_probabilities"],
                                               atol=1e-4))
        report[task] = {"placement": plan.describe(), "answers_equal": equal}
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("export").add_argument("--out", required=True)
    built = commands.add_parser("build")
    built.add_argument("--config", required=True)
    built.add_argument("--out", required=True)
    checked = commands.add_parser("check-split")
    checked.add_argument("--model", required=True)
    checked.add_argument("--device", default="cuda")
    arguments = parser.parse_args(argv)
    if arguments.command == "export":
        export(arguments.out)
    elif arguments.command == "build":
        build(arguments.config, arguments.out)
    else:
        report = check_split(arguments.model, arguments.device)
        print(json.dumps(report, indent=2))
        if not all(task["answers_equal"] for task in report.values()):
            raise SystemExit("split answers differ from the unsplit model's")


if __name__ == "__main__":
    main()
