"""The triggerer holding N deferred shard pods: its memory and its event-loop lag.

Each deferred `infer` task is one KubernetesPodTrigger (the one ShardPodOperator defers with, same
poll interval and settings as a shard pod) in the triggerer's single asyncio loop. This runs N of
them in one loop, as the triggerer's TriggerRunner does, against the loopback Kubernetes API the GKE
tests use (in its own process, so its work does not count here), with every pod held Pending behind
Kueue's gate for --hold seconds and then run to completion. Printed: RSS before and with N
triggers, per trigger, and the loop's lag (how late a 100 ms sleep wakes) while they poll.

    PYTHONPATH=plugins:.:tests/gke .venv/bin/python -m bench.triggerer_load [--pods 500] [--hold 60]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "nightshard"
CONTAINER = "worker"
LAG_PROBE_SECONDS = 0.1

API_SERVER = """
import sys, time
sys.path.insert(0, {tests!r})
from fake_kube_api import FakeKubeApi, PodScript
api = FakeKubeApi().start()
api.reset(PodScript(admit_after_seconds={hold}, run_seconds=1.0))
print(api.url, flush=True)
while True:
    time.sleep(3600)
"""


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def create_pods(url: str, pods: int) -> list[str]:
    from kubernetes import client

    configuration = client.Configuration(host=url)
    configuration.api_key = {"authorization": "Bearer bench"}
    api = client.CoreV1Api(client.ApiClient(configuration))
    names = []
    for index in range(pods):
        name = f"nightshard-bench-shard-{index:05d}"
        api.create_namespaced_pod(NAMESPACE, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"containers": [{"name": CONTAINER, "image": "worker"}]},
        })
        names.append(name)
    return names


async def lag_probe(samples: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(LAG_PROBE_SECONDS)
        samples.append(time.perf_counter() - started - LAG_PROBE_SECONDS)


async def run_trigger(trigger, events: list) -> None:
    async for event in trigger.run():
        events.append(event.payload)
        return


async def hold_triggers(names: list[str], poll_interval: float, hold: float) -> dict:
    from airflow.providers.cncf.kubernetes.triggers.pod import KubernetesPodTrigger

    before = rss_bytes()
    triggers = [
        KubernetesPodTrigger(
            pod_name=name, pod_namespace=NAMESPACE, trigger_start_time=dt.datetime.now(dt.UTC),
            base_container_name=CONTAINER, kubernetes_conn_id="kubernetes_default", poll_interval=poll_interval,
            get_logs=True, startup_timeout=600, startup_check_interval=min(30, poll_interval),
            schedule_timeout=int(hold) + 600, on_finish_action="delete_succeeded_pod",
        )
        for name in names
    ]
    samples: list[float] = []
    stop = asyncio.Event()
    probe = asyncio.create_task(lag_probe(samples, stop))
    events: list = []
    started = time.perf_counter()
    tasks = [asyncio.create_task(run_trigger(trigger, events)) for trigger in triggers]
    peak_rss, held_samples = before, 0
    while not all(task.done() for task in tasks):
        await asyncio.sleep(1)
        peak_rss = max(peak_rss, rss_bytes())
        if time.perf_counter() - started < hold:
            held_samples = len(samples)
    seconds = time.perf_counter() - started
    stop.set()
    await probe
    held = sorted(samples[:held_samples] or samples)
    every = sorted(samples)
    return {
        "pods": len(names), "poll_interval_seconds": poll_interval, "hold_seconds": hold,
        "seconds_until_all_events": round(seconds, 1),
        "events_ok": sum(1 for event in events if event.get("status") == "success"),
        "rss_before_bytes": before, "peak_rss_bytes": peak_rss,
        "rss_per_trigger_bytes": (peak_rss - before) // max(1, len(names)),
        "lag_while_held_ms": {"p50": _ms(statistics.median(held)), "p99": _ms(held[int(0.99 * (len(held) - 1))]),
                              "max": _ms(held[-1])},
        "lag_overall_ms": {"p50": _ms(statistics.median(every)), "p99": _ms(every[int(0.99 * (len(every) - 1))]),
                           "max": _ms(every[-1])},
        "peak_ru_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=500)
    parser.add_argument("--hold", type=float, default=60, help="seconds each pod stays Pending (Kueue-gated)")
    parser.add_argument("--poll-interval", type=float, default=10, help="the shard pods' poll interval (gke.poll_interval_seconds)")
    parser.add_argument("--output", default=None)
    arguments = parser.parse_args(argv)
    server = subprocess.Popen([sys.executable, "-c", API_SERVER.format(tests=str(REPO_ROOT / "tests" / "gke"),
                                                                          hold=arguments.hold + 5)],
                              stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip()  # type: ignore[union-attr]
        kubeconfig = {
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": url}}],
            "users": [{"name": "fake", "user": {"token": "bench"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": NAMESPACE}}],
            "current-context": "fake",
        }
        os.environ["AIRFLOW_CONN_KUBERNETES_DEFAULT"] = json.dumps(
            {"conn_type": "kubernetes", "extra": {"kube_config": kubeconfig, "namespace": NAMESPACE}})
        names = create_pods(url, arguments.pods)
        report = asyncio.run(hold_triggers(names, arguments.poll_interval, arguments.hold))
    finally:
        server.terminate()
        server.wait(10)
    print(json.dumps(report, indent=2))
    print(f"{report['pods']} deferred shard pods: RSS {report['rss_before_bytes'] / 2**20:.0f} -> "
          f"{report['peak_rss_bytes'] / 2**20:.0f} MiB ({report['rss_per_trigger_bytes'] / 1024:.0f} KiB per trigger); "
          f"loop lag while held p50 {report['lag_while_held_ms']['p50']} ms, p99 {report['lag_while_held_ms']['p99']} ms, "
          f"max {report['lag_while_held_ms']['max']} ms; all {report['events_ok']} events in "
          f"{report['seconds_until_all_events']} s")
    if arguments.output:
        Path(arguments.output).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
