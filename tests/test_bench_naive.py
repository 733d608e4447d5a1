"""How the benchmark times its baselines: the naive loop in its own process, the ceiling warm."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bench import variants, workloads


@pytest.fixture(scope="module")
def risk_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return workloads.train_tabular_model(tmp_path_factory.mktemp("risk"))


def test_naive_loop_scores_every_row_in_file_order_in_a_fresh_process(tmp_path: Path, risk_model: Path) -> None:
    workload = workloads.write_tabular(tmp_path, 20_000, risk_model)

    run = variants.run_naive(workload, tmp_path / "out", "cpu", "fp32", 1)

    written = pq.read_table(tmp_path / "out" / "naive" / "tabular.parquet")
    assert written.column_names == [workloads.ID_COLUMN, "score"]
    assert written.column(workloads.ID_COLUMN).to_pylist() == list(range(20_000))
    scores = written.column("score").to_numpy()
    assert ((scores >= 0) & (scores <= 1)).all()
    # Its clock starts before torch is imported: load holds the import and the model load.
    assert run.load_seconds > 0.2
    assert run.end_to_end_seconds == pytest.approx(run.load_seconds + run.steady_seconds)
    assert run.process_wall_seconds > run.end_to_end_seconds


def test_naive_loop_failure_carries_the_child_error(tmp_path: Path, risk_model: Path) -> None:
    workload = workloads.write_tabular(tmp_path, 1_000, risk_model)
    workload.path.unlink()

    with pytest.raises(RuntimeError, match="naive loop exited 1 on tabular") as raised:
        variants.run_naive(workload, tmp_path / "out", "cpu", "fp32", 1)
    assert "tabular-1000.parquet" in str(raised.value)


def test_ceiling_is_warm_before_its_clock_starts(tmp_path: Path, risk_model: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from nightshard_worker.handlers.tabular import TabularHandler

    workload = workloads.write_tabular(tmp_path, 20_000, risk_model)
    passes: list[int] = []
    original = TabularHandler.predict
    monkeypatch.setattr(TabularHandler, "predict",
                        lambda handler, batch: passes.append(len(batch["features"])) or original(handler, batch))

    ceiling = variants.Ceiling(workload, "cpu", "fp32", 1)
    warm_up = list(passes)
    run = ceiling.run()

    assert warm_up == [8192] * variants.CEILING_WARM_UP_PASSES
    # The timed run is exactly the worker's batches (8192, 8192, 3616 rows), each once.
    assert passes[len(warm_up):] == [8192, 8192, 20_000 - 2 * 8192]
    assert run.steady_seconds > 0 and run.details["batches"] == 3
