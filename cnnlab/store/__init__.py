"""The job store: users and tokens, jobs, per-epoch metrics, checkpoints and searches.

SQLAlchemy 2 models and one module of functions per resource. The worker reaches the database only
through :mod:`cnnlab.store.runs`; the API through the resource modules. Services flush but never
commit: the caller owns the transaction (a request, or :func:`cnnlab.store.db.session_scope`).
"""
