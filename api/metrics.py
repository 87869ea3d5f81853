"""Prometheus metrics of one API process, served by ``GET /metrics`` (see api.routes.health).

Each app has its own registry (tests build many apps in one process). Requests are counted by
method, route template (``/v1/jobs/{job_id}``, never the raw path, so the series stay few) and
status, with a latency histogram; predictions by images classified, with their latency; jobs by
status are read from the database when scraped (aggregates only: ``GROUP BY`` queries, and no
job's spec beyond its ``device`` field), at most once every ``ops_cache_seconds``.

With several API processes, each keeps its own counters: scrape each, or sum them.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cnnlab.settings import get_settings
from cnnlab.store.db import read_scope
from cnnlab.store.tables import EpochMetric, Job, JobStatus
from cnnlab.store.workers import live_workers
from worker.app import QUEUES
from worker.queue import queue_for

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Requests that matched no route share one label, so scanners cannot add series.
UNMATCHED = "unmatched"
# Epochs the training-speed gauge averages, per device.
RECENT_EPOCHS = 50


class Metrics:
    def __init__(self, database_url: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "cnnlab_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "cnnlab_http_request_duration_seconds",
            "Time to answer an HTTP request (to the end of its body), by method and route",
            ["method", "route"],
            registry=self.registry,
        )
        self.predictions = Counter(
            "cnnlab_predictions",
            "Images classified by prediction requests",
            registry=self.registry,
        )
        self.prediction_latency = Histogram(
            "cnnlab_prediction_duration_seconds",
            "Time to classify one prediction request's images (model lookup, decoding, forward)",
            registry=self.registry,
        )
        self.registry.register(ServiceState(database_url))

    def render(self) -> bytes:
        """The text exposition; reads the database (call it off the event loop)."""
        return generate_latest(self.registry)


class ServiceState(Collector):
    """What the database says of the service, read at scrape time (a few indexed queries):

    - ``cnnlab_jobs{status}``: jobs by status;
    - ``cnnlab_queued_jobs{queue}``: queued jobs waiting for each worker queue (the queue depth
      that matters: the broker may hold a message twice, the rows once);
    - ``cnnlab_workers{queue}``: workers with a live heartbeat serving each queue;
    - ``cnnlab_recent_images_per_second{device}``: training speed, the mean of the last
      :data:`RECENT_EPOCHS` epochs recorded on each device (``cpu``, ``cuda``);
    - ``cnnlab_epochs``: epochs recorded in all.
    """

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def describe(self) -> list[Any]:
        # Describing must not query the database (it happens on registration).
        return list(self._families())

    def _families(self) -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily("cnnlab_jobs", "Jobs by status", labels=["status"]),
            GaugeMetricFamily(
                "cnnlab_queued_jobs", "Queued jobs by worker queue", labels=["queue"]
            ),
            GaugeMetricFamily(
                "cnnlab_workers", "Workers with a live heartbeat, by queue", labels=["queue"]
            ),
            GaugeMetricFamily(
                "cnnlab_recent_images_per_second",
                f"Training images/s, mean of the last {RECENT_EPOCHS} epochs on each device",
                labels=["device"],
            ),
            GaugeMetricFamily("cnnlab_epochs", "Epochs recorded"),
        )

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with read_scope(self.database_url) as session:
            counts = dict(
                session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
            )
            device = Job.spec["device"].as_string()
            queued = session.execute(
                select(device, func.count()).where(Job.status == JobStatus.queued).group_by(device)
            ).all()
            depth: Tally[str] = Tally()
            for name, count in queued:
                depth[queue_for(str(name or "auto"))] += int(count)
            workers = live_workers(session, get_settings().worker_live_seconds)
            recent = session.execute(
                select(EpochMetric.images_per_second, device)
                .join(Job, Job.id == EpochMetric.job_id)
                .where(EpochMetric.images_per_second.is_not(None))
                .order_by(EpochMetric.id.desc())
                .limit(RECENT_EPOCHS * 2)
            ).all()
            epochs = session.scalar(select(func.count()).select_from(EpochMetric)) or 0
        jobs, queues, serving, speed, total = self._families()
        for status in JobStatus:
            jobs.add_metric([str(status)], counts.get(status, 0))
        for queue in QUEUES:
            queues.add_metric([queue], depth.get(queue, 0))
            serving.add_metric([queue], sum(1 for w in workers if queue in w.queues))
        by_device: dict[str, list[float]] = {}
        for images_per_second, name in recent:
            kind = "cuda" if name == "cuda" else "cpu"
            by_device.setdefault(kind, []).append(float(images_per_second))
        for device, values in sorted(by_device.items()):
            values = values[:RECENT_EPOCHS]
            speed.add_metric([device], sum(values) / len(values))
        total.add_metric([], epochs)
        yield from (jobs, queues, serving, speed, total)


def route_template(scope: Scope) -> str:
    """The matched route's path template, e.g. ``/v1/jobs/{job_id}``."""
    template = getattr(scope.get("route"), "path", None)
    if not isinstance(template, str):
        return UNMATCHED
    # A route of an included router may know only its own part (``/jobs/{job_id}``): the
    # routers' prefixes are the path's leading segments that the template does not cover.
    path = str(scope.get("path", ""))
    extra = path.count("/") - template.count("/")
    if extra > 0 and ":path}" not in template:
        template = "/".join(path.split("/")[: extra + 1]) + template
    return template


class RequestMetrics:
    """ASGI middleware counting each HTTP request once it is answered."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route, method = route_template(scope), scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - start)


def install(app: FastAPI) -> Metrics:
    """Give ``app`` its registry and the request-counting middleware."""
    metrics = Metrics(app.state.settings.resolved_database_url)
    app.state.metrics = metrics
    app.add_middleware(RequestMetrics, metrics=metrics)
    return metrics


def record_prediction(app: Any, images: int, seconds: float) -> None:
    metrics: Metrics | None = getattr(app.state, "metrics", None)
    if metrics is not None:
        metrics.predictions.inc(images)
        metrics.prediction_latency.observe(seconds)
