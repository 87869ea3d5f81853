"""Celery workers: the app and embedded broker, sending jobs, and the training task."""
