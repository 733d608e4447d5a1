"""`cost`: price the run from the workers' timings and write cost_report.json beside the run's reports."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import cast

from nightshard import layout, storage
from nightshard.config.pipeline_config import PipelineConfig
from nightshard.handoffs import CostReport, PlanDocument, ShardResultDocument
from nightshard.reporting.cost import pricing_for, run_cost

log = logging.getLogger(__name__)


def cost_run(config: PipelineConfig, plan: PlanDocument, results: Sequence[ShardResultDocument]) -> CostReport:
    pricing = pricing_for(config)
    report = run_cost(
        results,
        accelerator=pricing.accelerator,
        provisioning=pricing.provisioning,
        accelerators_per_shard=pricing.accelerators_per_shard,
        table=pricing.table,
    )
    report.update({"pipeline": plan["pipeline"], "ds": plan["ds"], "model_version": plan["model_version"],
                   "run_id": plan["run_id"]})
    folder = layout.reports_folder(config, plan["model_version"], plan["ds"])
    report_uri = storage.join(folder, "cost_report.json")
    storage.write_json_atomic(report_uri, report)
    log.info(
        "cost of %s ds=%s: %.4f %s for %.4f %s-hours (%s), %.4f per million rows; report %s",
        plan["pipeline"], plan["ds"], report["total_cost"], report["currency"], report["accelerator_hours"],
        report["accelerator"], report["provisioning"], report["cost_per_million_rows"], report_uri,
    )
    if "input_tokens" in report:
        log.info("tokens of %s ds=%s: %d in, %d out, %.1f tokens/s; %.4f %s per million input tokens, %.4f per "
                 "million output tokens", plan["pipeline"], plan["ds"], report["input_tokens"], report["output_tokens"],
                 report["tokens_per_second"], report["cost_per_million_input_tokens"], report["currency"],
                 report["cost_per_million_output_tokens"])
    return cast(CostReport, {**report, "report_uri": report_uri})
