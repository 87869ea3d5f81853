"""The Celery application, built from settings on first use (nothing connects at import).

Results live in cnnlab's database, so there is no result backend. A task is acknowledged only
after it ran (``acks_late``) and goes back to the queue if its process dies; each worker process
takes one job at a time (prefetch 1).
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from cnnlab.settings import EMBEDDED_BROKER, Settings, get_settings
from worker.broker import EmbeddedTransport, broker_url

TRAIN_TASK = "cnnlab.train_job"
INGEST_TASK = "cnnlab.ingest_dataset"
CPU_QUEUE = "cpu"
GPU_QUEUE = "gpu"
QUEUES = (CPU_QUEUE, GPU_QUEUE)
TASK_MODULES = ("worker.tasks", "worker.datasets")
VISIBILITY_TIMEOUT_S = 12 * 3600

_apps: dict[tuple[str, str], Celery] = {}


def create_celery(settings: Settings) -> Celery:
    app = Celery("cnnlab", set_as_current=False, include=list(TASK_MODULES))
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_store_errors_even_if_ignored=False,
        task_queues=[Queue(name, routing_key=name) for name in QUEUES],
        task_default_queue=CPU_QUEUE,
        task_routes={TRAIN_TASK: {"queue": CPU_QUEUE}, INGEST_TASK: {"queue": CPU_QUEUE}},
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        # Children import torch and the training code when they start; that can take longer
        # than Celery's 4 s default on a busy machine.
        worker_proc_alive_timeout=120.0,
        worker_send_task_events=False,
        enable_utc=True,
    )
    if settings.broker_url == EMBEDDED_BROKER:
        app.conf.broker_url = broker_url(settings.home)
        app.conf.broker_transport = EmbeddedTransport
    else:
        app.conf.broker_url = settings.broker_url
        # Redis hands an unacknowledged message out again after this long, so it must outlast
        # the longest job; a worker that stops cleanly gives its message back at once.
        app.conf.broker_transport_options = {"visibility_timeout": VISIBILITY_TIMEOUT_S}
    return app


def get_celery() -> Celery:
    """The app for the current settings; one per broker location, built lazily."""
    settings = get_settings()
    key = (settings.broker_url, str(settings.home))
    app = _apps.get(key)
    if app is None:
        app = _apps[key] = create_celery(settings)
    return app
