"""A Kubernetes API server on loopback that speaks just enough of core/v1 for the pod operator.

It implements what the KubernetesPodOperator and its trigger call (sync and async clients):
pods create / read / list (label selectors) / patch (labels) / delete, pods/log, and events
list + watch. Pods follow a scripted life like a Kueue-managed pod: created with the
`kueue.x-k8s.io/admission` scheduling gate and held Pending (PodScheduled=False,
reason SchedulingGated) until `admit_after_seconds`, then Running, then terminated with the
scripted exit code. Time is real but short: the tests set their timeouts in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import datetime
import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web

KUEUE_GATE = "kueue.x-k8s.io/admission"


@dataclasses.dataclass
class PodScript:
    """How a created pod behaves; None for admit_after_seconds means never admitted."""

    admit_after_seconds: float | None = 0.0
    run_seconds: float = 0.5
    exit_code: int = 0
    log_lines: tuple[str, ...] = ("worker started", "worker done")
    on_finish: Callable[[dict[str, Any]], None] | None = None  # plays the worker's result write
    # Kueue preempting a plain pod deletes it: the pod is gone (404) this long after creation.
    preempted_after_seconds: float | None = None


@dataclasses.dataclass
class _Pod:
    body: dict[str, Any]
    script: PodScript
    created: float
    finished: bool = False


def _now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _matches(labels: dict[str, str], selector: str | None) -> bool:
    if not selector:
        return True
    for term in selector.split(","):
        term = term.strip()
        if not term:
            continue
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key.rstrip("=")) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "message": message, "code": code}
    return web.json_response(body, status=code)


class FakeKubeApi:
    """Start with `start()`, point a kubeconfig at `url`, script pods with `script`."""

    def __init__(self) -> None:
        self.pods: dict[tuple[str, str], _Pod] = {}
        self.deleted: list[str] = []
        self.calls: list[tuple[str, str]] = []
        self.script = PodScript()
        self.later_scripts: list[PodScript] = []  # scripts of the 2nd, 3rd... pod created, in order
        self.preempted: list[str] = []
        self.url = ""
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._resource_version = 1000

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> FakeKubeApi:
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._dispatch)
            self._runner = web.AppRunner(app, access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            self._loop.run_until_complete(site.start())
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.url = f"http://127.0.0.1:{port}"
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="fake-kube-api", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)  # type: ignore[union-attr]
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)  # type: ignore[union-attr]

    def kubeconfig(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "test-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": "nightshard"}}],
            "current-context": "fake",
        }

    def reset(self, script: PodScript | None = None, *later: PodScript) -> None:
        """Script the next pods: the first created follows `script`, the next ones `later` in order."""
        with self._lock:
            self.pods.clear()
            self.deleted.clear()
            self.calls.clear()
            self.preempted.clear()
            self.script = script or PodScript()
            self.later_scripts = list(later)

    def _preempt_due_pods(self) -> None:
        """Delete, as Kueue does on preemption, every pod whose script says its time has come."""
        now = time.monotonic()
        for key, pod in list(self.pods.items()):
            after = pod.script.preempted_after_seconds
            if after is not None and now - pod.created >= after:
                del self.pods[key]
                self.preempted.append(key[1])

    def live_pods(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._render(pod) for pod in self.pods.values()]

    # ---------------------------------------------------------------- pod life
    def _render(self, pod: _Pod) -> dict[str, Any]:
        """The pod as the API returns it now, from its script and its age."""
        body = copy.deepcopy(pod.body)
        script = pod.script
        age = time.monotonic() - pod.created
        admitted_at = script.admit_after_seconds
        container = body["spec"]["containers"][0]["name"]
        if admitted_at is None or age < admitted_at:
            body["spec"]["schedulingGates"] = [{"name": KUEUE_GATE}]
            body["status"] = {
                "phase": "Pending",
                "conditions": [
                    {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated",
                     "message": "Scheduling is blocked due to non-empty scheduling gates"}
                ],
                "qosClass": "Guaranteed",
            }
            return body
        body["spec"].pop("schedulingGates", None)
        body["spec"]["nodeName"] = "gke-gpu-pool-node-1"
        scheduled = [{"type": "PodScheduled", "status": "True"}]
        if age < admitted_at + script.run_seconds:
            body["status"] = {
                "phase": "Running",
                "conditions": scheduled + [{"type": "Ready", "status": "True"}],
                "startTime": _now_rfc3339(),
                "containerStatuses": [
                    {"name": container, "ready": True, "restartCount": 0, "image": container, "imageID": "",
                     "state": {"running": {"startedAt": _now_rfc3339()}}}
                ],
            }
            return body
        if not pod.finished:
            pod.finished = True
            if script.on_finish is not None and script.exit_code == 0:
                script.on_finish(body)
        body["status"] = {
            "phase": "Succeeded" if script.exit_code == 0 else "Failed",
            "conditions": scheduled + [{"type": "Ready", "status": "False"}],
            "startTime": _now_rfc3339(),
            "containerStatuses": [
                {"name": container, "ready": False, "restartCount": 0, "image": container, "imageID": "",
                 "state": {"terminated": {"exitCode": script.exit_code,
                                          "reason": "Completed" if script.exit_code == 0 else "Error",
                                          "startedAt": _now_rfc3339(), "finishedAt": _now_rfc3339()}}}
            ],
        }
        return body

    def _next_version(self) -> str:
        self._resource_version += 1
        return str(self._resource_version)

    # ---------------------------------------------------------------- routing
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        self.calls.append((request.method, request.path))
        with self._lock:
            self._preempt_due_pods()
        # /api/v1/namespaces/{ns}/{resource}[/{name}[/{sub}]]
        if parts[:3] != ["api", "v1", "namespaces"] or len(parts) < 5:
            return _status(404, "NotFound", f"fake API does not serve {request.path}")
        namespace, resource = parts[3], parts[4]
        name = parts[5] if len(parts) > 5 else None
        sub = parts[6] if len(parts) > 6 else None
        if resource == "events":
            return await self._events(request, namespace)
        if resource != "pods":
            return _status(404, "NotFound", f"fake API does not serve {resource}")
        if name is None:
            if request.method == "POST":
                return await self._create(request, namespace)
            return self._list(request, namespace)
        if sub == "log":
            return self._log(namespace, name)
        if request.method == "GET":
            return self._read(namespace, name)
        if request.method == "PATCH":
            return await self._patch(request, namespace, name)
        if request.method == "DELETE":
            return self._delete(namespace, name)
        return _status(405, "MethodNotAllowed", request.method)

    async def _create(self, request: web.Request, namespace: str) -> web.Response:
        body = await request.json()
        name = body["metadata"]["name"]
        with self._lock:
            if (namespace, name) in self.pods:
                return _status(409, "AlreadyExists", f'pods "{name}" already exists')
            body["metadata"].update(
                namespace=namespace,
                uid=str(uuid.uuid4()),
                resourceVersion=self._next_version(),
                creationTimestamp=_now_rfc3339(),
            )
            index = sum(1 for method, path in self.calls if method == "POST" and path.endswith("/pods")) - 1
            scripts = [self.script, *self.later_scripts]
            pod = _Pod(body=body, script=scripts[min(index, len(scripts) - 1)], created=time.monotonic())
            self.pods[(namespace, name)] = pod
            return web.json_response(self._render(pod), status=201)

    def _list(self, request: web.Request, namespace: str) -> web.Response:
        selector = request.query.get("labelSelector")
        with self._lock:
            items = [
                self._render(pod)
                for (ns, _), pod in self.pods.items()
                if ns == namespace and _matches(pod.body["metadata"].get("labels") or {}, selector)
            ]
        return web.json_response(
            {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": str(self._resource_version)}, "items": items}
        )

    def _read(self, namespace: str, name: str) -> web.Response:
        with self._lock:
            pod = self.pods.get((namespace, name))
            if pod is None:
                return _status(404, "NotFound", f'pods "{name}" not found')
            return web.json_response(self._render(pod))

    async def _patch(self, request: web.Request, namespace: str, name: str) -> web.Response:
        patch = await request.json()
        with self._lock:
            pod = self.pods.get((namespace, name))
            if pod is None:
                return _status(404, "NotFound", f'pods "{name}" not found')
            labels = (patch.get("metadata") or {}).get("labels") or {}
            pod.body["metadata"].setdefault("labels", {}).update(labels)
            pod.body["metadata"]["resourceVersion"] = self._next_version()
            return web.json_response(self._render(pod))

    def _delete(self, namespace: str, name: str) -> web.Response:
        with self._lock:
            pod = self.pods.pop((namespace, name), None)
            if pod is None:
                return _status(404, "NotFound", f'pods "{name}" not found')
            self.deleted.append(name)
            return web.json_response(self._render(pod))

    def _log(self, namespace: str, name: str) -> web.Response:
        with self._lock:
            pod = self.pods.get((namespace, name))
            if pod is None:
                return _status(404, "NotFound", f'pods "{name}" not found')
            lines = pod.script.log_lines
        return web.Response(text="".join(f"{line}\n" for line in lines), content_type="text/plain")

    async def _events(self, request: web.Request, namespace: str) -> web.StreamResponse:
        name = (request.query.get("fieldSelector") or "").removeprefix("involvedObject.name=")
        event = {
            "kind": "Event",
            "apiVersion": "v1",
            "metadata": {"name": f"{name}.queued", "namespace": namespace, "uid": f"{name}-queued",
                         "resourceVersion": "1"},
            "involvedObject": {"kind": "Pod", "name": name, "namespace": namespace},
            "reason": "Pending",
            "message": "Workload is waiting for quota in ClusterQueue nightshard",
            "type": "Normal",
        }
        if request.query.get("watch") in ("true", "1", "True"):
            response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            await response.prepare(request)
            # Hold the watch open briefly like a real server, then end it; the client reconnects
            # (or has gone away already, when the pod started and the operator stopped watching).
            with contextlib.suppress(ConnectionError):
                await response.write((json.dumps({"type": "ADDED", "object": event}) + "\n").encode())
                await asyncio.sleep(min(float(request.query.get("timeoutSeconds", 1)), 0.5))
                await response.write_eof()
            return response
        return web.json_response(
            {"kind": "EventList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": [event]}
        )
