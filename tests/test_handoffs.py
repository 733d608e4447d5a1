"""The typed hand-offs (nightshard.handoffs) say what really crosses each task boundary."""

from __future__ import annotations

import dataclasses

from nightshard.handoffs import PLAN_POINTER_KEY, PlanDocument, PlanPointer, ShardResultDocument, ShardTicket
from nightshard_worker.contract import ShardResult

BACKEND_ADDED = {"queue_wait_seconds"}  # the GKE operator adds it to the worker's result


def test_a_shard_result_document_has_exactly_the_contracts_fields_plus_what_backends_add():
    contract_fields = {field.name for field in dataclasses.fields(ShardResult)}
    assert set(ShardResultDocument.__annotations__) == contract_fields | BACKEND_ADDED
    assert ShardResultDocument.__optional_keys__ == BACKEND_ADDED


def test_a_plan_pointer_is_the_documents_header_plus_where_it_lives():
    header = set(PlanPointer.__annotations__) - {"plan_uri"}
    assert header <= set(PlanDocument.__annotations__)


def test_the_dag_wires_the_plan_pointer_from_plans_second_xcom_and_prices_after_validating():
    from nightshard.config.pipeline_config import config_files, load_pipeline_config
    from nightshard.dag_factory import build_pipeline_dag

    dag = build_pipeline_dag(load_pipeline_config(config_files()[0]))
    for task_id in ("validate", "cost", "publish", "notify"):
        pointer = dag.get_task(task_id).op_args[0]
        assert (pointer.operator.task_id, pointer.key) == ("plan", PLAN_POINTER_KEY), task_id
    assert dag.get_task("cost").upstream_task_ids == {"plan", "infer", "validate"}
    assert len(dag.get_task("cost").op_args) == 2  # the plan and the results; the order is the wiring's


def test_every_hand_off_crosses_xcom_once(tmp_path):
    """No task pushes its dict return value again key by key (Airflow's multiple_outputs)."""
    from nightshard.config.pipeline_config import config_files, load_pipeline_config
    from nightshard.dag_factory import build_pipeline_dag

    dag = build_pipeline_dag(load_pipeline_config(config_files()[0]))
    for task_id in ("plan", "validate", "cost", "publish", "notify"):
        assert dag.get_task(task_id).multiple_outputs is False, task_id
    assert set(ShardTicket.__annotations__) >= {"spec_uri", "result_uri", "already_committed"}
