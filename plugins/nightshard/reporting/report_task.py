"""After `publish`: the run report page and the run-level Prometheus metrics.

Both come after the partition is visible, and neither can unpublish it: a report or a push that
fails is logged with the reason and the run stays a success.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from nightshard.config.pipeline_config import PipelineConfig, expand_environment
from nightshard.handoffs import (
    CostReport,
    PlanDocument,
    PublishedPartition,
    ReportReceipt,
    ShardResultDocument,
    ValidationReport,
)
from nightshard.reporting.report_page import write_run_report
from nightshard.reporting.run_metrics import push_run_metrics, run_summary

log = logging.getLogger(__name__)


def report_run(
    config: PipelineConfig,
    plan: PlanDocument,
    results: Sequence[ShardResultDocument],
    validation: ValidationReport,
    cost: CostReport,
    published: PublishedPartition,
) -> ReportReceipt:
    """Write run_report.html and push the run metrics; returns where each went."""
    receipt: ReportReceipt = {"run_report_uri": None, "metrics_pushed": False}
    try:
        receipt["run_report_uri"] = write_run_report(config, plan, results, validation, cost, published)
        log.info("run report: %s", receipt["run_report_uri"])
    except Exception:  # noqa: BLE001 - the run is published; a report bug must not fail it
        log.exception("could not write the run report; the run is published. Next step: file a bug with this trace")
    try:
        summary = run_summary(plan, results, cost, finished_at=dt.datetime.now(dt.UTC))
        gateway = config.runtime.pushgateway_url
        receipt["metrics_pushed"] = push_run_metrics(summary, expand_environment(gateway) if gateway else None)
    except Exception:  # noqa: BLE001 - same reason: dashboards miss a run, readers do not
        log.exception("could not push the run metrics; the run is published. Check runtime.pushgateway_url")
    return receipt
