"""Where a language model's layers go when one device is not enough: a layer-wise split, pure.

A decoder layer costs its weights plus its share of the KV cache for the tokens one batch holds
(`model.options.kv_tokens`; keep `runtime.max_batch_tokens`, the budget batches are cut by, at most that). Devices are filled in order, each up
to a memory budget, so the fewest devices are used and each layer runs where its cache lives; the
embeddings and the output head sit on the first device. The plan task runs the same function from
the model file's header (`footprint_from_gguf`), so a model that fits nowhere is refused, with
numbers, before any pod starts. Torch-free (gguf and numpy only).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

# Share of a device's memory the weights and the KV cache may take: the rest is activations of one
# forward pass, the CUDA context and allocator fragmentation.
DEVICE_MEMORY_BUDGET_FRACTION = 0.85
GIB = 2**30
DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
# Memory per GPU of the GKE accelerators the price table knows, GiB (nvidia.com/gpu types).
ACCELERATOR_MEMORY_GIB = {
    "nvidia-tesla-t4": 16, "nvidia-l4": 24, "nvidia-a100-40gb": 40, "nvidia-a100-80gb": 80,
    "nvidia-h100-80gb": 80, "nvidia-h200-141gb": 141, "nvidia-b200": 180,
}


class PlacementError(ValueError):
    """The model does not fit the devices; the message gives the numbers and what to change."""


@dataclass(frozen=True)
class ModelFootprint:
    layers: int
    layer_bytes: int  # weights of one decoder layer at the dtype it runs in
    other_bytes: int  # embeddings, final norm, output head
    kv_bytes_per_token: int  # per layer: keys and values of one token

    @property
    def weight_bytes(self) -> int:
        return self.layers * self.layer_bytes + self.other_bytes


@dataclass(frozen=True)
class Placement:
    layers_per_device: tuple[int, ...]  # consecutive layers on device 0, 1, ...
    bytes_per_device: tuple[int, ...]
    budget_bytes: int
    kv_tokens: int
    devices_available: int

    @property
    def devices_used(self) -> int:
        return len(self.layers_per_device)

    def device_of_layer(self) -> list[int]:
        return [device for device, count in enumerate(self.layers_per_device) for _ in range(count)]

    def describe(self) -> str:
        where = ", ".join(f"device {index}: {count} layers, {used / GIB:.2f} GiB"
                          for index, (count, used) in enumerate(zip(self.layers_per_device, self.bytes_per_device)))
        return (f"{sum(self.layers_per_device)} layers on {self.devices_used} of {self.devices_available} devices "
                f"({where}; budget {self.budget_bytes / GIB:.2f} GiB each, KV cache for {self.kv_tokens} tokens)")


def place_layers(footprint: ModelFootprint, *, kv_tokens: int, devices: int, budget_bytes: int) -> Placement:
    """Fill devices in order with whole layers (weights + KV cache); PlacementError when they run out."""
    per_layer = footprint.layer_bytes + footprint.kv_bytes_per_token * kv_tokens
    counts, used = [], []
    remaining = footprint.layers
    for device in range(devices):
        if remaining == 0:
            break
        held = footprint.other_bytes if device == 0 else 0
        fit = max(0, min(remaining, (budget_bytes - held) // per_layer)) if budget_bytes > held else 0
        counts.append(fit)
        used.append(held + fit * per_layer)
        remaining -= fit
    if remaining or footprint.other_bytes > budget_bytes:
        needed = footprint.other_bytes + footprint.layers * per_layer
        raise PlacementError(
            f"the model fits nowhere: it needs {needed / GIB:.2f} GiB (weights {footprint.weight_bytes / GIB:.2f} GiB "
            f"+ KV cache {footprint.layers * footprint.kv_bytes_per_token * kv_tokens / GIB:.2f} GiB for "
            f"{kv_tokens} tokens), one layer {per_layer / GIB:.3f} GiB, but {devices} device(s) x "
            f"{budget_bytes / GIB:.2f} GiB budget hold {footprint.layers - remaining} of its {footprint.layers} layers. "
            "Use more GPUs per pod (backend.gke.gpus_per_pod), a larger accelerator, bf16, or a smaller "
            "model.options.kv_tokens (with runtime.max_batch_tokens at most that)")
    while counts and counts[-1] == 0:
        counts.pop()
        used.pop()
    return Placement(tuple(counts), tuple(used), budget_bytes, kv_tokens, devices)


@functools.lru_cache(maxsize=8)  # the header of a 98 MB file takes seconds to walk on 2 busy cores
def footprint_from_gguf(path: str, dtype_bytes: int) -> ModelFootprint:
    """The footprint of a GGUF model once de-quantised to `dtype_bytes`, from its header only."""
    from gguf import GGUFReader

    reader = GGUFReader(path)
    architecture = _field(reader, "general.architecture")
    layers = int(_field(reader, f"{architecture}.block_count"))
    heads = int(_field(reader, f"{architecture}.attention.head_count"))
    kv_heads = int(_field(reader, f"{architecture}.attention.head_count_kv", heads))
    width = int(_field(reader, f"{architecture}.embedding_length"))
    layer_elements, other_elements = 0, 0
    for tensor in reader.tensors:
        if tensor.name.startswith("blk."):
            layer_elements += int(tensor.n_elements)
        else:
            other_elements += int(tensor.n_elements)
    head_dim = width // heads
    return ModelFootprint(layers=layers, layer_bytes=layer_elements // layers * dtype_bytes,
                          other_bytes=other_elements * dtype_bytes,
                          kv_bytes_per_token=2 * kv_heads * head_dim * dtype_bytes)


def _field(reader, key: str, default=None):
    field = reader.fields.get(key)
    if field is None:
        if default is None:
            raise PlacementError(f"GGUF header has no {key!r}: cannot size the model")
        return default
    value = field.parts[field.data[0]]
    return bytes(value).decode() if field.types and field.types[0].name == "STRING" else value[0]


def placement_for_plan(model_source: str, *, precision: str, kv_tokens: int, backend: dict) -> str:
    """What the plan says about a model's placement; PlacementError when it fits nowhere.

    Sized from the GGUF header on a GKE backend whose accelerator's memory is known; elsewhere the
    worker decides on the devices it finds.
    """
    if backend.get("kind") != "gke":
        return "one device (local backend): not split"
    gke = backend.get("gke") or {}
    gpus = int(gke.get("gpus_per_pod", 1) or 0)
    memory_gib = ACCELERATOR_MEMORY_GIB.get(str(gke.get("accelerator")))
    if gpus < 1 or memory_gib is None:
        return f"not planned: {gpus} GPUs of type {gke.get('accelerator')!r} (memory unknown); the worker decides"
    if "://" in model_source or not model_source.endswith(".gguf"):
        return f"not planned: {model_source} is not a local GGUF file; the worker splits it if it must"
    footprint = footprint_from_gguf(model_source, DTYPE_BYTES.get(precision, 4))
    budget = int(memory_gib * GIB * DEVICE_MEMORY_BUDGET_FRACTION)
    return place_layers(footprint, kv_tokens=kv_tokens, devices=gpus, budget_bytes=budget).describe()
