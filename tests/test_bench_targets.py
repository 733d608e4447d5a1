"""The benchmark's verdicts: ratios from one run's medians, and n/a with the reason when a side is missing."""

from __future__ import annotations

import pytest

from bench import run, targets


def test_text_targets_are_ratios_of_the_same_runs_medians() -> None:
    medians = {"ceiling": {"steady": 50.0}, "worker": {"steady": 47.5, "end_to_end": 45.0},
               "naive": {"end_to_end": 15.0}, "ray": {"end_to_end": 40.0}}
    found = {target.name: target for target in targets.throughput_targets("text", medians)}
    assert found["worker / ceiling (steady rows/s)"].ratio == pytest.approx(0.95)
    assert found["worker / ceiling (steady rows/s)"].verdict == "PASS"
    assert found["worker / naive (end-to-end rows/s)"].ratio == pytest.approx(3.0)
    assert found["worker / Ray Data (end-to-end rows/s)"].verdict == "FAIL"  # 1.125 < 1.5


def test_a_variant_left_out_makes_its_targets_not_measured_with_the_reason() -> None:
    medians = {"worker": {"steady": 47.5, "end_to_end": 45.0}, "naive": {"end_to_end": 15.0}}
    reasons = {"ceiling": "skipped with --variants", "ray": "skipped with --no-ray"}
    found = {target.name: target for target in targets.throughput_targets("text", medians, reasons)}
    ceiling = found["worker / ceiling (steady rows/s)"]
    assert (ceiling.verdict, ceiling.note) == ("NOT MEASURED", "ceiling: skipped with --variants")
    assert "ray: skipped with --no-ray" in found["worker / Ray Data (end-to-end rows/s)"].line()
    assert found["worker / naive (end-to-end rows/s)"].verdict == "PASS"


def test_variants_flag_picks_a_subset_and_implies_no_ray() -> None:
    arguments = run.parse_arguments(["--variants", "worker, naive"])
    assert arguments.variants == ["worker", "naive"]
    assert arguments.no_ray


def test_variants_flag_rejects_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run.parse_arguments(["--variants", "worker,pandas"])
    assert "--variants pandas: choose from ceiling,worker,naive,ray" in capsys.readouterr().err


def test_text_verdicts_below_the_issues_shard_size_say_so() -> None:
    medians = {"ceiling": {"steady": 50.0}, "worker": {"steady": 47.5, "end_to_end": 30.0},
               "naive": {"end_to_end": 20.0}, "ray": {"end_to_end": 10.0}}
    small = {t.name: t for t in targets.throughput_targets("text", medians, rows=300)}
    assert "on 300 rows; the target is for 20000: --text-rows 20000" in small["worker / naive (end-to-end rows/s)"].line()
    full = targets.throughput_targets("text", medians, rows=20_000)
    assert all(target.note == "" for target in full)
    tabular = targets.throughput_targets("tabular", {"ceiling": {"steady": 1.0}, "worker": {"steady": 1.0}}, rows=300)
    assert tabular[0].note == ""


def test_the_threads_sweep_runs_only_with_text_among_the_workloads(tmp_path, capsys) -> None:
    # A GPU machine without the MiniLM weights runs --workloads image,tabular: no text may be written or run.
    arguments = run.parse_arguments(["--workloads", "image", "--no-ray"])
    scaling = run._scaling(tmp_path, arguments, None, {"tabular_rows": 10, "sweep_text_rows": 8}, None, ["image"])
    assert scaling == {"shard_size": [], "threads": []}
    assert not list(tmp_path.glob("text-*.parquet"))
    assert "threads sweep skipped: text is not among --workloads" in capsys.readouterr().out


def test_scaling_plot_is_headed_by_the_date_and_the_machine(tmp_path) -> None:
    from bench.plot import caption, scaling_png

    machine = {"date": "2026-12-02T01:09:00+00:00", "device": "cuda", "device_name": "NVIDIA H200", "nproc": 16,
               "torch": "2.13.0+cu128", "precision": "bf16", "torch_threads": 8}
    assert caption(machine) == "2026-12-02, cuda (NVIDIA H200), nproc 16, torch 2.13.0+cu128, bf16"
    assert caption({**machine, "device": "cpu", "device_name": "cpu"}).startswith("2026-12-02, cpu, nproc 16")
    points = [{"rows": rows, "steady_rows_per_second": rows / 2, "end_to_end_rows_per_second": rows / 4}
              for rows in (1000, 3000, 10000)]
    scaling_png(tmp_path / "scaling.png", points, [{"threads": 1, "steady_rows_per_second": 5.0}], machine)
    assert (tmp_path / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
