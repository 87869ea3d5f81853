"""Sending jobs to the workers. Imports Celery and settings only — never torch or training code —
so the API process stays light. Call :func:`enqueue_job` after the job row is committed."""

from __future__ import annotations

from worker.app import CPU_QUEUE, GPU_QUEUE, INGEST_TASK, TRAIN_TASK, get_celery


def queue_for(device: str) -> str:
    return GPU_QUEUE if device == "cuda" else CPU_QUEUE


def enqueue_job(job_id: str, device: str) -> None:
    get_celery().send_task(TRAIN_TASK, args=[job_id], queue=queue_for(device))


def enqueue_ingest(version_id: str) -> None:
    """Send an uploaded dataset version to a CPU worker to decode (ingest needs no GPU)."""
    get_celery().send_task(INGEST_TASK, args=[version_id], queue=CPU_QUEUE)
