"""Prometheus metrics of one API process, served by ``GET /metrics`` (see api.routes.health).

Each app has its own registry (tests build many apps in one process). Requests are counted by
method, route template (``/v1/jobs/{job_id}``, never the raw path, so the series stay few) and
status, with a latency histogram; predictions by images classified, with their latency; jobs by
status are read from the database when scraped (one ``GROUP BY`` over the jobs table).

With several API processes, each keeps its own counters: scrape each, or sum them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cnnlab.store.db import read_scope
from cnnlab.store.models import Job, JobStatus

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Requests that matched no route share one label, so scanners cannot add series.
UNMATCHED = "unmatched"


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
        self.registry.register(JobsByStatus(database_url))

    def render(self) -> bytes:
        """The text exposition; reads the database (call it off the event loop)."""
        return generate_latest(self.registry)


class JobsByStatus(Collector):
    """``cnnlab_jobs{status}``: how many jobs have each status, read at scrape time."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def describe(self) -> list[Any]:
        # Describing must not query the database (it happens on registration).
        return [GaugeMetricFamily("cnnlab_jobs", "Jobs by status", labels=["status"])]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with read_scope(self.database_url) as session:
            counts = dict(
                session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
            )
        family = GaugeMetricFamily("cnnlab_jobs", "Jobs by status", labels=["status"])
        for status in JobStatus:
            family.add_metric([str(status)], counts.get(status, 0))
        yield family


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
