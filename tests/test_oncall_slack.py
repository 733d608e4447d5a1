"""On-call alerts also go to a Slack incoming webhook when a connection names one (a real HTTP server
on loopback stands in for Slack)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace

import pytest

from nightshard.notifications.oncall_notifier import OnCallNotifier


@pytest.fixture
def slack_webhook():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/services/T000/B000/XXXX", received
    server.shutdown()


def failed_infer_context(ds: str = "2026-11-22") -> dict:
    ti = SimpleNamespace(dag_id="nightshard_tabular_risk", run_id="scheduled__2026-11-22", task_id="infer",
                         try_number=3, log_url="http://airflow/logs/infer/3")
    task = SimpleNamespace(ticket={"shard_id": "00002-abcdef12"})
    cause = "shard 00002-abcdef12 failed: too many rows were quarantined (exit 3). Next step: open the quarantine file"
    return {"ti": ti, "task": task, "params": {"ds": ds}, "logical_date": None, "exception": cause}


def test_alert_is_posted_to_the_slack_webhook_and_kept_in_the_outbox(slack_webhook, tmp_path, monkeypatch):
    url, received = slack_webhook
    monkeypatch.setenv("AIRFLOW_CONN_ONCALL_SLACK", json.dumps({"conn_type": "http", "host": url}))
    notifier = OnCallNotifier(pipeline="tabular_risk", outbox=str(tmp_path / "outbox"), topic=None,
                              gcp_conn_id="google_cloud_default", slack_conn_id="oncall_slack")
    notifier.notify(failed_infer_context())
    [posted] = received
    text = posted["text"]
    assert "*tabular_risk* ds=2026-11-22" in text and "shard `00002-abcdef12`" in text
    assert "*Next step:* open the quarantine file" in text and "http://airflow/logs/infer/3" in text
    assert len(list((tmp_path / "outbox").glob("*-alert-*.json"))) == 1


def test_an_unreachable_webhook_never_hides_the_task_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ONCALL_SLACK", json.dumps({"conn_type": "http", "host": "http://127.0.0.1:9/x"}))
    notifier = OnCallNotifier(pipeline="tabular_risk", outbox=str(tmp_path / "outbox"), topic=None,
                              gcp_conn_id="google_cloud_default", slack_conn_id="oncall_slack")
    notifier.notify(failed_infer_context())  # logs the delivery error, raises nothing
    assert len(list((tmp_path / "outbox").glob("*-alert-*.json"))) == 1
