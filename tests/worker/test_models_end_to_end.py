"""The shipped models end to end through the CLI: MiniLM embeddings, EfficientNet-Lite0 labels."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from conftest import make_spec, png_bytes, read_result, run_worker, save_spec, write_parquet

from nightshard_worker.contract import EXIT_OK, ModelSpec

SENTENCES = ["the cat sat on the mat", "nightly batch inference keeps the gpu busy",
             "a much longer sentence about parquet row groups, checkpoints, preemption and resuming work "
             "exactly once after a spot node disappears in the middle of the night", "short"]


def test_text_embeddings_are_unit_length_ordered_and_skip_blank_text(tmp_path):
    texts = [SENTENCES[i % len(SENTENCES)] for i in range(118)] + [None, "   "]
    table = pa.table({"id": pa.array([f"doc-{i}" for i in range(120)]), "text": pa.array(texts)})
    spec = make_spec(tmp_path, [write_parquet(tmp_path / "in.parquet", table, 60)],
                     ModelSpec(handler="text_embedding", version="minilm-l6-v2", options={"text_column": "text"}),
                     batch_size=16, max_batch_tokens=256)

    completed = run_worker(save_spec(spec, tmp_path))

    assert completed.returncode == EXIT_OK, completed.stdout
    output = pq.read_table(spec.output_path)
    assert output.schema.field("embedding").type == pa.list_(pa.float32(), 384)
    assert output.column("id").to_pylist() == [f"doc-{i}" for i in range(118)]
    embeddings = np.stack(output.column("embedding").to_numpy(zero_copy_only=False))
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-4)
    # Same text, different batch and position: same vector, so sorting by length was undone.
    for offset in range(len(SENTENCES)):
        assert np.abs(embeddings[offset::len(SENTENCES)] - embeddings[offset]).max() < 1e-4
    assert not np.allclose(embeddings[0], embeddings[1])
    quarantine = pq.read_table(spec.quarantine_path)
    assert quarantine.column("reason").to_pylist() == ["text is null", "text is empty or whitespace"]
    result = read_result(spec)
    assert (result.rows_out, result.rows_quarantined) == (118, 2) and sum(result.histogram.counts) == 118
    assert result.rows_truncated == 0 and not any(output.column("truncated").to_pylist())


IMAGES = [png_bytes((220, 30, 30)), png_bytes((30, 200, 40)), png_bytes((20, 40, 210)),
          png_bytes((240, 240, 240), "stripes"), png_bytes((10, 10, 10), "circle"), png_bytes((200, 180, 20), "stripes")]


def image_spec(tmp_path, batch_size: int):
    images = IMAGES * 2 + [b"not an image"]
    table = pa.table({"id": pa.array(range(len(images)), pa.int32()), "image": pa.array(images, pa.binary())})
    input_slice = write_parquet(tmp_path / "in.parquet", table, 7)
    return make_spec(tmp_path, [input_slice], ModelSpec(handler="image_classification", version="lite0",
                                                        options={"image_column": "image"}), batch_size=batch_size)


def test_image_top1_is_stable_across_runs_and_batch_sizes(tmp_path):
    labels = []
    for run, batch_size in enumerate((2, 16, 16)):
        folder = tmp_path / f"run{run}"
        folder.mkdir()
        spec = image_spec(folder, batch_size)
        completed = run_worker(save_spec(spec, folder))
        assert completed.returncode == EXIT_OK, completed.stdout
        output = pq.read_table(spec.output_path)
        assert output.schema.names == ["id", "label", "confidence"]
        assert output.schema.field("id").type == pa.int32()
        labels.append(output.column("label").to_pylist())
        confidences = output.column("confidence").to_numpy()
        assert ((confidences > 0) & (confidences <= 1)).all()
        quarantine = pq.read_table(spec.quarantine_path)
        assert quarantine.column("id").to_pylist() == [12]
        assert quarantine.column("reason")[0].as_py().startswith("image cannot be decoded")
    assert labels[0] == labels[1] == labels[2]
    assert labels[0][:6] == labels[0][6:12]  # the same image scores the same in another row group
    assert len(set(labels[0])) > 1


def test_image_batches_reach_the_model_channels_last_and_score_as_nchw_does():
    """A gather that dropped the NHWC layout cost ~30% of the image worker's throughput on CPU."""
    from nightshard_worker.handlers.image_classification import ImageClassificationHandler

    handler = ImageClassificationHandler(model_spec=ModelSpec(handler="image_classification", version="1",
                                                              options={"image_column": "image"}),
                                         device=torch.device("cpu"), precision="fp32")
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 40)]
    table = pa.table({"image": [png_bytes(colour, pattern) for colour in colours for pattern in ("solid", "stripes")]})
    prepared = handler.preprocess(table)
    batch = handler.collate(prepared, np.array([5, 0, 3]))
    assert batch["pixels"].is_contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        channels_last = handler.predict(batch)
        nchw = handler.predict({"pixels": batch["pixels"].contiguous()})
    assert channels_last["label"].tolist() == nchw["label"].tolist()
    assert torch.allclose(channels_last["confidence"], nchw["confidence"], atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_gpu_smoke_tabular_and_text_on_cuda_with_bf16(tmp_path, tabular_artifact):
    from conftest import FEATURES, tabular_table

    spec = make_spec(tmp_path, [write_parquet(tmp_path / "in.parquet", tabular_table(5000), 1000)],
                     ModelSpec(handler="tabular", version="1", artifact=str(tabular_artifact),
                               options={"feature_columns": FEATURES}), device="cuda", precision="bf16")
    completed = run_worker(save_spec(spec, tmp_path))
    assert completed.returncode == EXIT_OK, completed.stdout
    result = read_result(spec)
    assert result.device == "cuda" and result.peak_device_memory_bytes > 0 and result.rows_out == 5000


def test_a_one_megabyte_text_row_is_truncated_not_fatal(tmp_path):
    """A giant row is cut at the tokenizer's max_length: scored like its first 256 tokens, no OOM."""
    giant = "catalogue " * 100_000  # ~1 MB
    table = pa.table({"id": pa.array(["giant", "small"]), "text": pa.array([giant, SENTENCES[0]])})
    spec = make_spec(tmp_path, [write_parquet(tmp_path / "in.parquet", table, 2)],
                     ModelSpec(handler="text_embedding", version="minilm-l6-v2", options={"text_column": "text"}),
                     batch_size=16, max_batch_tokens=4096)

    completed = run_worker(save_spec(spec, tmp_path))

    assert completed.returncode == EXIT_OK, completed.stdout
    output = pq.read_table(spec.output_path)
    assert output.column("id").to_pylist() == ["giant", "small"]
    assert output.column("truncated").to_pylist() == [True, False]  # the cut row says so
    result = read_result(spec)
    assert (result.rows_out, result.rows_quarantined, result.rows_truncated) == (2, 0, 1)
